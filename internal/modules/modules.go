// Package modules owns the run-time selection of optional control-plane modules (DECISIONS.md D6):
// parsing the csv of NANOFAAS_CONTROL_PLANE_MODULES, the special values "all" and "none", and the
// implicit dependencies between modules. Wiring code asks the resulting Set which modules to build.
package modules

import (
	"fmt"
	"math/bits"
	"strings"
)

// Module names, exactly as the reference build selector spells them.
const (
	AsyncQueue                  = "async-queue"
	SyncQueue                   = "sync-queue"
	Autoscaler                  = "autoscaler"
	RuntimeConfig               = "runtime-config"
	ImageValidator              = "image-validator"
	K8sDeploymentProvider       = "k8s-deployment-provider"
	ContainerDeploymentProvider = "container-deployment-provider"
	ProcessDeploymentProvider   = "process-deployment-provider"
	BuildMetadata               = "build-metadata"
)

// Special selector values.
const (
	// KeywordAll selects every module; it is also what blank input means.
	KeywordAll = "all"
	// KeywordNone selects the core only; it cannot be combined with module names.
	KeywordNone = "none"
)

const moduleCount = 9

// names lists every module; a module's bit in Set is its index here. Sorted, so Names is sorted
// without extra work.
func names() [moduleCount]string {
	return [...]string{
		AsyncQueue,
		Autoscaler,
		BuildMetadata,
		ContainerDeploymentProvider,
		ImageValidator,
		K8sDeploymentProvider,
		ProcessDeploymentProvider,
		RuntimeConfig,
		SyncQueue,
	}
}

// Set is an immutable set of module names. The zero value is the empty set (core only).
// It is a small comparable value type (== compares selections), cheap to copy and safe for
// concurrent use.
type Set struct {
	bits uint16
}

// All returns the set of every module.
func All() Set { return Set{bits: 1<<moduleCount - 1} }

// None returns the empty set (core only).
func None() Set { return Set{} }

// Known returns every valid module name, sorted.
func Known() []string {
	n := names()
	return n[:]
}

func bitOf(name string) (uint16, bool) {
	for i, n := range names() {
		if n == name {
			return 1 << i, true
		}
	}
	return 0, false
}

// Parse reads a comma-separated module list. Blank input or "all" selects every module; "none"
// selects none and cannot be combined with anything else. Whitespace around names is ignored and
// duplicates are harmless. Implicit dependencies are added: sync-queue brings async-queue, and
// image-validator brings k8s-deployment-provider (as the reference's Gradle dependencies do).
func Parse(csv string) (Set, error) {
	if strings.TrimSpace(csv) == "" {
		return All(), nil
	}
	var (
		s       Set
		all     bool
		none    bool
		unknown []string
	)
	for raw := range strings.SplitSeq(csv, ",") {
		name := strings.TrimSpace(raw)
		switch name {
		case "":
			continue
		case KeywordAll:
			all = true
		case KeywordNone:
			none = true
		default:
			b, ok := bitOf(name)
			if !ok {
				unknown = append(unknown, fmt.Sprintf("%q", name))
				continue
			}
			s.bits |= b
		}
	}
	if len(unknown) > 0 {
		noun := "module"
		if len(unknown) > 1 {
			noun = "modules"
		}
		return Set{}, fmt.Errorf("unknown control-plane %s %s; valid modules: %s (or %q / %q)",
			noun, strings.Join(unknown, ", "), strings.Join(Known(), ", "), KeywordAll, KeywordNone)
	}
	if none {
		if all || s.bits != 0 {
			return Set{}, fmt.Errorf("control-plane module %q cannot be combined with other modules", KeywordNone)
		}
		return Set{}, nil
	}
	if all {
		return All(), nil
	}
	return s.withDependencies(), nil
}

func (s Set) withDependencies() Set {
	deps := [...][2]string{
		{SyncQueue, AsyncQueue},
		{ImageValidator, K8sDeploymentProvider},
	}
	for _, d := range deps {
		if s.Has(d[0]) {
			b, _ := bitOf(d[1])
			s.bits |= b
		}
	}
	return s
}

// Has reports whether the module is selected. Unknown names are never selected.
func (s Set) Has(name string) bool {
	b, ok := bitOf(name)
	return ok && s.bits&b != 0
}

// Len returns the number of selected modules.
func (s Set) Len() int { return bits.OnesCount16(s.bits) }

// Names returns the selected module names, sorted (for logging).
func (s Set) Names() []string {
	out := make([]string, 0, s.Len())
	for i, n := range names() {
		if s.bits&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

// String returns the selection as a csv that Parse reads back to the same set: the sorted module
// names, or "none" for the empty set.
func (s Set) String() string {
	if s.bits == 0 {
		return KeywordNone
	}
	return strings.Join(s.Names(), ",")
}
