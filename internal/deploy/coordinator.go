package deploy

import (
	"context"

	"github.com/nanofaas/control-plane/internal/failure"
	"github.com/nanofaas/control-plane/internal/function"
)

// Target is what the Coordinator needs to know about a registered function: its name, effective
// execution mode and the backend that provisioned it ("" = none).
type Target struct {
	Name          string
	EffectiveMode function.ExecutionMode
	Backend       string
}

// Managed reports whether the function is a managed deployment: effective DEPLOYMENT with a
// backend recorded.
func (t Target) Managed() bool {
	return t.EffectiveMode == function.ModeDeployment && !blank(t.Backend)
}

// Directory finds providers by backend id; *Resolver implements it.
type Directory interface {
	Lookup(id string) (Provider, bool)
}

// Coordinator routes replica operations of a registered function to the provider that
// provisioned it (the reference's ManagedDeploymentCoordinator, spec-core §5.4).
type Coordinator struct {
	providers Directory
}

// NewCoordinator returns a Coordinator looking providers up in providers.
func NewCoordinator(providers Directory) *Coordinator {
	return &Coordinator{providers: providers}
}

// RequireProvider returns the provider of a managed deployment, or failure.Unavailable
// "Function '<name>' is not a managed deployment" / "No managed deployment provider with id
// '<id>' found".
func (c *Coordinator) RequireProvider(t Target) (Provider, error) {
	if !t.Managed() {
		return nil, failure.Unavailablef("Function '%s' is not a managed deployment", t.Name)
	}
	return c.RequireBackend(t.Backend)
}

// RequireBackend returns the provider with backend id, or failure.Unavailable
// "No managed deployment provider with id '<id>' found". Availability is not checked.
func (c *Coordinator) RequireBackend(id string) (Provider, error) {
	if c.providers != nil {
		if p, ok := c.providers.Lookup(id); ok {
			return p, nil
		}
	}
	return nil, failure.Unavailablef("No managed deployment provider with id '%s' found", id)
}

// SetReplicas scales a managed deployment; provider errors are returned unchanged.
func (c *Coordinator) SetReplicas(ctx context.Context, t Target, replicas int) error {
	p, err := c.RequireProvider(t)
	if err != nil {
		return err
	}
	return p.SetReplicas(ctx, t.Name, replicas)
}

// Deprovision removes a managed deployment through its backend.
func (c *Coordinator) Deprovision(ctx context.Context, t Target) error {
	p, err := c.RequireProvider(t)
	if err != nil {
		return err
	}
	return p.Deprovision(ctx, t.Name)
}

// ReadyReplicas returns the ready replica count of a managed deployment (used by the autoscaler).
func (c *Coordinator) ReadyReplicas(ctx context.Context, t Target) (int, error) {
	p, err := c.RequireProvider(t)
	if err != nil {
		return 0, err
	}
	return p.ReadyReplicas(ctx, t.Name)
}
