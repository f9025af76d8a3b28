package queue

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/nanofaas/control-plane/internal/execution"
	"github.com/nanofaas/control-plane/internal/function"
)

var gaugeNames = []string{
	"function_queue_depth", "function_inFlight", "function_effective_concurrency",
	"function_target_inflight_per_pod", "function_concurrency_controller_mode",
}

const gaugeHelp = `# HELP function_concurrency_controller_mode Concurrency controller mode of the function: 1 for the active mode, 0 otherwise.
# TYPE function_concurrency_controller_mode gauge
# HELP function_effective_concurrency Current effective concurrency limit of the function.
# TYPE function_effective_concurrency gauge
# HELP function_inFlight Dispatch slots of the function in use.
# TYPE function_inFlight gauge
# HELP function_queue_depth Invocations waiting in the function's async queue.
# TYPE function_queue_depth gauge
# HELP function_target_inflight_per_pod Concurrency controller target in-flight per pod (0 for FIXED).
# TYPE function_target_inflight_per_pod gauge
`

func newGaugedManager(t *testing.T) (*Manager, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := NewManager(Deps{
		Store:      execution.NewStore(execution.StoreConfig{}, nil),
		Dispatch:   func(*execution.Task) {},
		Registerer: reg,
		Logger:     quietLog,
	})
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

func TestGauges_SevenSeriesPerFunctionWithSpecDefaults(t *testing.T) {
	m, reg := newGaugedManager(t)
	adaptive := function.ConcurrencyAdaptivePerPod
	managed := spec("managed", 4, 10)
	managed.ScalingConfig = &function.ScalingConfig{ConcurrencyControl: &function.ConcurrencyControlConfig{
		Mode: &adaptive, TargetInFlightPerPod: ptr(2),
	}}
	register(t, m, spec("plain", 3, 10), managed)
	m.Enqueue(task("plain", 1))
	m.Enqueue(task("plain", 2))
	m.TryAcquireSlot("plain")

	want := gaugeHelp + `function_concurrency_controller_mode{function="managed",mode="ADAPTIVE_PER_POD"} 1
function_concurrency_controller_mode{function="managed",mode="FIXED"} 0
function_concurrency_controller_mode{function="managed",mode="STATIC_PER_POD"} 0
function_concurrency_controller_mode{function="plain",mode="ADAPTIVE_PER_POD"} 0
function_concurrency_controller_mode{function="plain",mode="FIXED"} 1
function_concurrency_controller_mode{function="plain",mode="STATIC_PER_POD"} 0
function_effective_concurrency{function="managed"} 4
function_effective_concurrency{function="plain"} 3
function_inFlight{function="managed"} 0
function_inFlight{function="plain"} 1
function_queue_depth{function="managed"} 0
function_queue_depth{function="plain"} 2
function_target_inflight_per_pod{function="managed"} 2
function_target_inflight_per_pod{function="plain"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), gaugeNames...); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(newCollector(m)); n != 14 {
		t.Fatalf("collected %d series for 2 functions, want 14", n)
	}
}

func TestGauges_FollowAutoscalerUpdates(t *testing.T) {
	m, reg := newGaugedManager(t)
	register(t, m, spec("f", 8, 10))
	m.SetEffectiveConcurrency("f", 3)
	m.UpdateConcurrencyController("f", function.ConcurrencyStaticPerPod, 5)
	m.UpdateConcurrencyController("ghost", function.ConcurrencyStaticPerPod, 5) // ignored

	want := gaugeHelp + `function_concurrency_controller_mode{function="f",mode="ADAPTIVE_PER_POD"} 0
function_concurrency_controller_mode{function="f",mode="FIXED"} 0
function_concurrency_controller_mode{function="f",mode="STATIC_PER_POD"} 1
function_effective_concurrency{function="f"} 3
function_inFlight{function="f"} 0
function_queue_depth{function="f"} 0
function_target_inflight_per_pod{function="f"} 5
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), gaugeNames...); err != nil {
		t.Fatal(err)
	}
}

func TestGauges_RemovalDeletesOnlyThatFunctionsSeries(t *testing.T) {
	m, reg := newGaugedManager(t)
	register(t, m, spec("a", 1, 10), spec("b", 1, 10))
	if err := m.OnRemove(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	want := gaugeHelp + `function_concurrency_controller_mode{function="b",mode="ADAPTIVE_PER_POD"} 0
function_concurrency_controller_mode{function="b",mode="FIXED"} 1
function_concurrency_controller_mode{function="b",mode="STATIC_PER_POD"} 0
function_effective_concurrency{function="b"} 1
function_inFlight{function="b"} 0
function_queue_depth{function="b"} 0
function_target_inflight_per_pod{function="b"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), gaugeNames...); err != nil {
		t.Fatal(err)
	}
	// A late autoscaler update must not bring the removed function's series back.
	m.UpdateConcurrencyController("a", function.ConcurrencyAdaptivePerPod, 3)
	if n := testutil.CollectAndCount(newCollector(m)); n != 7 {
		t.Fatalf("collected %d series after removing one of two functions, want 7", n)
	}
}
