package autoscaler

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/nanofaas/control-plane/internal/execution"
	"github.com/nanofaas/control-plane/internal/function"
	"github.com/nanofaas/control-plane/internal/metrics"
	"github.com/nanofaas/control-plane/internal/queue"
	"github.com/nanofaas/control-plane/internal/registry"
)

// gatheredDispatches reads function_dispatch_total from a registry's exposition: a test-only
// stand-in for the accessor the lead adapts from internal/metrics.
type gatheredDispatches struct{ reg prometheus.Gatherer }

func (g gatheredDispatches) DispatchCount(fn string) float64 {
	mfs, err := g.reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "function_dispatch_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "function" && l.GetValue() == fn {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestEndToEnd_RealQueueManagerDrivesScalingAndReceivesConcurrency wires the Scaler to the
// async-queue module's real Manager (as metrics source and listener peer), the real core
// metrics (rps) and one shared Prometheus registry; only the replicas backend is a fake.
func TestEndToEnd_RealQueueManagerDrivesScalingAndReceivesConcurrency(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	fm, err := metrics.NewFunctionMetrics(reg, nil)
	must(t, err)
	store := execution.NewStore(execution.StoreConfig{}, nil)
	mgr, err := queue.NewManager(queue.Deps{Store: store, Dispatch: func(*execution.Task) {}, Registerer: reg, Logger: quietLog})
	must(t, err)
	fns := registry.New()
	replicas := newReplicas()
	clock := newClock()
	s, err := New(Deps{
		Functions: fns, Replicas: replicas, Dispatches: gatheredDispatches{reg}, Metrics: mgr,
		Registerer: reg, Logger: quietLog, Now: clock.Now,
	})
	must(t, err)

	// A STATIC_PER_POD function (2 per pod, concurrency 8) scaled on queue depth, and an
	// rps-scaled one, registered the way the registry service does it: listeners, then store.
	qsc := internalScaling(1, 10, metric("queue_depth", "5"))
	qsc.ConcurrencyControl = &function.ConcurrencyControlConfig{Mode: ptr(function.ConcurrencyStaticPerPod), TargetInFlightPerPod: ptr(2)}
	regs := []*registry.Registered{
		managed(deploymentSpec(t, "queued", 8, qsc)),
		managed(deploymentSpec(t, "busy", 4, internalScaling(1, 10, metric("rps", "10")))),
	}
	for _, r := range regs {
		must(t, mgr.OnRegister(ctx, r.Spec))
		must(t, s.OnRegister(ctx, r.Spec))
		fns.Put(r)
		replicas.setReady(r.Spec.Name, 1)
	}

	// 15 invocations wait in the async queue (its scheduler is not running).
	for i := range 15 {
		if !mgr.Enqueue(&execution.Task{ExecutionID: fmt.Sprintf("e%d", i), FunctionName: "queued", Attempt: 1}) {
			t.Fatalf("enqueue %d refused", i)
		}
	}
	s.tick(ctx) // queued: 15/5 → 3 replicas; busy: first rps read

	for range 100 {
		fm.For("busy").Dispatch()
	}
	clock.Advance(5 * time.Second)
	s.tick(ctx) // busy: 20 rps / 10 → 2 replicas; queued: in up cooldown

	wantSets(t, replicas, setCall{"queued", 3}, setCall{"busy", 2})
	want := `
# HELP function_effective_concurrency Current effective concurrency limit of the function.
# TYPE function_effective_concurrency gauge
function_effective_concurrency{function="busy"} 4
function_effective_concurrency{function="queued"} 6
# HELP function_target_inflight_per_pod Concurrency controller target in-flight per pod (0 for FIXED).
# TYPE function_target_inflight_per_pod gauge
function_target_inflight_per_pod{function="busy"} 0
function_target_inflight_per_pod{function="queued"} 2
# HELP gateway_service_target_load Scaling target of the function per scaling type (OpenFaaS-compatible).
# TYPE gateway_service_target_load gauge
gateway_service_target_load{function="busy",scaling_type="rps"} 10
gateway_service_target_load{function="queued",scaling_type="queue"} 5
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"function_effective_concurrency", "function_target_inflight_per_pod", "gateway_service_target_load"); err != nil {
		t.Fatal(err)
	}
	if got := gaugeValue(t, reg, "function_concurrency_controller_mode", map[string]string{"function": "queued", "mode": "STATIC_PER_POD"}); got != 1 {
		t.Fatalf("controller mode STATIC_PER_POD gauge = %v, want 1", got)
	}
	// The pushed limit is live: exactly 6 dispatch slots of "queued" can be taken.
	for i := range 6 {
		if !mgr.TryAcquireSlot("queued") {
			t.Fatalf("slot %d refused under effective concurrency 6", i+1)
		}
	}
	if mgr.TryAcquireSlot("queued") {
		t.Fatal("a 7th slot was granted under effective concurrency 6")
	}

	// Removal through both listeners: queue and target-load series disappear, and a late
	// tick over a stale list neither scales nor resurrects anything.
	stale := fns.List()
	for _, r := range regs {
		fns.Remove(r.Spec.Name)
		must(t, mgr.OnRemove(ctx, r.Spec.Name))
		must(t, s.OnRemove(ctx, r.Spec.Name))
	}
	s.fns = &fakeLister{regs: stale}
	clock.Advance(time.Minute)
	s.tick(ctx)
	wantSets(t, replicas)
	if n, err := testutil.GatherAndCount(reg, "function_effective_concurrency", "gateway_service_target_load"); err != nil || n != 0 {
		t.Fatalf("%d series left after removal (err %v)", n, err)
	}
}

// gaugeValue returns the value of the gauge series name{labels...}; it fails the test when
// no series has all the labels.
func gaugeValue(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	must(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			matched := 0
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; ok {
					if v != l.GetValue() {
						continue series
					}
					matched++
				}
			}
			if matched == len(labels) {
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}
