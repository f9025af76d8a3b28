package registry

import (
	"context"
	"errors"
	"reflect"
	"strconv"
	"testing"

	"github.com/nanofaas/control-plane/internal/failure"
	"github.com/nanofaas/control-plane/internal/function"
)

func assertEvents(t *testing.T, j *journal, want ...string) {
	t.Helper()
	if got := j.list(); !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Fatalf("events\n got: %q\nwant: %q", got, want)
	}
}

func assertNoLocks(t *testing.T, s *Service) {
	t.Helper()
	if n := s.lockCount(); n != 0 {
		t.Fatalf("lock table holds %d entries after operations finished", n)
	}
}

func TestRegister_LocalFunctionIsStoredAndReturned(t *testing.T) {
	j := &journal{}
	s := newService(t, "", nil, []Listener{&fakeListener{id: "l1", j: j}})
	reg, err := s.Register(context.Background(), localSpec("echo"))
	if err != nil {
		t.Fatal(err)
	}
	want := DeploymentMetadata{RequestedMode: function.ModeLocal, EffectiveMode: function.ModeLocal}
	if reg.Meta != want {
		t.Fatalf("meta = %+v, want %+v", reg.Meta, want)
	}
	if got, ok := s.Get("echo"); !ok || got != reg {
		t.Fatal("stored value differs from the returned one")
	}
	if reg.Spec.Timeout() != 30000 {
		t.Fatal("stored spec is not resolved")
	}
	assertEvents(t, j, "l1.onRegister echo ")
	assertNoLocks(t, s)
}

