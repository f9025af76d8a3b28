package deploy

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/nanofaas/control-plane/internal/failure"
	"github.com/nanofaas/control-plane/internal/function"
)

// fakeProvider records calls; zero value is an available provider that supports everything.
type fakeProvider struct {
	id           string
	unavailable  bool
	unsupported  bool
	result       ProvisionResult
	provisionErr error
	opErr        error
	ready        int

	mu    sync.Mutex
	calls []string
}

func (f *fakeProvider) BackendID() string                 { return f.id }
func (f *fakeProvider) Available() bool                   { return !f.unavailable }
func (f *fakeProvider) Supports(spec *function.Spec) bool { return !f.unsupported }
func (f *fakeProvider) record(c string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
}
func (f *fakeProvider) Provision(ctx context.Context, spec *function.Spec) (ProvisionResult, error) {
	f.record("provision " + spec.Name)
	return f.result, f.provisionErr
}
func (f *fakeProvider) Deprovision(ctx context.Context, name string) error {
	f.record("deprovision " + name)
	return f.opErr
}
func (f *fakeProvider) SetReplicas(ctx context.Context, name string, n int) error {
	f.record(fmt.Sprintf("replicas %s %d", name, n))
	return f.opErr
}
func (f *fakeProvider) ReadyReplicas(ctx context.Context, name string) (int, error) {
	f.record("ready " + name)
	return f.ready, f.opErr
}

func spec(name, endpoint string) *function.Spec {
	s := &function.Spec{Name: name, Image: "img"}
	if endpoint != "" {
		s.EndpointURL = &endpoint
	}
	mode := function.ModeDeployment
	s.ExecutionMode = &mode
	return s
}

