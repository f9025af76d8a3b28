package registry

import (
	"context"
	"errors"
	"log/slog"

	"github.com/nanofaas/control-plane/internal/deploy"
	"github.com/nanofaas/control-plane/internal/failure"
	"github.com/nanofaas/control-plane/internal/function"
)

// Sentinel outcomes of Service operations.
var (
	// ErrAlreadyRegistered: the name is taken (→ 409, empty body).
	ErrAlreadyRegistered = errors.New("function already registered")
	// ErrNotFound: no function with that name (→ 404, empty body).
	ErrNotFound = errors.New("function not found")
)

// Listener is told about registrations and removals (the reference's
// FunctionRegistrationListener): core metrics, async-queue, sync-queue. OnRegister receives the
// effective spec. An error aborts the operation, which is rolled back.
type Listener interface {
	OnRegister(ctx context.Context, spec *function.Spec) error
	OnRemove(ctx context.Context, name string) error
}

// ImageValidator checks that a function's image can be pulled; it returns a
// *failure.ImageValidation (→ 422/424/503) when it cannot.
type ImageValidator interface {
	Validate(ctx context.Context, spec *function.Spec) error
}

// NoopImageValidator accepts every image (the core default).
type NoopImageValidator struct{}

// Validate accepts spec.
func (NoopImageValidator) Validate(context.Context, *function.Spec) error { return nil }

// Deps are the Service's collaborators. Registry and Specs are required.
type Deps struct {
	Registry  *Registry
	Specs     *Resolver
	Providers *deploy.Resolver // nil = no managed deployment providers
	Listeners []Listener       // notified in order; compensated in reverse order
	Images    ImageValidator   // nil = NoopImageValidator
	Logger    *slog.Logger     // nil = slog.Default()
}

// Service is the function lifecycle (the reference's FunctionService, spec-core §4.3–§4.6).
// register, remove and setReplicas of one name are serialized through a reference-counted lock
// table; different names proceed in parallel. Reads (Get, List) never lock.
//
// Context: ctx bounds the wait for the per-name lock and is passed to providers and listeners.
// A cancellation mid-way fails the operation and triggers the usual rollback, which itself runs
// on a context detached from ctx's cancellation so it is never skipped. Callers that want a
// registration to outlive a disconnecting client pass context.WithoutCancel.
type Service struct {
	registry    *Registry
	specs       *Resolver
	providers   *deploy.Resolver
	coordinator *deploy.Coordinator
	listeners   []Listener
	images      ImageValidator
	log         *slog.Logger
	locks       *lockTable
}

