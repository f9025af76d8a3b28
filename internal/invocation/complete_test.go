package invocation

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/nanofaas/control-plane/internal/dispatch"
	"github.com/nanofaas/control-plane/internal/execution"
	"github.com/nanofaas/control-plane/internal/function"
)

// Completion handler behaviour (ExecutionCompletionHandlerTest, ...SlotReleaseTest): the test
// plays the dispatcher and the runtime callbacks by calling Complete / CompleteCallback on
// executions queued in a manual (non-dispatching) async queue.

func poolErr(msg string) execution.DispatchResult {
	return execution.Warm(execution.ErrorResult(dispatch.CodePoolError, msg))
}

func okResult(out string) execution.DispatchResult {
	return execution.Warm(execution.SuccessResult([]byte(out)))
}

// queuedHarness returns a harness with a manual async queue and a POOL function "fn" whose
// endpoint is never called, plus one execution of it created through InvokeAsync (key "k").
func queuedHarness(t *testing.T, maxRetries int) (*harness, *testEnqueuer, string) {
	t.Helper()
	enq := newTestEnqueuer(false)
	h := newHarness(t, harnessOpts{enqueuer: enq})
	h.register("fn", function.ModePool, "http://127.0.0.1:1/invoke", retries(maxRetries))
	id, err := h.svc.InvokeAsync(t.Context(), "fn", request(`{"n":1}`), Options{IdempotencyKey: "k"})
	if err != nil {
		t.Fatalf("InvokeAsync: %v", err)
	}
	return h, enq, id
}

func done(rec *execution.Record) bool {
	_, ok := rec.Outcome()
	return ok
}

func TestComplete_FailedAttemptIsRequeuedAsNextAttempt(t *testing.T) {
	h, enq, id := queuedHarness(t, 3)

	h.svc.Complete(id, poolErr("boom"), 1)

	rec := h.record(id)
	if got := rec.State(); got != execution.StateQueued {
		t.Fatalf("state = %v, want queued", got)
	}
	if done(rec) {
		t.Fatal("completion published on a retry; it must stay pending")
	}
	tasks := enq.Tasks()
	if len(tasks) != 2 {
		t.Fatalf("enqueues = %d, want 2 (admission + retry)", len(tasks))
	}
	retry := tasks[1]
	if retry.ExecutionID != id || retry.Attempt != 2 || retry.IdempotencyKey != "" {
		t.Errorf("retry task = {id %s, attempt %d, key %q}, want {%s, 2, \"\"}", retry.ExecutionID, retry.Attempt, retry.IdempotencyKey, id)
	}
	if tasks[0].IdempotencyKey != "k" {
		t.Errorf("first attempt key = %q, want k", tasks[0].IdempotencyKey)
	}
	if rec.Task().Attempt != 2 {
		t.Errorf("record attempt = %d, want 2", rec.Task().Attempt)
	}
	if got := enq.Releases("fn"); got != 1 {
		t.Errorf("releases = %d, want 1", got)
	}
	h.expectMetrics("fn", map[string]float64{
		"function_retry_total": 1, "function_enqueue_total": 2, "function_error_total": 0,
		"function_success_total": 0, "function_warm_start_total": 0,
	})
}

func TestComplete_MaxRetriesBoundsAttempts(t *testing.T) {
	h, enq, id := queuedHarness(t, 3)

	for attempt := 1; attempt <= 3; attempt++ {
		h.svc.Complete(id, poolErr("boom-"+strconv.Itoa(attempt)), attempt)
	}

	rec := h.record(id)
	if got := rec.State(); got != execution.StateError {
		t.Fatalf("state = %v, want error", got)
	}
	out, ok := rec.Outcome()
	if !ok || out.Success || out.Error == nil || out.Error.Code != dispatch.CodePoolError || out.Error.Message != "boom-3" {
		t.Fatalf("outcome = %+v (done %v), want POOL_ERROR boom-3", out, ok)
	}
	if got := len(enq.Tasks()); got != 3 {
		t.Errorf("enqueues = %d, want 3", got)
	}
	if got := enq.Releases("fn"); got != 3 {
		t.Errorf("releases = %d, want 3", got)
	}
	h.expectMetrics("fn", map[string]float64{"function_retry_total": 2, "function_error_total": 1, "function_warm_start_total": 1})
}