func mustResolver(t *testing.T, def string, ps ...Provider) *Resolver {
	t.Helper()
	r, err := NewResolver(def, ps...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestResolve_SelectsProviderOrFailsWithReferenceMessage(t *testing.T) {
	k8s := &fakeProvider{id: "k8s"}
	local := &fakeProvider{id: "container-local"}
	down := &fakeProvider{id: "down", unavailable: true}
	picky := &fakeProvider{id: "picky", unsupported: true}
	process := &fakeProvider{id: "process"}
	tests := []struct {
		name      string
		def, hint string
		providers []Provider
		want      string // backend id, or "" when an error is expected
		wantErr   string
	}{
		{"explicit hint", "", "container-local", []Provider{k8s, local}, "container-local", ""},
		{"hint wins over default", "k8s", "container-local", []Provider{k8s, local}, "container-local", ""},
		{"explicit unknown", "", "nope", []Provider{k8s}, "", "No managed deployment provider with id 'nope' found"},
		{"explicit unavailable", "", "down", []Provider{down}, "", "Provider 'down' is not available"},
		{"explicit unsupported", "", "picky", []Provider{picky}, "", "Provider 'picky' does not support function 'fn'"},
		{"default backend preferred over implicit", "container-local", "", []Provider{k8s, local}, "container-local", ""},
		{"blank hint falls back to default", "k8s", "  ", []Provider{k8s, local}, "k8s", ""},
		{"default backend unknown", "gone", "", []Provider{k8s}, "", "No managed deployment provider with id 'gone' found"},
		{"single implicit", "", "", []Provider{k8s, down, picky}, "k8s", ""},
		{"ambiguous lists sorted ids", "", "", []Provider{local, k8s, down}, "",
			"Ambiguous managed deployment provider selection for function 'fn': [container-local, k8s]"},
		{"none", "", "", []Provider{down, picky}, "", "No managed deployment provider available for function 'fn'"},
		{"no providers at all", "", "", nil, "", "No managed deployment provider available for function 'fn'"},
		{"D15 process loses to another provider", "", "", []Provider{process, k8s}, "k8s", ""},
		{"D15 process chosen when alone", "", "", []Provider{process, down, picky}, "process", ""},
		{"D15 process never makes it ambiguous", "", "", []Provider{process, local, k8s}, "",
			"Ambiguous managed deployment provider selection for function 'fn': [container-local, k8s]"},
		{"D15 process as default backend wins", "process", "", []Provider{k8s, process}, "process", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustResolver(t, tt.def, tt.providers...)
			p, err := r.Resolve(spec("fn", ""), tt.hint)
			if tt.wantErr != "" {
				if !failure.IsKind(err, failure.Unavailable) || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want Unavailable %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.BackendID() != tt.want {
				t.Fatalf("chose %q, want %q", p.BackendID(), tt.want)
			}
		})
	}
}

func TestResolveAndProvision_DegradesOrPassesThrough(t *testing.T) {
	provisionFails := func(err error) *fakeProvider { return &fakeProvider{id: "k8s", provisionErr: err} }
	boom := errors.New("kubernetes API exploded")
	tests := []struct {
		name     string
		provider *fakeProvider // nil = no providers
		endpoint string
		want     ProvisionResult
		wantErr  error
	}{
		{"provider result passes through", &fakeProvider{id: "k8s", result: Managed("http://svc/invoke", "k8s")},
			"http://ignored", Managed("http://svc/invoke", "k8s"), nil},
		{"zero effective mode means DEPLOYMENT", &fakeProvider{id: "k8s", result: ProvisionResult{EndpointURL: "u", BackendID: "k8s"}},
			"", Managed("u", "k8s"), nil},
		{"no provider with endpoint degrades to POOL", nil, "http://external:8080/invoke",
			ProvisionResult{EndpointURL: "http://external:8080/invoke", EffectiveMode: function.ModePool,
				DegradationReason: "No managed deployment provider available for function 'fn'", Metadata: map[string]string{}}, nil},
		{"provision unavailable with endpoint degrades", provisionFails(failure.Unavailablef("quota exceeded")), "http://e",
			ProvisionResult{EndpointURL: "http://e", EffectiveMode: function.ModePool, DegradationReason: "quota exceeded",
				Metadata: map[string]string{}}, nil},
		{"wrapped unavailable uses its own message", provisionFails(fmt.Errorf("ctx: %w", failure.Unavailablef("inner"))), "http://e",
			ProvisionResult{EndpointURL: "http://e", EffectiveMode: function.ModePool, DegradationReason: "inner",
				Metadata: map[string]string{}}, nil},
		{"no provider without endpoint fails", nil, "", ProvisionResult{},
			failure.Unavailablef("No managed deployment provider available for function 'fn'")},
		{"blank endpoint does not degrade", nil, "   ", ProvisionResult{},
			failure.Unavailablef("No managed deployment provider available for function 'fn'")},
		{"other provision error never degrades", provisionFails(boom), "http://e", ProvisionResult{}, boom},
		{"invalid-argument error never degrades", provisionFails(failure.Invalidf("bad name")), "http://e", ProvisionResult{},
			failure.Invalidf("bad name")},
		{"internal error (e.g. Kubernetes API) never degrades", provisionFails(failure.Internalf(boom, "Kubernetes API error: cannot create HPA")),
			"http://e", ProvisionResult{}, failure.Internalf(boom, "Kubernetes API error: cannot create HPA")},
		{"internal error wrapping an unavailable one never degrades",
			provisionFails(failure.Internalf(failure.Unavailablef("inner"), "outer")), "http://e", ProvisionResult{},
			failure.Internalf(nil, "outer")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ps []Provider
			if tt.provider != nil {
				ps = append(ps, tt.provider)
			}
			r := mustResolver(t, "", ps...)
			got, err := r.ResolveAndProvision(context.Background(), spec("fn", tt.endpoint), "")
			if tt.wantErr != nil {
				if err == nil || err.Error() != tt.wantErr.Error() {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				var want *failure.Error
				if errors.As(tt.wantErr, &want) && !failure.IsKind(err, want.Kind) {
					t.Fatalf("err kind changed: %#v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			if got.EffectiveMode == function.ModeLocal {
				t.Fatal("degraded to LOCAL")
			}
		})
	}
}

func TestNewResolver_RejectsDuplicateAndEmptyIDs(t *testing.T) {
	if _, err := NewResolver("", &fakeProvider{id: "a"}, &fakeProvider{id: "a"}); err == nil {
		t.Fatal("duplicate id accepted")
	}
	if _, err := NewResolver("", &fakeProvider{}); err == nil {
		t.Fatal("empty id accepted")
	}
	if _, err := NewResolver("", nil); err == nil {
		t.Fatal("nil provider accepted")
	}
}

func TestCoordinator_RoutesToProvisioningBackend(t *testing.T) {
	k8s := &fakeProvider{id: "k8s", ready: 2}
	c := NewCoordinator(mustResolver(t, "", k8s))
	ctx := context.Background()
	managed := Target{Name: "fn", EffectiveMode: function.ModeDeployment, Backend: "k8s"}

	if err := c.SetReplicas(ctx, managed, 3); err != nil {
		t.Fatal(err)
	}
	if n, err := c.ReadyReplicas(ctx, managed); err != nil || n != 2 {
		t.Fatalf("ReadyReplicas = %d, %v", n, err)
	}
	if err := c.Deprovision(ctx, managed); err != nil {
		t.Fatal(err)
	}
	if want := []string{"replicas fn 3", "ready fn", "deprovision fn"}; !reflect.DeepEqual(k8s.calls, want) {
		t.Fatalf("calls = %q, want %q", k8s.calls, want)
	}

	errs := []struct {
		target Target
		want   string
	}{
		{Target{Name: "p", EffectiveMode: function.ModePool, Backend: "k8s"}, "Function 'p' is not a managed deployment"},
		{Target{Name: "d", EffectiveMode: function.ModeDeployment}, "Function 'd' is not a managed deployment"},
		{Target{Name: "g", EffectiveMode: function.ModeDeployment, Backend: "gone"}, "No managed deployment provider with id 'gone' found"},
	}
	for _, e := range errs {
		if err := c.SetReplicas(ctx, e.target, 1); !failure.IsKind(err, failure.Unavailable) || err.Error() != e.want {
			t.Errorf("SetReplicas(%+v) = %v, want %q", e.target, err, e.want)
		}
		if err := c.Deprovision(ctx, e.target); err == nil || err.Error() != e.want {
			t.Errorf("Deprovision(%+v) = %v, want %q", e.target, err, e.want)
		}
		if _, err := c.ReadyReplicas(ctx, e.target); err == nil || err.Error() != e.want {
			t.Errorf("ReadyReplicas(%+v) = %v, want %q", e.target, err, e.want)
		}
	}

	k8s.opErr = failure.Invalidf("replicas too high")
	if err := c.SetReplicas(ctx, managed, 99); !failure.IsKind(err, failure.InvalidArgument) {
		t.Fatalf("provider error not passed through: %v", err)
	}
}
