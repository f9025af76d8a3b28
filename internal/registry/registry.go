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
// It is copy-on-write behind an atomic pointer: Get is one atomic load plus a map lookup, with no
// lock and no allocation, because it sits on every invocation's hot path; writes (register and
// remove, rare) copy the map under a mutex, which is O(n) in the number of functions.
type Registry struct {
	mu  sync.Mutex // serializes writers only
	cur atomic.Pointer[snapshot]
}

// snapshot is one immutable version of the registry; sorted backs List (D14) without sorting on
// every read.
type snapshot struct {
	byName map[string]*Registered
	sorted []*Registered
}

// New returns an empty Registry.
func New() *Registry {
	r := &Registry{}
	r.cur.Store(&snapshot{byName: map[string]*Registered{}})
	return r
}

// Get returns the function registered under name.
func (r *Registry) Get(name string) (*Registered, bool) {
	reg, ok := r.cur.Load().byName[name]
	return reg, ok
}

// List returns every registered function sorted by name (D14). The slice is the caller's.
func (r *Registry) List() []*Registered {
	return slices.Clone(r.cur.Load().sorted)
}

// Len returns the number of registered functions.
func (r *Registry) Len() int { return len(r.cur.Load().byName) }

// Put stores reg under reg.Spec.Name, replacing any previous entry. It bypasses the per-name
// lifecycle (no provisioning, no listeners): normal registration goes through Service.
func (r *Registry) Put(reg *Registered) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.cur.Load()
	name := reg.Spec.Name
	next := &snapshot{byName: make(map[string]*Registered, len(old.byName)+1)}
	for k, v := range old.byName {
		next.byName[k] = v
	}
	next.byName[name] = reg
	i, found := slices.BinarySearchFunc(old.sorted, name, compareName)
	next.sorted = slices.Clone(old.sorted)
	if found {
		next.sorted[i] = reg
	} else {
		next.sorted = slices.Insert(next.sorted, i, reg)
	}
	r.cur.Store(next)
}

// Remove deletes name and returns what was stored. Like Put, it bypasses the lifecycle.
func (r *Registry) Remove(name string) (*Registered, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.cur.Load()
	reg, ok := old.byName[name]
	if !ok {
		return nil, false
	}
	next := &snapshot{byName: make(map[string]*Registered, len(old.byName))}
	for k, v := range old.byName {
		if k != name {
			next.byName[k] = v
		}
	}
	i, _ := slices.BinarySearchFunc(old.sorted, name, compareName)
	next.sorted = slices.Delete(slices.Clone(old.sorted), i, i+1)
	r.cur.Store(next)
	return reg, true
}

func compareName(reg *Registered, name string) int { return strings.Compare(reg.Spec.Name, name) }
