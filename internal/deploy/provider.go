// Package deploy owns the managed-deployment abstraction (spec-core §5): the Provider extension
// point that backends (k8s, container-local, process) implement, the Resolver that picks a
// provider for a DEPLOYMENT function and degrades to POOL when it cannot, and the Coordinator
// that routes replica operations of a registered function to the backend that provisioned it.
// It knows nothing about the registry; the registry package drives it.
package deploy

import (
	"context"

	"github.com/nanofaas/control-plane/internal/function"
)

// Backend ids with behaviour attached to them in the core.
const (
	// BackendK8s is the Kubernetes provider; only its functions are image-validated (D23).
	BackendK8s = "k8s"
	// BackendProcess is the embedded child-process provider, chosen implicitly only when no other
	// provider is available and supporting (D15).
	BackendProcess = "process"
)

// Provider is a managed deployment backend (the reference's ManagedDeploymentProvider).
//
// Error conventions, which decide the HTTP status and whether registration degrades to POOL:
//   - a failure.Unavailable error (the reference's IllegalStateException) means "this backend
//     cannot serve the function now": registration degrades to POOL when the spec has an
//     endpointUrl, otherwise it is 503 with the message as text;
//   - a failure.InvalidArgument error is a client mistake: 400 with the message as text;
//   - any other error, including failure.Internal (e.g. a Kubernetes API error, which the
//     reference does not translate), is unexpected: 500 INTERNAL_ERROR, never degraded, with
//     the message logged rather than shown.
type Provider interface {
	// BackendID is the stable id clients and configuration use ("k8s", "process", …).
	BackendID() string
	// Available reports whether the backend can be used at all (e.g. a cluster config exists).
	// It must be cheap and must not block.
	Available() bool
	// Supports reports whether the backend can run spec (a resolved spec). Cheap, non-blocking.
	Supports(spec *function.Spec) bool
	// Provision creates the function's replicas and returns how to reach them. On error the
	// provider must remove what this call created (nothing is deprovisioned for a failed
	// Provision) and leave in place what existed before it, e.g. objects that survived a
	// control-plane restart. It honours ctx cancellation.
	Provision(ctx context.Context, spec *function.Spec) (ProvisionResult, error)
	// Deprovision removes everything Provision created for name. Removing an unknown name should
	// succeed (it may be called during rollback).
	Deprovision(ctx context.Context, name string) error
	// SetReplicas scales name to replicas (>= 0). Unknown name: failure.Unavailable, unless
	// the backend learns it from an API the reference does not translate (k8s: failure.Internal).
	SetReplicas(ctx context.Context, name string, replicas int) error
	// ReadyReplicas returns how many replicas of name currently pass their readiness check.
	ReadyReplicas(ctx context.Context, name string) (int, error)
}

// ProvisionResult is what a provisioning produced (the reference's ProvisionResult).
// A zero EffectiveMode is read as DEPLOYMENT, mirroring the reference's two-argument form
// `(url, backendId)`; Metadata is informational and ignored by the core.
type ProvisionResult struct {
	EndpointURL       string
	BackendID         string
	EffectiveMode     function.ExecutionMode
	DegradationReason string
	Metadata          map[string]string
}

// Managed is the two-argument ProvisionResult: a DEPLOYMENT served by backendID at url.
func Managed(url, backendID string) ProvisionResult {
	return ProvisionResult{EndpointURL: url, BackendID: backendID, EffectiveMode: function.ModeDeployment}
}