func TestComplete_SuccessCompletesImmediately(t *testing.T) {
	h, enq, id := queuedHarness(t, 3)

	h.svc.Complete(id, okResult(`{"ok":true}`), 1)

	rec := h.record(id)
	out, ok := rec.Outcome()
	if !ok || !out.Success || string(out.Output) != `{"ok":true}` {
		t.Fatalf("outcome = %+v (done %v)", out, ok)
	}
	if rec.State() != execution.StateSuccess {
		t.Errorf("state = %v, want success", rec.State())
	}
	if len(enq.Tasks()) != 1 || enq.Releases("fn") != 1 {
		t.Errorf("enqueues %d releases %d, want 1 and 1", len(enq.Tasks()), enq.Releases("fn"))
	}
	h.expectMetrics("fn", map[string]float64{"function_success_total": 1, "function_retry_total": 0, "function_warm_start_total": 1})
}

func TestComplete_LateSuccessAfterTimeoutChangesNothing(t *testing.T) {
	h, enq, id := queuedHarness(t, 3)
	rec := h.record(id)
	rec.MarkTimeout()

	h.svc.Complete(id, okResult(`"late"`), 1)

	if rec.State() != execution.StateTimeout {
		t.Errorf("state = %v, want timeout", rec.State())
	}
	if done(rec) {
		t.Error("a completion was published for a timed-out execution")
	}
	if got := enq.Releases("fn"); got != 1 {
		t.Errorf("releases = %d, want 1: the slot is released even when the result is ignored", got)
	}
	h.expectMetrics("fn", map[string]float64{"function_success_total": 0, "function_error_total": 0, "function_warm_start_total": 0})
}

func TestComplete_RetryRefusedByFullQueueFailsWithOriginalError(t *testing.T) {
	h, enq, id := queuedHarness(t, 3)
	enq.refuse = func(task *execution.Task) bool { return task.Attempt >= 2 }

	h.svc.Complete(id, execution.Warm(execution.ErrorResult("HANDLER_ERROR", "original")), 1)

	rec := h.record(id)
	out, ok := rec.Outcome()
	if !ok || out.Error == nil || out.Error.Code != "HANDLER_ERROR" || out.Error.Message != "original" {
		t.Fatalf("outcome = %+v (done %v), want the original HANDLER_ERROR", out, ok)
	}
	if rec.State() != execution.StateError {
		t.Errorf("state = %v, want error", rec.State())
	}
	if st, _ := h.svc.Execution(id); st.Error == nil || st.Error.Code != "HANDLER_ERROR" {
		t.Errorf("status error = %+v, want HANDLER_ERROR", st.Error)
	}
	// Retry-exhausted completions count the error but no start kind and no timers.
	h.expectMetrics("fn", map[string]float64{
		"function_retry_total": 1, "function_queue_rejected_total": 1, "function_error_total": 1,
		"function_warm_start_total": 0, "function_cold_start_total": 0, "function_latency_ms_seconds_count": 0,
		"function_e2e_latency_ms_seconds_count": 0,
	})
}

func TestComplete_FailureWithoutErrorDetailsGetsFunctionError(t *testing.T) {
	h, _, id := queuedHarness(t, 1)

	h.svc.CompleteCallback(id, execution.Result{Success: false}, 1)

	out, _ := h.record(id).Outcome()
	if out.Error == nil || out.Error.Code != "FUNCTION_ERROR" || out.Error.Message != "function reported failure without error details" {
		t.Fatalf("outcome error = %+v, want FUNCTION_ERROR (D21)", out.Error)
	}
	// A replay of the same key must report the error, not success.
	resp := h.mustInvoke("fn", `1`, Options{IdempotencyKey: "k"})
	if resp.ExecutionID != id || resp.Status != StatusError || resp.Error == nil || resp.Error.Code != "FUNCTION_ERROR" {
		t.Errorf("replay = %+v, want error FUNCTION_ERROR for %s", resp, id)
	}
}

