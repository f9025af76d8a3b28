package autoscaler

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nanofaas/control-plane/internal/function"
	"github.com/nanofaas/control-plane/internal/registry"
)

func wantSets(t *testing.T, r *fakeReplicas, want ...setCall) {
	t.Helper()
	if got := r.takeSets(); !slices.Equal(got, want) {
		t.Fatalf("SetReplicas calls = %v, want %v", got, want)
	}
}

func TestTick_ScalesUpWhenQueueDepthExceedsTarget(t *testing.T) {
	h := newHarness(t)
	h.register(t, managed(deploymentSpec(t, "echo", 4, internalScaling(1, 10, metric("queue_depth", "5")))))
	h.replicas.setReady("echo", 1)
	h.source.setDepth("echo", 15)

	h.tick()

	wantSets(t, h.replicas, setCall{"echo", 3})
	if got := h.source.takePushes(); !slices.Equal(got, []push{{"echo", 4, function.ConcurrencyFixed, 0}}) {
		t.Fatalf("pushes = %v", got)
	}
}

func TestTick_NoScaleWhenLoadMatchesTarget(t *testing.T) {
	h := newHarness(t)
	h.register(t, managed(deploymentSpec(t, "echo", 4, internalScaling(1, 10, metric("queue_depth", "5")))))
	h.replicas.setReady("echo", 1)
	h.source.setDepth("echo", 5)

	h.tick()

	wantSets(t, h.replicas)
	if got := len(h.source.takePushes()); got != 1 {
		t.Fatalf("%d concurrency pushes, want 1 even without scaling", got)
	}
}

func TestTick_ScaleUpCooldownBlocksFor30Seconds(t *testing.T) {
	h := newHarness(t)
	h.register(t, managed(deploymentSpec(t, "echo", 4, internalScaling(1, 10, metric("queue_depth", "5")))))
	h.replicas.setReady("echo", 1)
	h.source.setDepth("echo", 15)
	h.tick()
	wantSets(t, h.replicas, setCall{"echo", 3}) // ready follows: 3

	h.source.setDepth("echo", 10) // ratio 2 → 6
	h.clock.Advance(29_999 * time.Millisecond)
	h.tick()
	wantSets(t, h.replicas)

	h.clock.Advance(time.Millisecond)
	h.tick()
	wantSets(t, h.replicas, setCall{"echo", 6})
}

func TestTick_ScaleDownCooldownBlocksFor60SecondsAndIgnoresScaleUps(t *testing.T) {
	h := newHarness(t)
	h.register(t, managed(deploymentSpec(t, "echo", 4, internalScaling(1, 10, metric("queue_depth", "5")))))
	h.replicas.setReady("echo", 4)
	h.tick() // idle: 4 → 1
	wantSets(t, h.replicas, setCall{"echo", 1})

	// A burst scales up right away: the down cooldown does not block the other direction.
	h.source.setDepth("echo", 20)
	h.clock.Advance(time.Second)
	h.tick()
	wantSets(t, h.replicas, setCall{"echo", 4})

	h.source.setDepth("echo", 0)
	h.clock.Advance(58_999 * time.Millisecond) // 59 999 ms after the scale-down
	h.tick()
	wantSets(t, h.replicas)

	h.clock.Advance(time.Millisecond)
	h.tick()
	wantSets(t, h.replicas, setCall{"echo", 1})
}

func TestTick_ScalesToZeroAndFromZeroOnlyAboveRatioOne(t *testing.T) {
	h := newHarness(t)
	h.register(t, managed(deploymentSpec(t, "echo", 4, internalScaling(0, 5, metric("in_flight", "2")))))
	h.replicas.setReady("echo", 2)

	h.tick() // no load, min 0
	wantSets(t, h.replicas, setCall{"echo", 0})

	h.source.setInFlight("echo", 2) // ratio 1 at zero replicas: normCurrent 1, desired 1
	h.clock.Advance(time.Minute)
	h.tick()
	wantSets(t, h.replicas)

	h.source.setInFlight("echo", 4) // ratio 2 → 2
	h.clock.Advance(time.Second)
	h.tick()
	wantSets(t, h.replicas, setCall{"echo", 2})
}

func TestTick_ClampsToMaxReplicas(t *testing.T) {
	h := newHarness(t)
	h.register(t, managed(deploymentSpec(t, "echo", 4, internalScaling(1, 5, metric("queue_depth", "1")))))
	h.replicas.setReady("echo", 3)
	h.source.setDepth("echo", 100)

	h.tick()

	wantSets(t, h.replicas, setCall{"echo", 5})
}