// NewService returns a Service over d.
func NewService(d Deps) *Service {
	s := &Service{
		registry:  d.Registry,
		specs:     d.Specs,
		providers: d.Providers,
		listeners: append([]Listener(nil), d.Listeners...),
		images:    d.Images,
		log:       d.Logger,
		locks:     newLockTable(),
	}
	if s.providers == nil {
		s.providers, _ = deploy.NewResolver("") // cannot fail without providers
	}
	s.coordinator = deploy.NewCoordinator(s.providers)
	if s.images == nil {
		s.images = NoopImageValidator{}
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s
}

// Get returns the registered function name (lock-free).
func (s *Service) Get(name string) (*Registered, bool) { return s.registry.Get(name) }

// List returns every registered function, sorted by name (lock-free).
func (s *Service) List() []*Registered { return s.registry.List() }

// Register resolves, provisions and stores spec, returning the stored (effective) function.
//
// Order: resolve defaults (failure.InvalidArgument, checked before the lock so an invalid spec is
// 400 even for a taken name) → per-name lock → ErrAlreadyRegistered if taken → for DEPLOYMENT:
// select the provider, then validate the image only if that provider is k8s (D23), then provision
// (an Unavailable failure of selection or provisioning degrades to POOL when the spec has an
// endpointUrl, else it is returned) → listeners in order → store. A DEPLOYMENT function is
// invisible to Get/List until everything succeeded.
//
// On a listener failure the listeners already notified get OnRemove in reverse order (not the
// failing one), a managed deployment is deprovisioned through its backend, and the listener's
// error is returned; rollback failures are logged, never returned.
func (s *Service) Register(ctx context.Context, spec function.Spec) (*Registered, error) {
	resolved, err := s.specs.Resolve(&spec)
	if err != nil {
		return nil, err
	}
	name := resolved.Name
	unlock, err := s.locks.lock(ctx, name)
	if err != nil {
		return nil, err
	}
	defer unlock()

	if _, taken := s.registry.Get(name); taken {
		return nil, ErrAlreadyRegistered
	}
	reg, err := s.resolveRegistration(ctx, resolved)
	if err != nil {
		return nil, err
	}
	for i, l := range s.listeners {
		if err := l.OnRegister(ctx, reg.Spec); err != nil {
			s.rollbackRegister(ctx, reg, i, err)
			return nil, err
		}
	}
	s.registry.Put(reg)
	return reg, nil
}

// rollbackRegister undoes a registration whose listener #failed returned cause.
func (s *Service) rollbackRegister(ctx context.Context, reg *Registered, failed int, cause error) {
	ctx = context.WithoutCancel(ctx)
	name := reg.Spec.Name
	for i := failed - 1; i >= 0; i-- {
		if err := s.listeners[i].OnRemove(ctx, name); err != nil {
			s.log.Error("registration rollback: listener OnRemove failed", "function", name, "cause", cause, "err", err)
		}
	}
	if t := reg.Target(); t.Managed() {
		if err := s.coordinator.Deprovision(ctx, t); err != nil {
			s.log.Error("registration rollback: deprovision failed", "function", name, "backend", t.Backend,
				"cause", cause, "err", err)
		}
	}
}

// resolveRegistration turns a resolved spec into what will be stored (spec-core §5.3).
func (s *Service) resolveRegistration(ctx context.Context, spec *function.Spec) (*Registered, error) {
	mode := spec.Mode()
	if mode != function.ModeDeployment {
		return &Registered{Spec: spec, Meta: DeploymentMetadata{
			RequestedMode: mode, EffectiveMode: mode, EffectiveEndpointURL: spec.Endpoint(),
		}}, nil
	}
	pr, err := s.provision(ctx, spec)
	if err != nil {
		return nil, err
	}
	eff := *spec // shallow copy: the nested values are immutable and shared
	eff.EndpointURL = nil
	if pr.EndpointURL != "" {
		eff.EndpointURL = ptr(pr.EndpointURL)
	}
	eff.ExecutionMode = ptr(pr.EffectiveMode)
	return &Registered{Spec: &eff, Meta: DeploymentMetadata{
		RequestedMode:        function.ModeDeployment,
		EffectiveMode:        pr.EffectiveMode,
		Backend:              pr.BackendID,
		DegradationReason:    pr.DegradationReason,
		EffectiveEndpointURL: pr.EndpointURL,
	}}, nil
}

// provision selects a provider, validates the image when that provider is k8s (D23: the
// provider must be known before deciding, hence Resolve then Provision rather than one call),
// and provisions. Image-validation errors are not degradable and are returned as is.
func (s *Service) provision(ctx context.Context, spec *function.Spec) (deploy.ProvisionResult, error) {
	p, err := s.providers.Resolve(spec, "")
	if err != nil {
		return s.providers.Degrade(spec, err)
	}
	if p.BackendID() == deploy.BackendK8s {
		if err := s.images.Validate(ctx, spec); err != nil {
			return deploy.ProvisionResult{}, err
		}
	}
	return s.providers.Provision(ctx, p, spec)
}

// Remove unregisters name and returns what was registered, or ErrNotFound.
//
// The function disappears from Get/List first; then listeners get OnRemove in order; then an
// effective-DEPLOYMENT function is deprovisioned through its backend. If any step fails, the
// listeners already notified get OnRegister in reverse order, the registration is restored, and
// the error is returned. Per the reference every such error is a 500 (even Unavailable ones).
func (s *Service) Remove(ctx context.Context, name string) (*Registered, error) {
	unlock, err := s.locks.lock(ctx, name)
	if err != nil {
		return nil, err
	}
	defer unlock()

	existing, ok := s.registry.Remove(name)
	if !ok {
		return nil, ErrNotFound
	}
	for i, l := range s.listeners {
		if err := l.OnRemove(ctx, name); err != nil {
			s.rollbackRemove(ctx, existing, i, err)
			return nil, err
		}
	}
	if existing.Meta.EffectiveMode == function.ModeDeployment {
		if err := s.coordinator.Deprovision(ctx, existing.Target()); err != nil {
			s.rollbackRemove(ctx, existing, len(s.listeners), err)
			return nil, err
		}
	}
	return existing, nil
}

// rollbackRemove restores a registration after the removal step #failed returned cause.
func (s *Service) rollbackRemove(ctx context.Context, existing *Registered, failed int, cause error) {
	ctx = context.WithoutCancel(ctx)
	for i := failed - 1; i >= 0; i-- {
		if err := s.listeners[i].OnRegister(ctx, existing.Spec); err != nil {
			s.log.Error("removal rollback: listener OnRegister failed", "function", existing.Spec.Name,
				"cause", cause, "err", err)
		}
	}
	s.registry.Put(existing)
}

// SetReplicas scales a managed deployment to replicas and returns replicas. Errors: ErrNotFound;
// failure.InvalidArgument "Function '<name>' is not in DEPLOYMENT mode" when the effective mode
// is not DEPLOYMENT (LOCAL, POOL, or degraded); failure.Unavailable when no backend is recorded
// or the backend is gone; provider errors unchanged. Nothing is stored; no min/max check.
func (s *Service) SetReplicas(ctx context.Context, name string, replicas int) (int, error) {
	unlock, err := s.locks.lock(ctx, name)
	if err != nil {
		return 0, err
	}
	defer unlock()

	reg, ok := s.registry.Get(name)
	if !ok {
		return 0, ErrNotFound
	}
	if reg.Meta.EffectiveMode != function.ModeDeployment {
		return 0, failure.Invalidf("Function '%s' is not in DEPLOYMENT mode", name)
	}
	if err := s.coordinator.SetReplicas(ctx, reg.Target(), replicas); err != nil {
		return 0, err
	}
	return replicas, nil
}

// ReadyReplicas returns the ready replica count of a managed deployment (for the autoscaler).
// It does not take the per-name lock, like the reference.
func (s *Service) ReadyReplicas(ctx context.Context, name string) (int, error) {
	reg, ok := s.registry.Get(name)
	if !ok {
		return 0, ErrNotFound
	}
	return s.coordinator.ReadyReplicas(ctx, reg.Target())
}

// lockCount reports live per-name lock entries (0 when idle; D17).
func (s *Service) lockCount() int { return s.locks.size() }
