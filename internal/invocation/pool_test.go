package invocation

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nanofaas/control-plane/internal/dispatch"
	"github.com/nanofaas/control-plane/internal/execution"
	"github.com/nanofaas/control-plane/internal/function"
)

// POOL invocations end to end against httptest runtimes (runtime-contract §1.2–§1.3, D3).

func TestInvokeSync_PoolSendsInvocationContract(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	rt := h.newRuntime(echoJSON)
	h.register("fn", function.ModePool, rt.URL())
	trace := "trace-1"
	req := &execution.Request{Input: json.RawMessage(`{"a":[1,2]}`), Metadata: map[string]string{"m": "v"}}

	resp, err := h.svc.InvokeSync(t.Context(), "fn", req, Options{IdempotencyKey: "key-1", TraceID: &trace})
	if err != nil {
		t.Fatal(err)
	}

	if resp.Status != StatusSuccess || string(resp.Output) != `{"a":[1,2]}` {
		t.Fatalf("response = %+v", resp)
	}
	calls := rt.Calls()
	if len(calls) != 1 {
		t.Fatalf("calls = %d, want 1", len(calls))
	}
	c := calls[0]
	if c.ExecutionID != resp.ExecutionID || c.Attempt != "1" || c.ContentType != "application/json" {
		t.Errorf("headers: id %q attempt %q content-type %q", c.ExecutionID, c.Attempt, c.ContentType)
	}
	if c.TraceID == nil || *c.TraceID != "trace-1" || c.IdempotencyKey == nil || *c.IdempotencyKey != "key-1" {
		t.Errorf("trace %v key %v, want trace-1 and key-1", c.TraceID, c.IdempotencyKey)
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal([]byte(c.Body), &body); err != nil || string(body["input"]) != `{"a":[1,2]}` || string(body["metadata"]) != `{"m":"v"}` {
		t.Errorf("body = %s (%v)", c.Body, err)
	}
}

func TestInvokeSync_PoolOmitsAbsentTraceAndKeyButSendsEmptyTrace(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	rt := h.newRuntime(echoJSON)
	h.register("fn", function.ModePool, rt.URL())
	empty := ""

	h.mustInvoke("fn", `1`, Options{})
	h.mustInvoke("fn", `1`, Options{TraceID: &empty})

	calls := rt.Calls()
	if calls[0].TraceID != nil || calls[0].IdempotencyKey != nil {
		t.Errorf("absent headers were sent: trace %v key %v", calls[0].TraceID, calls[0].IdempotencyKey)
	}
	if calls[1].TraceID == nil || *calls[1].TraceID != "" {
		t.Errorf("an empty X-Trace-Id must be forwarded, got %v", calls[1].TraceID)
	}
	if !strings.Contains(calls[0].Body, `"metadata":null`) {
		t.Errorf("body = %s, want metadata null", calls[0].Body)
	}
}

func TestInvokeSync_PoolResponseMapping(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		wantStatus  string
		wantOutput  string // JSON; "" = null
		wantCode    string
		wantMessage string // substring
	}{
		{"json object", 200, "application/json", `{"message":"hi"}`, StatusSuccess, `{"message":"hi"}`, "", ""},
		{"json with charset", 200, "application/json; charset=utf-8", `[1,2]`, StatusSuccess, `[1,2]`, "", ""},
		{"vendor json", 200, "application/vnd.x+json", `true`, StatusSuccess, `true`, "", ""},
		{"text plain", 200, "text/plain;charset=UTF-8", `hello "you"`, StatusSuccess, `"hello \"you\""`, "", ""},
		{"empty json body", 200, "application/json", ``, StatusSuccess, ``, "", ""},
		{"empty text body", 200, "text/plain", ``, StatusSuccess, ``, "", ""},
		{"204 no content", 204, "", ``, StatusSuccess, ``, "", ""},
		{"missing content type, json body", 200, "", `{"n":1}`, StatusSuccess, `{"n":1}`, "", ""},
		{"missing content type, text body", 200, "", `plain words`, StatusSuccess, `"plain words"`, "", ""},
		{"unsupported content type", 200, "text/html", `<p>`, StatusError, ``, dispatch.CodePoolError, "Content type 'text/html' not supported"},
		{"invalid json", 200, "application/json", `{nope`, StatusError, ``, dispatch.CodePoolError, "JSON decoding error"},
		{"500 with body", 500, "application/json", `{"error":"boom"}`, StatusError, ``, dispatch.CodePoolError, `{"error":"boom"}`},
		{"500 empty", 500, "", ``, StatusError, ``, dispatch.CodePoolError, "500 INTERNAL_SERVER_ERROR"},
		{"504 handler timeout", 504, "application/json", `{"error":"Handler timed out"}`, StatusError, ``, dispatch.CodePoolError, "Handler timed out"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			rt := h.newRuntime(func(w http.ResponseWriter, _ *http.Request, _ call) {
				reply(w, tc.status, tc.contentType, tc.body)
			})
			h.register("fn", function.ModePool, rt.URL(), retries(1))

			resp := h.mustInvoke("fn", `1`, Options{})

			if resp.Status != tc.wantStatus || string(resp.Output) != tc.wantOutput {
				t.Fatalf("response = {%s %s %+v}, want {%s %s}", resp.Status, resp.Output, resp.Error, tc.wantStatus, tc.wantOutput)
			}
			if tc.wantCode == "" {
				if resp.Error != nil {
					t.Errorf("error = %+v, want none", resp.Error)
				}
			} else if resp.Error == nil || resp.Error.Code != tc.wantCode || !strings.Contains(resp.Error.Message, tc.wantMessage) {
				t.Errorf("error = %+v, want %s containing %q", resp.Error, tc.wantCode, tc.wantMessage)
			}
			st, _ := h.svc.Execution(resp.ExecutionID)
			if st.Status != tc.wantStatus {
				t.Errorf("execution status = %s, want %s", st.Status, tc.wantStatus)
			}
		})
	}
}