func TestTick_EvaluatesOnlyManagedInternalDeployments(t *testing.T) {
	h := newHarness(t)
	busy := func(name string, sc *function.ScalingConfig) *function.Spec {
		h.source.setDepth(name, 100)
		return deploymentSpec(t, name, 4, sc)
	}
	hpa := busy("hpa", &function.ScalingConfig{Strategy: ptr(function.StrategyHPA), Metrics: []*function.ScalingMetric{metric("cpu", "80")}})
	none := busy("none", &function.ScalingConfig{Strategy: ptr(function.StrategyNone)})
	degraded := busy("degraded", internalScaling(1, 10, metric("queue_depth", "5")))
	noBackend := busy("nobackend", internalScaling(1, 10, metric("queue_depth", "5")))
	pool := &function.Spec{Name: "pool", ExecutionMode: ptr(function.ModePool), Concurrency: ptr(4),
		ScalingConfig: internalScaling(1, 10, metric("queue_depth", "5"))}
	h.source.setDepth("pool", 100)

	h.register(t, managed(hpa))
	h.register(t, managed(none))
	h.register(t, &registry.Registered{Spec: degraded, Meta: registry.DeploymentMetadata{
		RequestedMode: function.ModeDeployment, EffectiveMode: function.ModePool, DegradationReason: "no provider"}})
	h.register(t, &registry.Registered{Spec: noBackend, Meta: registry.DeploymentMetadata{
		RequestedMode: function.ModeDeployment, EffectiveMode: function.ModeDeployment, Backend: " "}})
	h.register(t, &registry.Registered{Spec: pool, Meta: registry.DeploymentMetadata{
		RequestedMode: function.ModePool, EffectiveMode: function.ModePool}})

	h.tick()

	wantSets(t, h.replicas)
	for _, fn := range []string{"hpa", "none", "degraded", "nobackend", "pool"} {
		if n := h.replicas.readCount(fn); n != 0 {
			t.Errorf("%s: ReadyReplicas called %d times", fn, n)
		}
	}
	if got := h.source.takePushes(); len(got) != 0 {
		t.Fatalf("pushes for unscaled functions: %v", got)
	}
}

func TestTick_SkipsFunctionsNotAnnouncedToTheListener(t *testing.T) {
	h := newHarness(t)
	reg := managed(deploymentSpec(t, "ghost", 4, internalScaling(1, 10, metric("queue_depth", "5"))))
	h.fns.regs = append(h.fns.regs, reg) // listed, but OnRegister never ran (or OnRemove already did)
	h.source.setDepth("ghost", 100)

	h.tick()

	wantSets(t, h.replicas)
	if h.replicas.readCount("ghost") != 0 {
		t.Fatal("ReadyReplicas called for a function without scaler state")
	}
}

func TestTick_FailingFunctionDoesNotStopOthersNorRecordCooldown(t *testing.T) {
	h := newHarness(t)
	for _, fn := range []string{"a-unreadable", "b-unscalable", "c-healthy"} {
		h.register(t, managed(deploymentSpec(t, fn, 4, internalScaling(1, 10, metric("queue_depth", "5")))))
		h.replicas.setReady(fn, 1)
		h.source.setDepth(fn, 15)
	}
	h.replicas.readErr["a-unreadable"] = errBoom
	h.replicas.setErr["b-unscalable"] = errBoom

	h.tick()

	wantSets(t, h.replicas, setCall{"c-healthy", 3})
	if got := h.source.takePushes(); !slices.Equal(got, []push{{"c-healthy", 4, function.ConcurrencyFixed, 0}}) {
		t.Fatalf("pushes = %v, want only the healthy function's", got)
	}

	// The failed scale-up left no cooldown: once the provider recovers the next tick retries.
	h.replicas.mu.Lock()
	delete(h.replicas.setErr, "b-unscalable")
	h.replicas.mu.Unlock()
	h.clock.Advance(time.Second)
	h.tick()
	wantSets(t, h.replicas, setCall{"b-unscalable", 3})
}

