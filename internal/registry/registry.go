// Package registry owns the function registry (spec-core §4): the concurrent name → registered
// function map read on every invocation, the FunctionSpecResolver that applies defaults and
// validates scaling settings, the FunctionService that serializes register/remove/setReplicas
// per name and drives provisioning, listeners and rollback, and the FunctionResponse JSON shape.
package registry

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/nanofaas/control-plane/internal/deploy"
	"github.com/nanofaas/control-plane/internal/function"
)

// DeploymentMetadata records how a function ended up deployed. Empty strings stand for the
// reference's nulls.
type DeploymentMetadata struct {
	RequestedMode        function.ExecutionMode // what the client asked for, after defaulting
	EffectiveMode        function.ExecutionMode // after provider selection / degradation
	Backend              string                 // provider id; only for managed DEPLOYMENT
	DegradationReason    string                 // only when DEPLOYMENT degraded to POOL
	EffectiveEndpointURL string
}

// Registered is a registered function. Both fields are immutable once the value is published in
// a Registry, so readers may keep and share the pointers without locking.
type Registered struct {
	Spec *function.Spec // resolved, effective spec (every defaulted field set)
	Meta DeploymentMetadata
}

// Target is the function as the deployment coordinator sees it.
func (r *Registered) Target() deploy.Target {
	return deploy.Target{Name: r.Spec.Name, EffectiveMode: r.Meta.EffectiveMode, Backend: r.Meta.Backend}
}

// Registry is the concurrent name → *Registered map. Names are case-sensitive exact keys.
//
// It is a sync.Map: Get is a lock-free read with no allocation, because it sits on every
// invocation's hot path, and writes touch one entry. (A copy-on-write map made every
// registration O(n) and left O(n) garbage behind: registering 10,000 functions copied 50
// million entries.) List sorts a snapshot, which only GET /v1/functions and the autoscaler's
// tick need.
type Registry struct {
	byName sync.Map // name → *Registered
	n      atomic.Int64
}

// New returns an empty Registry.
func New() *Registry { return &Registry{} }

// Get returns the function registered under name.
func (r *Registry) Get(name string) (*Registered, bool) {
	v, ok := r.byName.Load(name)
	if !ok {
		return nil, false
	}
	return v.(*Registered), true
}

// List returns every registered function sorted by name (D14). The slice is the caller's.
func (r *Registry) List() []*Registered {
	out := make([]*Registered, 0, r.n.Load())
	r.byName.Range(func(_, v any) bool {
		out = append(out, v.(*Registered))
		return true
	})
	slices.SortFunc(out, func(a, b *Registered) int { return strings.Compare(a.Spec.Name, b.Spec.Name) })
	return out
}

// Len returns the number of registered functions.
func (r *Registry) Len() int { return int(r.n.Load()) }

// Put stores reg under reg.Spec.Name, replacing any previous entry. It bypasses the per-name
// lifecycle (no provisioning, no listeners): normal registration goes through Service, which
// serializes writes of one name.
func (r *Registry) Put(reg *Registered) {
	if _, replaced := r.byName.Swap(reg.Spec.Name, reg); !replaced {
		r.n.Add(1)
	}
}

// Remove deletes name and returns what was stored. Like Put, it bypasses the lifecycle.
func (r *Registry) Remove(name string) (*Registered, bool) {
	v, ok := r.byName.LoadAndDelete(name)
	if !ok {
		return nil, false
	}
	r.n.Add(-1)
	return v.(*Registered), true
}
