package registry

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/nanofaas/control-plane/internal/deploy"
	"github.com/nanofaas/control-plane/internal/function"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// journal is an ordered, concurrency-safe record of side effects shared by fakes.
type journal struct {
	mu     sync.Mutex
	events []string
}

func (j *journal) add(format string, args ...any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.events = append(j.events, fmt.Sprintf(format, args...))
}

func (j *journal) reset() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.events = nil
}

func (j *journal) list() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.events...)
}

func (j *journal) count(event string) int {
	n := 0
	for _, e := range j.list() {
		if e == event {
			n++
		}
	}
	return n
}

// fakeProvider is an available provider supporting every DEPLOYMENT spec. Hooks, when set,
// run inside the corresponding call (to block or fail it).
type fakeProvider struct {
	id      string
	j       *journal
	url     string // endpoint returned by Provision; default http://<id>/<name>
	onProv  func(ctx context.Context, spec *function.Spec) error
	onDepr  func(ctx context.Context, name string) error
	onScale func(name string, n int) error
}

func (f *fakeProvider) BackendID() string { return f.id }
func (f *fakeProvider) Available() bool   { return true }
func (f *fakeProvider) Supports(spec *function.Spec) bool {
	return spec.Mode() == function.ModeDeployment
}
func (f *fakeProvider) Provision(ctx context.Context, spec *function.Spec) (deploy.ProvisionResult, error) {
	f.j.add("%s.provision %s", f.id, spec.Name)
	if f.onProv != nil {
		if err := f.onProv(ctx, spec); err != nil {
			return deploy.ProvisionResult{}, err
		}
	}
	url := f.url
	if url == "" {
		url = "http://" + f.id + "/" + spec.Name
	}
	return deploy.Managed(url, f.id), nil
}
func (f *fakeProvider) Deprovision(ctx context.Context, name string) error {
	f.j.add("%s.deprovision %s", f.id, name)
	if f.onDepr != nil {
		return f.onDepr(ctx, name)
	}
	return nil
}
func (f *fakeProvider) SetReplicas(ctx context.Context, name string, n int) error {
	f.j.add("%s.replicas %s %d", f.id, name, n)
	if f.onScale != nil {
		return f.onScale(name, n)
	}
	return nil
}
func (f *fakeProvider) ReadyReplicas(ctx context.Context, name string) (int, error) {
	f.j.add("%s.ready %s", f.id, name)
	return 1, nil
}

// fakeListener records notifications; failRegister/failRemove make it fail.
type fakeListener struct {
	id           string
	j            *journal
	failRegister error
	failRemove   error
}

func (l *fakeListener) OnRegister(ctx context.Context, spec *function.Spec) error {
	l.j.add("%s.onRegister %s %s", l.id, spec.Name, spec.Endpoint())
	return l.failRegister
}

func (l *fakeListener) OnRemove(ctx context.Context, name string) error {
	l.j.add("%s.onRemove %s", l.id, name)
	return l.failRemove
}

// fakeValidator records the specs it validated.
type fakeValidator struct {
	j   *journal
	err error
	mu  sync.Mutex
	got []*function.Spec
}

func (v *fakeValidator) Validate(ctx context.Context, spec *function.Spec) error {
	v.mu.Lock()
	v.got = append(v.got, spec)
	v.mu.Unlock()
	v.j.add("validate %s", spec.Name)
	return v.err
}

// newService builds a Service over providers (default backend def) with the given listeners.
func newService(t testing.TB, def string, images ImageValidator, listeners []Listener, providers ...deploy.Provider) *Service {
	t.Helper()
	pr, err := deploy.NewResolver(def, providers...)
	if err != nil {
		t.Fatal(err)
	}
	return NewService(Deps{
		Registry:  New(),
		Specs:     NewResolver(ReferenceDefaults()),
		Providers: pr,
		Listeners: listeners,
		Images:    images,
	})
}

func localSpec(name string) function.Spec {
	return function.Spec{Name: name, Image: "img", ExecutionMode: ptr(function.ModeLocal)}
}

func deploymentSpec(name string) function.Spec {
	return function.Spec{Name: name, Image: "img", ExecutionMode: ptr(function.ModeDeployment)}
}