func TestTick_PushesEachConcurrencyModeToTheMetricsSource(t *testing.T) {
	h := newHarness(t)
	static := internalScaling(1, 10, metric("queue_depth", "5"))
	static.ConcurrencyControl = &function.ConcurrencyControlConfig{Mode: ptr(function.ConcurrencyStaticPerPod), TargetInFlightPerPod: ptr(3)}
	adaptive := internalScaling(1, 4, metric("queue_depth", "5"))
	adaptive.ConcurrencyControl = &function.ConcurrencyControlConfig{Mode: ptr(function.ConcurrencyAdaptivePerPod), TargetInFlightPerPod: ptr(4)}
	h.register(t, managed(deploymentSpec(t, "fixed", 6, internalScaling(1, 10, metric("queue_depth", "5")))))
	h.register(t, managed(deploymentSpec(t, "static", 20, static)))
	h.register(t, managed(deploymentSpec(t, "adaptive", 20, adaptive)))
	h.replicas.setReady("fixed", 2)
	h.replicas.setReady("static", 4)
	h.replicas.setReady("adaptive", 4)
	h.source.setDepth("fixed", 5)     // ratio 1
	h.source.setDepth("static", 5)    // ratio 1
	h.source.setDepth("adaptive", 30) // ratio 6, at max (4): target 4 → 3

	h.tick()

	wantSets(t, h.replicas)
	want := []push{
		{"fixed", 6, function.ConcurrencyFixed, 0},
		{"static", 12, function.ConcurrencyStaticPerPod, 3},
		{"adaptive", 12, function.ConcurrencyAdaptivePerPod, 3},
	}
	if got := h.source.takePushes(); !slices.Equal(got, want) {
		t.Fatalf("pushes = %v, want %v", got, want)
	}
}

func TestTick_StaticPerPodFollowsTheNewReplicaCountWhenScaling(t *testing.T) {
	h := newHarness(t)
	sc := internalScaling(1, 10, metric("queue_depth", "5"))
	sc.ConcurrencyControl = &function.ConcurrencyControlConfig{Mode: ptr(function.ConcurrencyStaticPerPod), TargetInFlightPerPod: ptr(2)}
	h.register(t, managed(deploymentSpec(t, "echo", 100, sc)))
	h.replicas.setReady("echo", 1)
	h.source.setDepth("echo", 15)

	h.tick() // 1 → 3 replicas: 3 × 2

	if got := h.source.takePushes(); !slices.Equal(got, []push{{"echo", 6, function.ConcurrencyStaticPerPod, 2}}) {
		t.Fatalf("pushes = %v", got)
	}
}

func TestTick_AdaptiveStateIsPerFunction(t *testing.T) {
	h := newHarness(t)
	adaptive := func(minR, maxR int) *function.ScalingConfig {
		sc := internalScaling(minR, maxR, metric("queue_depth", "5"))
		sc.ConcurrencyControl = &function.ConcurrencyControlConfig{Mode: ptr(function.ConcurrencyAdaptivePerPod), TargetInFlightPerPod: ptr(4)}
		return sc
	}
	h.register(t, managed(deploymentSpec(t, "hot", 100, adaptive(1, 2))))
	h.register(t, managed(deploymentSpec(t, "cold", 100, adaptive(2, 2)))) // min 2: no down signal
	h.replicas.setReady("hot", 2)
	h.replicas.setReady("cold", 2)
	h.source.setDepth("hot", 10) // ratio 1 at max: decrease, 60 s cooldown
	h.source.setDepth("cold", 1) // ratio 0.2: increase, 30 s cooldown

	targets := map[string][]int{}
	for range 3 {
		h.tick()
		for _, p := range h.source.takePushes() {
			targets[p.fn] = append(targets[p.fn], p.target)
		}
		h.clock.Advance(30 * time.Second)
	}

	wantSets(t, h.replicas)
	if !slices.Equal(targets["hot"], []int{3, 3, 2}) || !slices.Equal(targets["cold"], []int{5, 6, 7}) {
		t.Fatalf("targets = %v, want hot [3 3 2] and cold [5 6 7]", targets)
	}
}

func TestTick_RpsIsTheDispatchRateBetweenTicks(t *testing.T) {
	h := newHarness(t)
	h.register(t, managed(deploymentSpec(t, "echo", 4, internalScaling(1, 10, metric("rps", "10")))))
	h.replicas.setReady("echo", 1)
	h.disp.add("echo", 500) // history before the first read does not count

	h.tick() // first read: rate 0
	wantSets(t, h.replicas)

	h.disp.add("echo", 100)
	h.clock.Advance(5 * time.Second) // 20 rps, ratio 2
	h.tick()
	wantSets(t, h.replicas, setCall{"echo", 2})

	h.clock.Advance(60 * time.Second) // no dispatches: rate 0, down to min
	h.tick()
	wantSets(t, h.replicas, setCall{"echo", 1})
}

