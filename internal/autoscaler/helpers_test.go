package autoscaler

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/nanofaas/control-plane/internal/function"
	"github.com/nanofaas/control-plane/internal/registry"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

func ptr[T any](v T) *T { return &v }

// t0 is a realistic epoch: the adaptive state's "never" is epoch 0, as in the reference.
var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock { return &fakeClock{now: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// fakeReplicas is a Replicas whose ready counts follow SetReplicas immediately (an instantly
// ready deployment) and which records every SetReplicas call.
type fakeReplicas struct {
	mu       sync.Mutex
	ready    map[string]int
	reads    map[string]int
	readErr  map[string]error
	setErr   map[string]error
	sets     []setCall
	notified chan setCall // optional; receives every call
}

type setCall struct {
	fn string
	n  int
}

func newReplicas() *fakeReplicas {
	return &fakeReplicas{ready: map[string]int{}, reads: map[string]int{}, readErr: map[string]error{}, setErr: map[string]error{}}
}

func (r *fakeReplicas) ReadyReplicas(_ context.Context, name string) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reads[name]++
	if err := r.readErr[name]; err != nil {
		return 0, err
	}
	return r.ready[name], nil
}

func (r *fakeReplicas) SetReplicas(_ context.Context, name string, n int) (int, error) {
	r.mu.Lock()
	call := setCall{name, n}
	err := r.setErr[name]
	if err == nil {
		r.sets = append(r.sets, call)
		r.ready[name] = n
	}
	ch := r.notified
	r.mu.Unlock()
	if ch != nil && err == nil {
		ch <- call
	}
	return n, err
}

func (r *fakeReplicas) setReady(name string, n int) {
	r.mu.Lock()
	r.ready[name] = n
	r.mu.Unlock()
}

func (r *fakeReplicas) readCount(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reads[name]
}

// takeSets returns and clears the recorded SetReplicas calls.
func (r *fakeReplicas) takeSets() []setCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.sets
	r.sets = nil
	return out
}

var errBoom = errors.New("boom")

// fakeLister is a settable function list.
type fakeLister struct {
	mu   sync.Mutex
	regs []*registry.Registered
}

func (l *fakeLister) List() []*registry.Registered {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*registry.Registered(nil), l.regs...)
}

// fakeDispatches is a settable DispatchCounter.
type fakeDispatches struct {
	mu     sync.Mutex
	counts map[string]float64
}

func (d *fakeDispatches) DispatchCount(fn string) float64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.counts[fn]
}

func (d *fakeDispatches) add(fn string, n float64) {
	d.mu.Lock()
	if d.counts == nil {
		d.counts = map[string]float64{}
	}
	d.counts[fn] += n
	d.mu.Unlock()
}

// recordingSource is a ScalingMetricsSource with settable signals that records every push.
type recordingSource struct {
	mu       sync.Mutex
	depth    map[string]int
	inFlight map[string]int
	pushes   []push
}

type push struct {
	fn        string
	effective int
	mode      function.ConcurrencyControlMode
	target    int
}

func newSource() *recordingSource {
	return &recordingSource{depth: map[string]int{}, inFlight: map[string]int{}}
}

func (s *recordingSource) QueueDepth(fn string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.depth[fn]
}

func (s *recordingSource) InFlight(fn string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inFlight[fn]
}

func (s *recordingSource) SetEffectiveConcurrency(fn string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pushes = append(s.pushes, push{fn: fn, effective: n})
}

// UpdateConcurrencyController completes the push started by SetEffectiveConcurrency (the
// scaler always calls the two in this order).
func (s *recordingSource) UpdateConcurrencyController(fn string, mode function.ConcurrencyControlMode, target int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	last := &s.pushes[len(s.pushes)-1]
	if last.fn != fn || last.mode != "" {
		panic("UpdateConcurrencyController without a preceding SetEffectiveConcurrency for " + fn)
	}
	last.mode, last.target = mode, target
}

func (s *recordingSource) setDepth(fn string, n int) {
	s.mu.Lock()
	s.depth[fn] = n
	s.mu.Unlock()
}

func (s *recordingSource) setInFlight(fn string, n int) {
	s.mu.Lock()
	s.inFlight[fn] = n
	s.mu.Unlock()
}

func (s *recordingSource) takePushes() []push {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.pushes
	s.pushes = nil
	return out
}

// metric returns a scaling metric of type typ with target.
func metric(typ, target string) *function.ScalingMetric {
	return &function.ScalingMetric{Type: ptr(typ), Target: ptr(target)}
}

// deploymentSpec resolves a DEPLOYMENT spec with the given scaling config through the real
// resolver (defaults, normalization), so tests see what a registration stores.
func deploymentSpec(t *testing.T, name string, concurrency int, sc *function.ScalingConfig) *function.Spec {
	t.Helper()
	spec, err := registry.NewResolver(registry.ReferenceDefaults()).Resolve(&function.Spec{
		Name: name, Image: "img", Concurrency: ptr(concurrency), ScalingConfig: sc,
	})
	if err != nil {
		t.Fatalf("resolve %s: %v", name, err)
	}
	return spec
}

// managed wraps spec as a managed deployment provisioned by the process backend.
func managed(spec *function.Spec) *registry.Registered {
	return &registry.Registered{Spec: spec, Meta: registry.DeploymentMetadata{
		RequestedMode: function.ModeDeployment, EffectiveMode: function.ModeDeployment, Backend: "process",
	}}
}

func internalScaling(minR, maxR int, metrics ...*function.ScalingMetric) *function.ScalingConfig {
	return &function.ScalingConfig{
		Strategy: ptr(function.StrategyInternal), MinReplicas: ptr(minR), MaxReplicas: ptr(maxR), Metrics: metrics,
	}
}

// harness is a Scaler over fakes, driven tick by tick.
type harness struct {
	s        *Scaler
	clock    *fakeClock
	replicas *fakeReplicas
	fns      *fakeLister
	source   *recordingSource
	disp     *fakeDispatches
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{clock: newClock(), replicas: newReplicas(), fns: &fakeLister{}, source: newSource(), disp: &fakeDispatches{}}
	s, err := New(Deps{
		Functions: h.fns, Replicas: h.replicas, Dispatches: h.disp, Metrics: h.source,
		Logger: quietLog, Now: h.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.s = s
	return h
}

// register announces reg to the scaler (as the registry service would) and lists it.
func (h *harness) register(t *testing.T, reg *registry.Registered) {
	t.Helper()
	if err := h.s.OnRegister(context.Background(), reg.Spec); err != nil {
		t.Fatal(err)
	}
	h.fns.mu.Lock()
	h.fns.regs = append(h.fns.regs, reg)
	h.fns.mu.Unlock()
}

// remove unlists name and announces the removal.
func (h *harness) remove(t *testing.T, name string) {
	t.Helper()
	h.fns.mu.Lock()
	kept := h.fns.regs[:0]
	for _, r := range h.fns.regs {
		if r.Spec.Name != name {
			kept = append(kept, r)
		}
	}
	h.fns.regs = kept
	h.fns.mu.Unlock()
	if err := h.s.OnRemove(context.Background(), name); err != nil {
		t.Fatal(err)
	}
}

func (h *harness) tick() { h.s.tick(context.Background()) }