func TestComplete_UnknownExecutionIsIgnored(t *testing.T) {
	h, enq, _ := queuedHarness(t, 3)
	h.svc.Complete("no-such-id", okResult(`1`), 1)
	h.svc.CompleteCallback("no-such-id", execution.Result{Success: true}, 0)
	if got := enq.Releases("fn"); got != 0 {
		t.Errorf("releases = %d, want 0", got)
	}
}

// ---- slot release (D12) ----

func TestSlotRelease_DuplicateCompletionsReleaseOnce(t *testing.T) {
	h, enq, id := queuedHarness(t, 3)

	h.svc.Complete(id, okResult(`1`), 1)
	h.svc.Complete(id, okResult(`2`), 1)
	h.svc.CompleteCallback(id, execution.Result{Success: true, Output: []byte(`3`)}, 1)
	h.svc.CompleteCallback(id, execution.Result{Success: true, Output: []byte(`4`)}, 0)

	if got := enq.Releases("fn"); got != 1 {
		t.Errorf("releases = %d, want 1", got)
	}
	if out, _ := h.record(id).Outcome(); string(out.Output) != "1" {
		t.Errorf("output = %s, want the first completion's 1", out.Output)
	}
	h.expectMetrics("fn", map[string]float64{"function_success_total": 1})
}

func TestSlotRelease_EachAttemptReleasesOnce(t *testing.T) {
	h, enq, id := queuedHarness(t, 3)

	h.svc.Complete(id, poolErr("a1"), 1)
	h.svc.CompleteCallback(id, execution.ErrorResult("X", "dup a1"), 1) // stale now: attempt 2 is current
	h.svc.Complete(id, okResult(`2`), 2)
	h.svc.Complete(id, okResult(`2`), 2)

	if got := enq.Releases("fn"); got != 2 {
		t.Errorf("releases = %d, want 2 (one per attempt)", got)
	}
	if h.state(id) != execution.StateSuccess {
		t.Errorf("state = %v, want success", h.state(id))
	}
}

func TestSlotRelease_StaleCompletionsAreIgnoredCompletely(t *testing.T) {
	tests := []struct {
		name     string
		complete func(h *harness, id string)
	}{
		{"dispatcher result of the previous attempt", func(h *harness, id string) { h.svc.Complete(id, okResult(`"stale"`), 1) }},
		{"callback with the previous attempt", func(h *harness, id string) {
			h.svc.CompleteCallback(id, execution.Result{Success: true, Output: []byte(`"stale"`)}, 1)
		}},
		{"callback with a future attempt", func(h *harness, id string) {
			h.svc.CompleteCallback(id, execution.ErrorResult("X", "future"), 3)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, enq, id := queuedHarness(t, 3)
			h.svc.Complete(id, poolErr("a1"), 1) // → attempt 2 queued

			tc.complete(h, id)

			rec := h.record(id)
			if rec.State() != execution.StateQueued || rec.Task().Attempt != 2 || done(rec) {
				t.Errorf("state %v attempt %d done %v, want queued attempt 2 pending", rec.State(), rec.Task().Attempt, done(rec))
			}
			if got := enq.Releases("fn"); got != 1 {
				t.Errorf("releases = %d, want 1 (stale completions release nothing)", got)
			}
			if got := len(enq.Tasks()); got != 2 {
				t.Errorf("enqueues = %d, want 2", got)
			}
		})
	}
}

func TestSlotRelease_LegacyCallbackAppliesToCurrentAttempt(t *testing.T) {
	h, enq, id := queuedHarness(t, 3)
	h.svc.Complete(id, poolErr("a1"), 1) // → attempt 2 queued

	h.svc.CompleteCallback(id, execution.Result{Success: true, Output: []byte(`"legacy"`)}, 0)
	h.svc.Complete(id, okResult(`"http"`), 2) // the attempt-2 dispatcher result arrives later

	if out, _ := h.record(id).Outcome(); string(out.Output) != `"legacy"` {
		t.Errorf("output = %s, want the legacy callback's", out.Output)
	}
	if got := enq.Releases("fn"); got != 2 {
		t.Errorf("releases = %d, want 2: the legacy callback released attempt 2's slot, the duplicate nothing", got)
	}
}

// ---- Dispatch ----