func TestReadMetric_MapsTypesToSources(t *testing.T) {
	h := newHarness(t)
	h.source.setDepth("echo", 7)
	h.source.setInFlight("echo", 3)
	h.disp.add("echo", 40)
	rows := []struct {
		name string
		m    *function.ScalingMetric
		want float64
	}{
		{"queue_depth is the async queue length", metric("queue_depth", "5"), 7},
		{"in_flight is the dispatch slots in use", metric("in_flight", "5"), 3},
		{"rps reads 0 the first time", metric("rps", "5"), 0},
		{"rps is then the rate since the last read", metric("rps", "5"), 20},
		{"an unknown type reads 0", metric("cpu", "5"), 0},
		{"a null type reads 0", &function.ScalingMetric{Target: ptr("5")}, 0},
		{"a null metric reads 0", nil, 0},
	}
	e := &entry{}
	for _, r := range rows {
		if got := h.s.readMetric("echo", r.m, e, h.clock.Now()); got != r.want {
			t.Errorf("%s: readMetric = %v, want %v", r.name, got, r.want)
		}
		h.disp.add("echo", 10)
		h.clock.Advance(500 * time.Millisecond)
	}
}

func TestOnRemove_ClearsCooldownsAdaptiveStateAndRpsSample(t *testing.T) {
	h := newHarness(t)
	spec := func() *function.Spec {
		sc := internalScaling(1, 10, metric("queue_depth", "5"), metric("rps", "1000"))
		sc.ConcurrencyControl = &function.ConcurrencyControlConfig{Mode: ptr(function.ConcurrencyAdaptivePerPod), TargetInFlightPerPod: ptr(4)}
		return deploymentSpec(t, "echo", 100, sc)
	}
	h.register(t, managed(spec()))
	h.replicas.setReady("echo", 1)
	h.source.setDepth("echo", 1) // ratio 0.2: adaptive target 4 → 5
	h.tick()
	h.source.setDepth("echo", 15)
	h.clock.Advance(time.Second)
	h.tick() // scale-up 1 → 3, cooldown starts
	wantSets(t, h.replicas, setCall{"echo", 3})
	h.disp.add("echo", 10)

	h.remove(t, "echo")
	h.register(t, managed(spec()))
	h.source.takePushes()
	h.replicas.setReady("echo", 1)
	h.clock.Advance(time.Second)
	h.tick()

	// The scale-up is not in cooldown and the adaptive target restarts from the spec's 4 (no
	// increase: the load is high). The rps sample is a fresh first read (checked directly: its
	// rate would be too small to change the decision).
	wantSets(t, h.replicas, setCall{"echo", 3})
	if got := h.source.takePushes(); !slices.Equal(got, []push{{"echo", 12, function.ConcurrencyAdaptivePerPod, 4}}) {
		t.Fatalf("pushes = %v", got)
	}
	h.s.mu.Lock()
	e := h.s.entries["echo"]
	h.s.mu.Unlock()
	if e.rps.count != 10 || !e.rps.ok {
		t.Fatalf("rps sample = %+v, want a fresh first read of 10", e.rps)
	}
}

func TestNew_RequiresItsCollaboratorsAndUniqueGauges(t *testing.T) {
	if _, err := New(Deps{Replicas: newReplicas(), Dispatches: &fakeDispatches{}}); err == nil {
		t.Error("New without Functions succeeded")
	}
	if _, err := New(Deps{Functions: &fakeLister{}, Dispatches: &fakeDispatches{}}); err == nil {
		t.Error("New without Replicas succeeded")
	}
	if _, err := New(Deps{Functions: &fakeLister{}, Replicas: newReplicas()}); err == nil {
		t.Error("New without Dispatches succeeded")
	}
	reg := prometheus.NewRegistry()
	d := Deps{Functions: &fakeLister{}, Replicas: newReplicas(), Dispatches: &fakeDispatches{}, Registerer: reg}
	if _, err := New(d); err != nil {
		t.Fatal(err)
	}
	if _, err := New(d); err == nil {
		t.Error("a second Scaler registered the same gauges")
	}
}

func TestNew_WithoutMetricsSourceReadsZeroAndStillScalesDown(t *testing.T) {
	replicas := newReplicas()
	fns := &fakeLister{}
	s, err := New(Deps{Functions: fns, Replicas: replicas, Dispatches: &fakeDispatches{}, Logger: quietLog, Now: newClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	reg := managed(deploymentSpec(t, "echo", 4, nil)) // defaults: queue_depth 5, 1..10
	must(t, s.OnRegister(context.Background(), reg.Spec))
	fns.regs = []*registry.Registered{reg}
	replicas.setReady("echo", 3)

	s.tick(context.Background())

	wantSets(t, replicas, setCall{"echo", 1})
}