func TestRegister_PoolFunctionKeepsUserEndpoint(t *testing.T) {
	s := newService(t, "", nil, nil)
	spec := localSpec("p")
	spec.ExecutionMode, spec.EndpointURL = ptr(function.ModePool), ptr("http://pool/invoke")
	reg, err := s.Register(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	want := DeploymentMetadata{RequestedMode: function.ModePool, EffectiveMode: function.ModePool, EffectiveEndpointURL: "http://pool/invoke"}
	if reg.Meta != want {
		t.Fatalf("meta = %+v, want %+v", reg.Meta, want)
	}
}

func TestRegister_DeploymentProvisionsAndPersistsEndpointAndMetadata(t *testing.T) {
	j := &journal{}
	k8s := &fakeProvider{id: "k8s", j: j}
	s := newService(t, "", nil, []Listener{&fakeListener{id: "l1", j: j}}, k8s)
	reg, err := s.Register(context.Background(), deploymentSpec("fn"))
	if err != nil {
		t.Fatal(err)
	}
	want := DeploymentMetadata{RequestedMode: function.ModeDeployment, EffectiveMode: function.ModeDeployment,
		Backend: "k8s", EffectiveEndpointURL: "http://k8s/fn"}
	if reg.Meta != want {
		t.Fatalf("meta = %+v, want %+v", reg.Meta, want)
	}
	if reg.Spec.Endpoint() != "http://k8s/fn" || reg.Spec.Mode() != function.ModeDeployment {
		t.Fatalf("effective spec endpoint/mode = %q/%s", reg.Spec.Endpoint(), reg.Spec.Mode())
	}
	if got, _ := s.Get("fn"); got.Meta != want {
		t.Fatalf("stored meta = %+v", got.Meta)
	}
	assertEvents(t, j, "k8s.provision fn", "l1.onRegister fn http://k8s/fn")
	assertNoLocks(t, s)
}

func TestRegister_DeploymentDegradesToPoolWithReason(t *testing.T) {
	j := &journal{}
	s := newService(t, "", nil, []Listener{&fakeListener{id: "l1", j: j}})
	spec := deploymentSpec("fn")
	spec.EndpointURL = ptr("http://external:8080/invoke")
	reg, err := s.Register(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	want := DeploymentMetadata{RequestedMode: function.ModeDeployment, EffectiveMode: function.ModePool,
		DegradationReason:    "No managed deployment provider available for function 'fn'",
		EffectiveEndpointURL: "http://external:8080/invoke"}
	if reg.Meta != want {
		t.Fatalf("meta = %+v, want %+v", reg.Meta, want)
	}
	if reg.Spec.Mode() != function.ModePool || reg.Spec.ScalingConfig == nil {
		t.Fatalf("effective spec mode %s, scaling %v: want POOL with the resolved scaling config", reg.Spec.Mode(), reg.Spec.ScalingConfig)
	}
	assertEvents(t, j, "l1.onRegister fn http://external:8080/invoke")
}

func TestRegister_DeploymentWithoutProviderOrEndpointIsUnavailable(t *testing.T) {
	j := &journal{}
	s := newService(t, "", nil, []Listener{&fakeListener{id: "l1", j: j}})
	_, err := s.Register(context.Background(), function.Spec{Name: "fn", Image: "img"}) // default mode DEPLOYMENT
	if !failure.IsKind(err, failure.Unavailable) || err.Error() != "No managed deployment provider available for function 'fn'" {
		t.Fatalf("err = %v", err)
	}
	if _, ok := s.Get("fn"); ok {
		t.Fatal("failed registration stored")
	}
	assertEvents(t, j)
	assertNoLocks(t, s)
}

func TestRegister_DuplicateNameReturnsConflictWithoutSideEffects(t *testing.T) {
	j := &journal{}
	v := &fakeValidator{j: j}
	s := newService(t, "", v, []Listener{&fakeListener{id: "l1", j: j}}, &fakeProvider{id: "k8s", j: j})
	first, err := s.Register(context.Background(), deploymentSpec("fn"))
	if err != nil {
		t.Fatal(err)
	}
	before := len(j.list())
	dup := deploymentSpec("fn")
	dup.Image = "other"
	if _, err := s.Register(context.Background(), dup); !errors.Is(err, ErrAlreadyRegistered) {
		t.Fatalf("err = %v, want ErrAlreadyRegistered", err)
	}
	if got := j.list()[before:]; len(got) != 0 {
		t.Fatalf("duplicate registration caused %q", got)
	}
	if got, _ := s.Get("fn"); got != first {
		t.Fatal("duplicate replaced the stored function")
	}
	assertNoLocks(t, s)
}

func TestRegister_InvalidSpecRejectedBeforeDuplicateCheck(t *testing.T) {
	s := newService(t, "", nil, nil)
	if _, err := s.Register(context.Background(), localSpec("fn")); err != nil {
		t.Fatal(err)
	}
	bad := deploymentSpec("fn")
	bad.ScalingConfig = &function.ScalingConfig{MaxReplicas: ptr(0)}
	if _, err := s.Register(context.Background(), bad); !failure.IsKind(err, failure.InvalidArgument) || err.Error() != "maxReplicas must be >= 1" {
		t.Fatalf("err = %v, want InvalidArgument maxReplicas", err)
	}
}

func TestRegister_ImageValidatedOnlyForK8sBackend(t *testing.T) {
	tests := []struct {
		name      string
		backend   string // provider registered ("" = none)
		spec      function.Spec
		validated bool
	}{
		{"k8s DEPLOYMENT is validated", "k8s", deploymentSpec("fn"), true},
		{"process DEPLOYMENT is not", "process", deploymentSpec("fn"), false},
		{"container-local DEPLOYMENT is not", "container-local", deploymentSpec("fn"), false},
		{"LOCAL is not", "k8s", localSpec("fn"), false},
		{"degraded DEPLOYMENT is not", "", func() function.Spec {
			s := deploymentSpec("fn")
			s.EndpointURL = ptr("http://e")
			return s
		}(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := &journal{}
			v := &fakeValidator{j: j}
			var s *Service
			if tt.backend == "" {
				s = newService(t, "", v, nil)
			} else {
				s = newService(t, "", v, nil, &fakeProvider{id: tt.backend, j: j})
			}
			if _, err := s.Register(context.Background(), tt.spec); err != nil {
				t.Fatal(err)
			}
			if got := len(v.got) == 1; got != tt.validated {
				t.Fatalf("validated = %v, want %v (events %q)", got, tt.validated, j.list())
			}
			if tt.validated {
				// Called with the resolved spec, after selection and before provisioning.
				if v.got[0].Timeout() != 30000 || v.got[0].ScalingConfig == nil {
					t.Fatalf("validator got an unresolved spec: %+v", v.got[0])
				}
				assertEvents(t, j, "validate fn", "k8s.provision fn")
			}
		})
	}
}

func TestRegister_ImageValidationFailureStopsRegistration(t *testing.T) {
	j := &journal{}
	v := &fakeValidator{j: j, err: failure.ImageNotFound("img")}
	s := newService(t, "", v, []Listener{&fakeListener{id: "l1", j: j}}, &fakeProvider{id: "k8s", j: j})
	spec := deploymentSpec("fn")
	spec.EndpointURL = ptr("http://fallback") // image errors never degrade
	_, err := s.Register(context.Background(), spec)
	var iv *failure.ImageValidation
	if !errors.As(err, &iv) || iv.Status != 422 {
		t.Fatalf("err = %v, want ImageValidation 422", err)
	}
	if _, ok := s.Get("fn"); ok {
		t.Fatal("function stored")
	}
	assertEvents(t, j, "validate fn")
	assertNoLocks(t, s)
}

func TestRegister_ProvisionFailures(t *testing.T) {
	boom := errors.New("api exploded")
	tests := []struct {
		name     string
		err      error
		endpoint string
		wantErr  error // nil = degraded registration
	}{
		{"unavailable without endpoint fails", failure.Unavailablef("cluster full"), "", failure.Unavailablef("cluster full")},
		{"unavailable with endpoint degrades", failure.Unavailablef("cluster full"), "http://e", nil},
		{"unexpected error passes through", boom, "http://e", boom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := &journal{}
			p := &fakeProvider{id: "k8s", j: j, onProv: func(context.Context, *function.Spec) error { return tt.err }}
			s := newService(t, "", nil, []Listener{&fakeListener{id: "l1", j: j}}, p)
			spec := deploymentSpec("fn")
			if tt.endpoint != "" {
				spec.EndpointURL = &tt.endpoint
			}
			reg, err := s.Register(context.Background(), spec)
			if tt.wantErr != nil {
				if err == nil || err.Error() != tt.wantErr.Error() {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				assertEvents(t, j, "k8s.provision fn")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if reg.Meta.EffectiveMode != function.ModePool || reg.Meta.DegradationReason != "cluster full" || reg.Meta.Backend != "" {
				t.Fatalf("meta = %+v", reg.Meta)
			}
		})
	}
}

func TestRegister_ListenerFailureRollsBackListenersAndDeployment(t *testing.T) {
	j := &journal{}
	listenerErr := failure.Unavailablef("queue setup failed")
	listeners := []Listener{
		&fakeListener{id: "l1", j: j},
		&fakeListener{id: "l2", j: j},
		&fakeListener{id: "l3", j: j, failRegister: listenerErr},
		&fakeListener{id: "l4", j: j},
	}
	s := newService(t, "", nil, listeners, &fakeProvider{id: "k8s", j: j})
	_, err := s.Register(context.Background(), deploymentSpec("fn"))
	if err != listenerErr {
		t.Fatalf("err = %v, want the listener's error", err)
	}
	assertEvents(t, j,
		"k8s.provision fn",
		"l1.onRegister fn http://k8s/fn", "l2.onRegister fn http://k8s/fn", "l3.onRegister fn http://k8s/fn",
		"l2.onRemove fn", "l1.onRemove fn",
		"k8s.deprovision fn")
	if _, ok := s.Get("fn"); ok {
		t.Fatal("function stored after rollback")
	}
	assertNoLocks(t, s)
}

func TestRegister_ListenerFailureOfUnmanagedFunctionDoesNotDeprovision(t *testing.T) {
	j := &journal{}
	s := newService(t, "", nil, []Listener{&fakeListener{id: "l1", j: j, failRegister: errors.New("x")}},
		&fakeProvider{id: "k8s", j: j})
	spec := deploymentSpec("fn")
	spec.EndpointURL = ptr("http://e")
	spec.ExecutionMode = ptr(function.ModePool)
	if _, err := s.Register(context.Background(), spec); err == nil {
		t.Fatal("listener failure ignored")
	}
	assertEvents(t, j, "l1.onRegister fn http://e")
}

func TestRegister_RollbackRunsEvenWhenContextIsCancelled(t *testing.T) {
	j := &journal{}
	ctx, cancel := context.WithCancel(context.Background())
	var deprovisionCtxErr error = errors.New("not called")
	p := &fakeProvider{id: "k8s", j: j, onDepr: func(ctx context.Context, _ string) error {
		deprovisionCtxErr = ctx.Err()
		return nil
	}}
	failing := &cancelListener{cancel: cancel}
	s := newService(t, "", nil, []Listener{failing}, p)
	if _, err := s.Register(ctx, deploymentSpec("fn")); err == nil {
		t.Fatal("want error")
	}
	if deprovisionCtxErr != nil {
		t.Fatalf("deprovision ran with a dead context (%v)", deprovisionCtxErr)
	}
}

// cancelListener cancels the caller's context and then fails, like a client disconnecting mid-way.
type cancelListener struct{ cancel context.CancelFunc }

func (l *cancelListener) OnRegister(ctx context.Context, _ *function.Spec) error {
	l.cancel()
	return ctx.Err()
}
func (l *cancelListener) OnRemove(context.Context, string) error { return nil }

func TestRegister_RollbackFailuresDoNotReplaceTheError(t *testing.T) {
	j := &journal{}
	cause := errors.New("listener 2 failed")
	p := &fakeProvider{id: "k8s", j: j, onDepr: func(context.Context, string) error { return errors.New("deprovision failed") }}
	s := newService(t, "", nil, []Listener{
		&fakeListener{id: "l1", j: j, failRemove: errors.New("compensation failed")},
		&fakeListener{id: "l2", j: j, failRegister: cause},
	}, p)
	if _, err := s.Register(context.Background(), deploymentSpec("fn")); err != cause {
		t.Fatalf("err = %v, want %v", err, cause)
	}
	assertEvents(t, j, "k8s.provision fn", "l1.onRegister fn http://k8s/fn", "l2.onRegister fn http://k8s/fn",
		"l1.onRemove fn", "k8s.deprovision fn")
}

func TestRemove_NotifiesListenersThenDeprovisions(t *testing.T) {
	j := &journal{}
	s := newService(t, "", nil, []Listener{&fakeListener{id: "l1", j: j}, &fakeListener{id: "l2", j: j}},
		&fakeProvider{id: "k8s", j: j})
	reg, err := s.Register(context.Background(), deploymentSpec("fn"))
	if err != nil {
		t.Fatal(err)
	}
	j.reset()
	removed, err := s.Remove(context.Background(), "fn")
	if err != nil || removed != reg {
		t.Fatalf("Remove = %v, %v", removed, err)
	}
	assertEvents(t, j, "l1.onRemove fn", "l2.onRemove fn", "k8s.deprovision fn")
	if _, ok := s.Get("fn"); ok {
		t.Fatal("still registered")
	}
	if _, err := s.Remove(context.Background(), "fn"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Remove err = %v, want ErrNotFound", err)
	}
	assertNoLocks(t, s)
}

func TestRemove_UnmanagedFunctionsAreNotDeprovisioned(t *testing.T) {
	j := &journal{}
	p := &fakeProvider{id: "k8s", j: j, onProv: func(context.Context, *function.Spec) error {
		return failure.Unavailablef("no capacity")
	}}
	s := newService(t, "", nil, nil, p)
	degraded := deploymentSpec("d")
	degraded.EndpointURL = ptr("http://e")
	pool := localSpec("p")
	pool.ExecutionMode, pool.EndpointURL = ptr(function.ModePool), ptr("http://p")
	for _, spec := range []function.Spec{localSpec("l"), pool, degraded} {
		if _, err := s.Register(context.Background(), spec); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Remove(context.Background(), spec.Name); err != nil {
			t.Fatalf("Remove(%s) = %v", spec.Name, err)
		}
	}
	assertEvents(t, j, "k8s.provision d")
}

func TestRemove_ListenerFailureKeepsRegistrationAndSkipsDeprovision(t *testing.T) {
	j := &journal{}
	cause := errors.New("drain failed")
	s := newService(t, "", nil, []Listener{
		&fakeListener{id: "l1", j: j}, &fakeListener{id: "l2", j: j},
		&fakeListener{id: "l3", j: j, failRemove: cause}, &fakeListener{id: "l4", j: j},
	}, &fakeProvider{id: "k8s", j: j})
	reg, err := s.Register(context.Background(), deploymentSpec("fn"))
	if err != nil {
		t.Fatal(err)
	}
	j.reset()
	if _, err := s.Remove(context.Background(), "fn"); err != cause {
		t.Fatalf("err = %v, want %v", err, cause)
	}
	assertEvents(t, j, "l1.onRemove fn", "l2.onRemove fn", "l3.onRemove fn",
		"l2.onRegister fn http://k8s/fn", "l1.onRegister fn http://k8s/fn")
	if got, ok := s.Get("fn"); !ok || got != reg {
		t.Fatal("registration not restored")
	}
	assertNoLocks(t, s)
}

func TestRemove_DeprovisionFailureRestoresRegistration(t *testing.T) {
	j := &journal{}
	cause := failure.Unavailablef("api down")
	p := &fakeProvider{id: "k8s", j: j}
	s := newService(t, "", nil, []Listener{&fakeListener{id: "l1", j: j}, &fakeListener{id: "l2", j: j}}, p)
	reg, err := s.Register(context.Background(), deploymentSpec("fn"))
	if err != nil {
		t.Fatal(err)
	}
	p.onDepr = func(context.Context, string) error { return cause }
	j.reset()
	if _, err := s.Remove(context.Background(), "fn"); err != cause {
		t.Fatalf("err = %v, want %v", err, cause)
	}
	assertEvents(t, j, "l1.onRemove fn", "l2.onRemove fn", "k8s.deprovision fn",
		"l2.onRegister fn http://k8s/fn", "l1.onRegister fn http://k8s/fn")
	if got, _ := s.Get("fn"); got != reg {
		t.Fatal("registration not restored")
	}
}

func TestManagedDeployment_RemoveAndRollbackUseTheProvisioningBackend(t *testing.T) {
	j := &journal{}
	a := &fakeProvider{id: "a", j: j}
	b := &fakeProvider{id: "b", j: j}
	s := newService(t, "b", nil, nil, a, b) // default backend b; a would make implicit selection ambiguous
	reg, err := s.Register(context.Background(), deploymentSpec("fn"))
	if err != nil {
		t.Fatal(err)
	}
	if reg.Meta.Backend != "b" || reg.Spec.Endpoint() != "http://b/fn" {
		t.Fatalf("meta = %+v", reg.Meta)
	}
	if _, err := s.Remove(context.Background(), "fn"); err != nil {
		t.Fatal(err)
	}
	assertEvents(t, j, "b.provision fn", "b.deprovision fn")

	j.reset()
	s = newService(t, "b", nil, []Listener{&fakeListener{id: "l1", j: j, failRegister: errors.New("x")}}, a, b)
	if _, err := s.Register(context.Background(), deploymentSpec("fn")); err == nil {
		t.Fatal("want listener error")
	}
	assertEvents(t, j, "b.provision fn", "l1.onRegister fn http://b/fn", "b.deprovision fn")
}

func TestSetReplicas_Outcomes(t *testing.T) {
	j := &journal{}
	p := &fakeProvider{id: "k8s", j: j, onScale: func(name string, n int) error {
		switch n {
		case 99:
			return failure.Invalidf("too many replicas")
		case 98:
			return failure.Unavailablef("cluster busy")
		}
		return nil
	}}
	s := newService(t, "", nil, nil, p)
	ctx := context.Background()
	for _, spec := range []function.Spec{deploymentSpec("managed"), localSpec("local"),
		func() function.Spec { s := localSpec("pool"); s.ExecutionMode = ptr(function.ModePool); return s }()} {
		if _, err := s.Register(ctx, spec); err != nil {
			t.Fatal(err)
		}
	}
	degraded := deploymentSpec("degraded")
	degraded.EndpointURL = ptr("http://e")
	degradedReg, _ := NewResolver(ReferenceDefaults()).Resolve(&degraded)
	s.registry.Put(&Registered{Spec: degradedReg, Meta: DeploymentMetadata{RequestedMode: function.ModeDeployment,
		EffectiveMode: function.ModePool, DegradationReason: "no provider", EffectiveEndpointURL: "http://e"}})
	s.registry.Put(&Registered{Spec: &function.Spec{Name: "nobackend"},
		Meta: DeploymentMetadata{RequestedMode: function.ModeDeployment, EffectiveMode: function.ModeDeployment}})
	s.registry.Put(&Registered{Spec: &function.Spec{Name: "gone"},
		Meta: DeploymentMetadata{RequestedMode: function.ModeDeployment, EffectiveMode: function.ModeDeployment, Backend: "container-local"}})

	tests := []struct {
		name     string
		fn       string
		replicas int
		kind     failure.Kind // 0 = no classified error
		wantErr  string
	}{
		{"managed scales", "managed", 3, 0, ""},
		{"zero allowed", "managed", 0, 0, ""},
		{"missing", "nope", 1, 0, ErrNotFound.Error()},
		{"LOCAL", "local", 1, failure.InvalidArgument, "Function 'local' is not in DEPLOYMENT mode"},
		{"POOL", "pool", 1, failure.InvalidArgument, "Function 'pool' is not in DEPLOYMENT mode"},
		{"degraded", "degraded", 1, failure.InvalidArgument, "Function 'degraded' is not in DEPLOYMENT mode"},
		{"no backend recorded", "nobackend", 1, failure.Unavailable, "Function 'nobackend' is not a managed deployment"},
		{"backend gone", "gone", 1, failure.Unavailable, "No managed deployment provider with id 'container-local' found"},
		{"provider invalid argument", "managed", 99, failure.InvalidArgument, "too many replicas"},
		{"provider unavailable", "managed", 98, failure.Unavailable, "cluster busy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := s.SetReplicas(ctx, tt.fn, tt.replicas)
			if tt.wantErr == "" {
				if err != nil || n != tt.replicas {
					t.Fatalf("SetReplicas = %d, %v", n, err)
				}
				if j.count("k8s.replicas managed "+strconv.Itoa(tt.replicas)) == 0 {
					t.Fatal("provider not called")
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if tt.kind != 0 && !failure.IsKind(err, tt.kind) {
				t.Fatalf("err kind wrong: %#v", err)
			}
			if tt.kind == 0 && !errors.Is(err, ErrNotFound) {
				t.Fatalf("err = %v, want ErrNotFound", err)
			}
		})
	}
	assertNoLocks(t, s)
}

func TestReadyReplicas_DelegatesToBackend(t *testing.T) {
	j := &journal{}
	s := newService(t, "", nil, nil, &fakeProvider{id: "k8s", j: j})
	if _, err := s.Register(context.Background(), deploymentSpec("fn")); err != nil {
		t.Fatal(err)
	}
	if n, err := s.ReadyReplicas(context.Background(), "fn"); err != nil || n != 1 {
		t.Fatalf("ReadyReplicas = %d, %v", n, err)
	}
	if _, err := s.ReadyReplicas(context.Background(), "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v", err)
	}
}