func TestInvokeSync_PoolEndpointMissing(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.register("fn", function.ModePool, "", retries(1))
	resp := h.mustInvoke("fn", `1`, Options{})
	if resp.Error == nil || resp.Error.Code != dispatch.CodeEndpointMissing || resp.Error.Message != "endpointUrl is required for POOL mode" {
		t.Errorf("response = %+v, want POOL_ENDPOINT_MISSING", resp)
	}
}

func TestInvokeSync_ColdStartReporting(t *testing.T) {
	tests := []struct {
		name     string
		headers  []string
		wantCold bool
		wantInit *int64
		initObs  float64 // function_init_duration_ms_seconds_count
	}{
		{"cold with duration", []string{"X-Cold-Start", "true", "X-Init-Duration-Ms", "250"}, true, ptrTo[int64](250), 1},
		{"cold case-insensitive, no duration", []string{"X-Cold-Start", "TRUE"}, true, ptrTo[int64](0), 0},
		{"cold with invalid duration", []string{"X-Cold-Start", "true", "X-Init-Duration-Ms", "soon"}, true, ptrTo[int64](0), 0},
		{"warm", nil, false, nil, 0},
		{"not cold", []string{"X-Cold-Start", "false", "X-Init-Duration-Ms", "9"}, false, nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			rt := h.newRuntime(func(w http.ResponseWriter, _ *http.Request, _ call) {
				reply(w, 200, "application/json", `{}`, tc.headers...)
			})
			h.register("fn", function.ModePool, rt.URL())

			resp := h.mustInvoke("fn", `1`, Options{})

			st, _ := h.svc.Execution(resp.ExecutionID)
			if st.ColdStart != tc.wantCold || !equalPtr(st.InitDurationMs, tc.wantInit) {
				t.Errorf("coldStart %v initDurationMs %v, want %v %v", st.ColdStart, deref(st.InitDurationMs), tc.wantCold, deref(tc.wantInit))
			}
			cold, warm := 0.0, 1.0
			if tc.wantCold {
				cold, warm = 1, 0
			}
			h.expectMetrics("fn", map[string]float64{
				"function_cold_start_total": cold, "function_warm_start_total": warm,
				"function_init_duration_ms_seconds_count": tc.initObs,
			})
			if tc.initObs == 1 {
				if got := h.metric("function_init_duration_ms_seconds_sum", "fn"); got != 0.25 {
					t.Errorf("init duration sum = %v s, want 0.25", got)
				}
			}
		})
	}
}

