package invocation

import (
	"net/http"
	"strings"
	"testing"

	"github.com/nanofaas/control-plane/internal/function"
)

// Metric semantics as scraped from the registry served at /actuator/prometheus (MetricsTest,
// PrometheusEndpointTest, spec-core §9).

func TestMetrics_OneInvocationExposesAllMetersOfTheFunction(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.register("echo", function.ModeLocal, "")

	h.mustInvoke("echo", `1`, Options{})

	got := h.scrape()
	want := map[string]float64{
		"function_enqueue_total": 0, "function_dispatch_total": 1, "function_success_total": 1,
		"function_error_total": 0, "function_retry_total": 0, "function_timeout_total": 0,
		"function_queue_rejected_total": 0, "function_cold_start_total": 0, "function_warm_start_total": 1,
		"function_latency_ms_seconds_count": 1, "function_queue_wait_ms_seconds_count": 1,
		"function_e2e_latency_ms_seconds_count": 1, "function_init_duration_ms_seconds_count": 0,
	}
	for name, w := range want {
		if v, ok := got[name+`{function="echo"}`]; !ok || v != w {
			t.Errorf("%s = %v (present %v), want %v", name, v, ok, w)
		}
	}
	for _, timer := range []string{"function_latency_ms", "function_init_duration_ms", "function_queue_wait_ms", "function_e2e_latency_ms"} {
		for _, series := range []string{
			timer + `_seconds{function="echo",quantile="0.5"}`, timer + `_seconds{function="echo",quantile="0.95"}`,
			timer + `_seconds{function="echo",quantile="0.99"}`, timer + `_seconds_sum{function="echo"}`,
			timer + `_seconds_max{function="echo"}`,
		} {
			if _, ok := got[series]; !ok {
				t.Errorf("missing series %s", series)
			}
		}
	}
}

func TestMetrics_CountersAcrossOutcomes(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.register("echo", function.ModeLocal, "")
	fails := h.newRuntime(func(w http.ResponseWriter, _ *http.Request, _ call) { reply(w, 500, "", "") })
	h.register("bad", function.ModePool, fails.URL(), retries(2))
	slow := h.newRuntime(h.hang)
	h.register("slow", function.ModePool, slow.URL())

	for range 3 {
		h.mustInvoke("echo", `1`, Options{})
	}
	h.mustInvoke("bad", `1`, Options{})
	h.mustInvoke("slow", `1`, timeoutAfter(1))
	h.mustInvoke("slow", `1`, timeoutAfter(1))

	h.expectMetrics("echo", map[string]float64{"function_dispatch_total": 3, "function_success_total": 3, "function_warm_start_total": 3, "function_latency_ms_seconds_count": 3})
	h.expectMetrics("bad", map[string]float64{"function_dispatch_total": 2, "function_retry_total": 1, "function_error_total": 1, "function_success_total": 0})
	h.expectMetrics("slow", map[string]float64{"function_dispatch_total": 2, "function_timeout_total": 2, "function_success_total": 0, "function_error_total": 0, "function_latency_ms_seconds_count": 0})
}

func TestMetrics_RemovedFunctionRecordsNothingUntilRegisteredAgain(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.register("fn", function.ModePool, "http://127.0.0.1:1/invoke")
	h.mustInvoke("fn", `1`, Options{}) // creates the meters (connection refused → error)
	id := h.newExecution("fn", "").ID()

	h.functions.Remove("fn")
	h.metrics.RemoveFunction("fn")
	h.svc.Complete(id, okResult(`1`), 1) // an in-flight execution finishing after removal

	for series := range h.scrape() {
		if strings.Contains(series, `function="fn"`) {
			t.Fatalf("series %s survived the removal", series)
		}
	}
	h.register("fn", function.ModeLocal, "")
	h.mustInvoke("fn", `1`, Options{})
	h.expectMetrics("fn", map[string]float64{"function_enqueue_total": 0, "function_success_total": 1, "function_dispatch_total": 1})
}