func TestDispatch_MissingRecordReleasesSlotAndCallsNothing(t *testing.T) {
	enq := newTestEnqueuer(false)
	h := newHarness(t, harnessOpts{enqueuer: enq})
	rt := h.newRuntime(echoJSON)
	spec := h.register("fn", function.ModePool, rt.URL())

	h.svc.Dispatch(&execution.Task{ExecutionID: "evicted", FunctionName: "fn", Spec: spec, Request: request(`1`), Attempt: 1})
	h.waitIdle()

	if got := enq.Releases("fn"); got != 1 {
		t.Errorf("releases = %d, want 1", got)
	}
	if rt.count() != 0 {
		t.Errorf("runtime called %d times, want 0", rt.count())
	}
	if got := h.metric("function_dispatch_total", "fn"); got != -1 {
		t.Errorf("function_dispatch_total = %v, want no series (no metrics for a missing record)", got)
	}
}

// failingLocal is a LOCAL dispatcher that fails unexpectedly (by error or panic).
type failingLocal struct{ panics bool }

func (f failingLocal) Dispatch(_ context.Context, _ *execution.Task) (execution.DispatchResult, error) {
	if f.panics {
		panic("router down")
	}
	return execution.DispatchResult{}, errors.New("router down")
}

func TestDispatch_DispatcherFailureCompletesWithModeError(t *testing.T) {
	for _, panics := range []bool{false, true} {
		t.Run(map[bool]string{false: "error", true: "panic"}[panics], func(t *testing.T) {
			enq := newTestEnqueuer(true)
			h := newHarness(t, harnessOpts{enqueuer: enq, local: failingLocal{panics: panics}})
			h.register("echo", function.ModeLocal, "", retries(1))

			resp := h.mustInvoke("echo", `1`, Options{})
			h.waitIdle()

			if resp.Status != StatusError || resp.Error == nil || resp.Error.Code != "LOCAL_ERROR" || !strings.Contains(resp.Error.Message, "router down") {
				t.Fatalf("response = %+v, want LOCAL_ERROR containing router down", resp)
			}
			if h.state(resp.ExecutionID) != execution.StateError {
				t.Errorf("state = %v, want error", h.state(resp.ExecutionID))
			}
			if got := enq.Releases("echo"); got != 1 {
				t.Errorf("releases = %d, want 1", got)
			}
		})
	}
}

func TestDispatch_OfTimedOutExecutionStillCallsFunction(t *testing.T) {
	enq := newTestEnqueuer(false)
	h := newHarness(t, harnessOpts{enqueuer: enq})
	rt := h.newRuntime(echoJSON)
	h.register("fn", function.ModePool, rt.URL())
	rec := h.newExecution("fn", "")
	rec.MarkTimeout()

	h.svc.Dispatch(rec.Task())
	h.waitIdle()

	if rt.count() != 1 {
		t.Errorf("runtime calls = %d, want 1 (queued work is not cancelled)", rt.count())
	}
	if rec.State() != execution.StateTimeout {
		t.Errorf("state = %v, want timeout", rec.State())
	}
	h.expectMetrics("fn", map[string]float64{"function_dispatch_total": 1, "function_success_total": 0})
	if enq.Releases("fn") != 1 {
		t.Errorf("releases = %d, want 1", enq.Releases("fn"))
	}
}

func TestDispatch_ReleasesSlotEvenIfRecordEvictedMidFlight(t *testing.T) {
	// D12: the dispatcher completes the record it dispatched, so the attempt's slot is released
	// even when the janitor evicted the record while the function was running.
	enq := newTestEnqueuer(false)
	h := newHarness(t, harnessOpts{enqueuer: enq})
	rt, release := h.newHeldRuntime()
	h.register("fn", function.ModePool, rt.URL())
	rec := h.newExecution("fn", "")

	h.svc.Dispatch(rec.Task())
	waitFor(t, "the runtime to be called", func() bool { return rt.active.Load() == 1 })
	h.store.Remove(rec.ID())
	close(release)
	h.waitIdle()

	if got := enq.Releases("fn"); got != 1 {
		t.Errorf("releases = %d, want 1", got)
	}
	h.svc.CompleteCallback(rec.ID(), execution.Result{Success: true}, 1) // unknown id now: no effect
	if got := enq.Releases("fn"); got != 1 {
		t.Errorf("releases after a callback for the evicted id = %d, want 1", got)
	}
}
