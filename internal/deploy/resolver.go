package deploy

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/nanofaas/control-plane/internal/failure"
	"github.com/nanofaas/control-plane/internal/function"
)

// Resolver picks the provider for a DEPLOYMENT function (the reference's
// DeploymentProviderResolver, spec-core §5.2) and provisions through it, degrading to POOL when
// the spec carries an endpointUrl. It is immutable after construction and safe for concurrent use.
type Resolver struct {
	providers      []Provider // construction order
	byID           map[string]Provider
	defaultBackend string
}

// NewResolver returns a Resolver over providers. defaultBackend is
// nanofaas.deployment.default-backend ("" = none). Duplicate or empty backend ids are a
// configuration error.
func NewResolver(defaultBackend string, providers ...Provider) (*Resolver, error) {
	r := &Resolver{byID: make(map[string]Provider, len(providers)), defaultBackend: defaultBackend}
	for _, p := range providers {
		if p == nil {
			return nil, errors.New("deploy: nil provider")
		}
		id := p.BackendID()
		if id == "" {
			return nil, errors.New("deploy: provider with empty backend id")
		}
		if _, dup := r.byID[id]; dup {
			return nil, fmt.Errorf("deploy: duplicate provider backend id %q", id)
		}
		r.byID[id] = p
		r.providers = append(r.providers, p)
	}
	return r, nil
}

// Lookup returns the provider with backend id, whether or not it is available.
func (r *Resolver) Lookup(id string) (Provider, bool) {
	p, ok := r.byID[id]
	return p, ok
}

// Resolve selects the provider for spec without provisioning: a non-blank hint, else the
// configured default backend, else implicit selection. Errors are failure.Unavailable with the
// reference's exact messages.
func (r *Resolver) Resolve(spec *function.Spec, hint string) (Provider, error) {
	switch {
	case !blank(hint):
		return r.explicit(spec, hint)
	case !blank(r.defaultBackend):
		return r.explicit(spec, r.defaultBackend)
	default:
		return r.implicit(spec)
	}
}

func (r *Resolver) explicit(spec *function.Spec, id string) (Provider, error) {
	p, ok := r.byID[id]
	if !ok {
		return nil, failure.Unavailablef("No managed deployment provider with id '%s' found", id)
	}
	if !p.Available() {
		return nil, failure.Unavailablef("Provider '%s' is not available", id)
	}
	if !p.Supports(spec) {
		return nil, failure.Unavailablef("Provider '%s' does not support function '%s'", id, spec.Name)
	}
	return p, nil
}

// implicit applies D15 on top of the reference rule: the process provider is a last resort, so
// it is dropped from the candidates whenever another provider qualifies.
func (r *Resolver) implicit(spec *function.Spec) (Provider, error) {
	var candidates []Provider
	process := -1
	for _, p := range r.providers {
		if p.Available() && p.Supports(spec) {
			if p.BackendID() == BackendProcess {
				process = len(candidates)
			}
			candidates = append(candidates, p)
		}
	}
	if process >= 0 && len(candidates) > 1 {
		candidates = append(candidates[:process], candidates[process+1:]...)
	}
	switch len(candidates) {
	case 0:
		return nil, failure.Unavailablef("No managed deployment provider available for function '%s'", spec.Name)
	case 1:
		return candidates[0], nil
	}
	ids := make([]string, len(candidates))
	for i, p := range candidates {
		ids[i] = p.BackendID()
	}
	sort.Strings(ids)
	return nil, failure.Unavailablef("Ambiguous managed deployment provider selection for function '%s': [%s]",
		spec.Name, strings.Join(ids, ", "))
}

// ResolveAndProvision resolves a provider and provisions spec through it. An Unavailable
// failure of either step degrades to POOL when spec has a non-blank endpointUrl (see Degrade);
// every other error is returned as is.
func (r *Resolver) ResolveAndProvision(ctx context.Context, spec *function.Spec, hint string) (ProvisionResult, error) {
	p, err := r.Resolve(spec, hint)
	if err != nil {
		return r.Degrade(spec, err)
	}
	return r.Provision(ctx, p, spec)
}

// Provision provisions spec through p (normally the result of Resolve), degrading like
// ResolveAndProvision. It exists separately so callers can act between selection and
// provisioning (the registry validates images only for the k8s backend, D23).
func (r *Resolver) Provision(ctx context.Context, p Provider, spec *function.Spec) (ProvisionResult, error) {
	pr, err := p.Provision(ctx, spec)
	if err != nil {
		return r.Degrade(spec, err)
	}
	if pr.EffectiveMode == "" {
		pr.EffectiveMode = function.ModeDeployment
	}
	return pr, nil
}

// Degrade turns a selection/provisioning failure into a POOL registration at spec's endpointUrl
// with the failure message as the degradation reason, when err is failure.Unavailable and the
// endpoint is non-blank. Otherwise it returns err unchanged: like the reference, which degrades
// only on IllegalStateException, a failure.Internal (e.g. a Kubernetes API error) stays a 500.
// It never degrades to LOCAL.
func (r *Resolver) Degrade(spec *function.Spec, err error) (ProvisionResult, error) {
	var fe *failure.Error
	if !errors.As(err, &fe) || fe.Kind != failure.Unavailable || blank(spec.Endpoint()) {
		return ProvisionResult{}, err
	}
	return ProvisionResult{
		EndpointURL:       spec.Endpoint(),
		EffectiveMode:     function.ModePool,
		DegradationReason: fe.Message,
		Metadata:          map[string]string{},
	}, nil
}

func blank(s string) bool { return strings.TrimSpace(s) == "" }