func equalPtr(a, b *int64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func deref(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestInvokeSync_SlowRuntimeTimesOutThenRetries(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	rt := h.newRuntime(h.hang)
	h.register("fn", function.ModePool, rt.URL(), timeoutMs(40), retries(2))

	resp := h.mustInvoke("fn", `1`, timeoutAfter(5000)) // outlast both pool timeouts

	if resp.Status != StatusError || resp.Error == nil || resp.Error.Code != dispatch.CodePoolTimeout ||
		resp.Error.Message != "Pool request timed out after 40ms" {
		t.Fatalf("response = %+v, want POOL_TIMEOUT after 40ms", resp)
	}
	if got := attempts(rt); !slices.Equal(got, []string{"1", "2"}) {
		t.Errorf("attempts = %v, want [1 2]", got)
	}
	h.expectMetrics("fn", map[string]float64{"function_retry_total": 1, "function_error_total": 1, "function_timeout_total": 0})
}

func attempts(rt *runtime) []string {
	var out []string
	for _, c := range rt.Calls() {
		out = append(out, c.Attempt)
	}
	return out
}

func TestInvokeSync_DefaultWaitEqualsPoolTimeoutSoPoolTimeoutOrWaitTimeoutWins(t *testing.T) {
	// With no X-Timeout-Ms the sync wait uses spec.timeoutMs, as does the pool call: with one
	// attempt the caller sees either the POOL_TIMEOUT error or its own timeout, never success.
	h := newHarness(t, harnessOpts{})
	rt := h.newRuntime(h.hang)
	h.register("fn", function.ModePool, rt.URL(), timeoutMs(30), retries(1))
	resp := h.mustInvoke("fn", `1`, Options{})
	if resp.Status == StatusSuccess || (resp.Status == StatusError && resp.Error.Code != dispatch.CodePoolTimeout) {
		t.Errorf("response = %+v", resp)
	}
}

func TestInvokeSync_CallbackRacesHTTPResponse(t *testing.T) {
	t.Run("callback before the response wins", func(t *testing.T) {
		enq := newTestEnqueuer(true)
		h := newHarness(t, harnessOpts{enqueuer: enq})
		rt := h.newRuntime(func(w http.ResponseWriter, _ *http.Request, c call) {
			attempt := 0
			if c.Attempt == "1" {
				attempt = 1
			}
			h.svc.CompleteCallback(c.ExecutionID, execution.Result{Success: true, Output: json.RawMessage(`{"via":"callback"}`)}, attempt)
			reply(w, 200, "application/json", `{"via":"http"}`, "X-Cold-Start", "true", "X-Init-Duration-Ms", "10")
		})
		h.register("fn", function.ModePool, rt.URL())

		resp := h.mustInvoke("fn", `1`, Options{})
		h.waitIdle()

		if string(resp.Output) != `{"via":"callback"}` {
			t.Errorf("output = %s, want the callback's", resp.Output)
		}
		if got := enq.Releases("fn"); got != 1 {
			t.Errorf("releases = %d, want 1", got)
		}
		st, _ := h.svc.Execution(resp.ExecutionID)
		if st.ColdStart {
			t.Error("a callback result carries no cold-start info")
		}
		h.expectMetrics("fn", map[string]float64{"function_success_total": 1, "function_warm_start_total": 1, "function_cold_start_total": 0})
	})
	t.Run("callback after the response is ignored", func(t *testing.T) {
		enq := newTestEnqueuer(true)
		h := newHarness(t, harnessOpts{enqueuer: enq})
		rt := h.newRuntime(echoJSON)
		h.register("fn", function.ModePool, rt.URL())

		resp := h.mustInvoke("fn", `"http"`, Options{})
		h.waitIdle()
		h.svc.CompleteCallback(resp.ExecutionID, execution.ErrorResult("HANDLER_ERROR", "late"), 1)
		h.svc.CompleteCallback(resp.ExecutionID, execution.ErrorResult("HANDLER_ERROR", "late legacy"), 0)

		st, _ := h.svc.Execution(resp.ExecutionID)
		if st.Status != "success" || string(st.Output) != `"http"` || st.Error != nil {
			t.Errorf("status = %+v, want the HTTP success", st)
		}
		if got := enq.Releases("fn"); got != 1 {
			t.Errorf("releases = %d, want 1", got)
		}
		h.expectMetrics("fn", map[string]float64{"function_success_total": 1, "function_error_total": 0})
	})
	t.Run("callback of a stale attempt is ignored", func(t *testing.T) {
		h := newHarness(t, harnessOpts{})
		rt := h.newRuntime(func(w http.ResponseWriter, _ *http.Request, c call) {
			if c.Attempt == "1" {
				reply(w, 500, "", "")
				return
			}
			h.svc.CompleteCallback(c.ExecutionID, execution.Result{Success: true, Output: json.RawMessage(`"stale"`)}, 1)
			reply(w, 200, "application/json", `"attempt 2"`)
		})
		h.register("fn", function.ModePool, rt.URL(), retries(2))

		resp := h.mustInvoke("fn", `1`, Options{})

		if resp.Status != StatusSuccess || string(resp.Output) != `"attempt 2"` {
			t.Errorf("response = %+v, want attempt 2's output", resp)
		}
	})
}

func TestInvokeSync_RetriesWithoutAsyncQueueRedispatchDirectly(t *testing.T) {
	// D2: core-only retries are dispatched again, with attempt numbers and retry accounting.
	tests := []struct {
		maxRetries   int
		wantAttempts []string
	}{
		{3, []string{"1", "2", "3"}},
		{2, []string{"1", "2"}},
		{1, []string{"1"}},
		{0, []string{"1"}},
	}
	for _, tc := range tests {
		t.Run("maxRetries "+strconv.Itoa(tc.maxRetries), func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			var n atomic.Int32
			rt := h.newRuntime(func(w http.ResponseWriter, _ *http.Request, _ call) {
				reply(w, 500, "text/plain", "boom-"+strconv.Itoa(int(n.Add(1))))
			})
			h.register("fn", function.ModePool, rt.URL(), retries(tc.maxRetries))
			trace := "t"

			resp, err := h.svc.InvokeSync(t.Context(), "fn", request(`1`), Options{IdempotencyKey: "k", TraceID: &trace})
			if err != nil {
				t.Fatal(err)
			}

			last := "boom-" + tc.wantAttempts[len(tc.wantAttempts)-1]
			if resp.Status != StatusError || resp.Error.Code != dispatch.CodePoolError || resp.Error.Message != last {
				t.Fatalf("response = %+v, want POOL_ERROR %s", resp, last)
			}
			calls := rt.Calls()
			if got := attempts(rt); !slices.Equal(got, tc.wantAttempts) {
				t.Fatalf("attempts = %v, want %v", got, tc.wantAttempts)
			}
			for i, c := range calls {
				if c.ExecutionID != resp.ExecutionID || c.TraceID == nil || *c.TraceID != "t" {
					t.Errorf("call %d: id %s trace %v", i, c.ExecutionID, c.TraceID)
				}
				if hasKey := c.IdempotencyKey != nil; hasKey != (i == 0) {
					t.Errorf("call %d: Idempotency-Key sent = %v, want only on the first attempt", i, hasKey)
				}
			}
			k := float64(len(tc.wantAttempts))
			h.expectMetrics("fn", map[string]float64{
				"function_retry_total": k - 1, "function_dispatch_total": k, "function_error_total": 1,
				"function_enqueue_total": 0, "function_warm_start_total": 1,
			})
		})
	}
}

func TestInvokeSync_RetriesThroughAsyncQueue(t *testing.T) {
	enq := newTestEnqueuer(true)
	h := newHarness(t, harnessOpts{enqueuer: enq})
	var n atomic.Int32
	rt := h.newRuntime(func(w http.ResponseWriter, r *http.Request, c call) {
		if n.Add(1) < 3 {
			reply(w, 500, "", "")
			return
		}
		echoJSON(w, r, c)
	})
	h.register("fn", function.ModePool, rt.URL(), retries(3))

	resp := h.mustInvoke("fn", `"third time"`, Options{IdempotencyKey: "k"})
	h.waitIdle()

	if resp.Status != StatusSuccess || string(resp.Output) != `"third time"` {
		t.Fatalf("response = %+v", resp)
	}
	tasks := enq.Tasks()
	if len(tasks) != 3 {
		t.Fatalf("enqueues = %d, want 3", len(tasks))
	}
	for i, task := range tasks {
		if task.Attempt != i+1 || task.ExecutionID != resp.ExecutionID || (task.IdempotencyKey != "") != (i == 0) {
			t.Errorf("enqueue %d = {attempt %d id %s key %q}", i, task.Attempt, task.ExecutionID, task.IdempotencyKey)
		}
	}
	if got := enq.Releases("fn"); got != 3 {
		t.Errorf("releases = %d, want 3", got)
	}
	if got := attempts(rt); !slices.Equal(got, []string{"1", "2", "3"}) {
		t.Errorf("attempts = %v", got)
	}
	h.expectMetrics("fn", map[string]float64{
		"function_enqueue_total": 3, "function_retry_total": 2, "function_dispatch_total": 3,
		"function_success_total": 1, "function_error_total": 0,
	})
}

func TestInvokeSync_RetryQueueFullEndsWithOriginalError(t *testing.T) {
	enq := newTestEnqueuer(true)
	enq.refuse = func(task *execution.Task) bool { return task.Attempt >= 3 }
	h := newHarness(t, harnessOpts{enqueuer: enq})
	var n atomic.Int32
	rt := h.newRuntime(func(w http.ResponseWriter, _ *http.Request, _ call) {
		reply(w, 502, "text/plain", "boom-"+strconv.Itoa(int(n.Add(1))))
	})
	h.register("fn", function.ModePool, rt.URL(), retries(3))

	resp := h.mustInvoke("fn", `1`, Options{})
	h.waitIdle()

	if resp.Status != StatusError || resp.Error.Code != dispatch.CodePoolError || resp.Error.Message != "boom-2" {
		t.Fatalf("response = %+v, want attempt 2's POOL_ERROR", resp)
	}
	if rt.count() != 2 {
		t.Errorf("runtime calls = %d, want 2", rt.count())
	}
	if got := enq.Releases("fn"); got != 2 {
		t.Errorf("releases = %d, want 2", got)
	}
	h.expectMetrics("fn", map[string]float64{
		"function_enqueue_total": 2, "function_queue_rejected_total": 1, "function_retry_total": 2,
		"function_error_total": 1, "function_warm_start_total": 0, "function_latency_ms_seconds_count": 0,
	})
}

func TestInvokeAsync_RetriesUntilSuccess(t *testing.T) {
	enq := newTestEnqueuer(true)
	h := newHarness(t, harnessOpts{enqueuer: enq})
	var n atomic.Int32
	rt := h.newRuntime(func(w http.ResponseWriter, r *http.Request, c call) {
		if n.Add(1) == 1 {
			reply(w, 500, "", "")
			return
		}
		echoJSON(w, r, c)
	})
	h.register("fn", function.ModePool, rt.URL(), retries(3))

	id, err := h.svc.InvokeAsync(t.Context(), "fn", request(`{"x":1}`), Options{IdempotencyKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the execution to finish", func() bool { return done(h.record(id)) })
	h.waitIdle()

	st, _ := h.svc.Execution(id)
	if st.Status != "success" || string(st.Output) != `{"x":1}` {
		t.Errorf("status = %+v", st)
	}
	if len(enq.Tasks()) != 2 || enq.Releases("fn") != 2 {
		t.Errorf("enqueues %d releases %d, want 2 and 2", len(enq.Tasks()), enq.Releases("fn"))
	}
	if calls := rt.Calls(); len(calls) != 2 || calls[0].ExecutionID != id || calls[1].ExecutionID != id {
		t.Errorf("calls = %+v, want two attempts of %s", calls, id)
	}
	h.expectMetrics("fn", map[string]float64{"function_enqueue_total": 2, "function_retry_total": 1, "function_success_total": 1})
}

func TestInvokeSync_PoolLatencyMetricsCoverFinalAttempt(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	rt := h.newRuntime(func(w http.ResponseWriter, r *http.Request, c call) {
		time.Sleep(20 * time.Millisecond)
		echoJSON(w, r, c)
	})
	h.register("fn", function.ModePool, rt.URL())

	h.mustInvoke("fn", `1`, Options{})

	h.expectMetrics("fn", map[string]float64{
		"function_latency_ms_seconds_count": 1, "function_e2e_latency_ms_seconds_count": 1,
		"function_queue_wait_ms_seconds_count": 1, "function_init_duration_ms_seconds_count": 0,
	})
	if got := h.metric("function_latency_ms_seconds_sum", "fn"); got < 0.02 || got > 5 {
		t.Errorf("latency sum = %v s, want about the runtime's 20 ms", got)
	}
	if got := h.metric("function_latency_ms_seconds_max", "fn"); got < 0.02 {
		t.Errorf("latency max = %v s, want >= 0.02", got)
	}
}
