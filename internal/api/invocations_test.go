package api_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nanofaas/control-plane/internal/execution"
	"github.com/nanofaas/control-plane/internal/invocation"
)

func TestInvoke_LocalEchoesInputWithExecutionIdHeader(t *testing.T) {
	for _, input := range []string{`{"a":[1,2]}`, `"text"`, `0`, `false`, `[]`, `{}`, `1.50`} {
		t.Run(input, func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			h.registerLocal("echo")
			rec := h.do(http.MethodPost, "/v1/functions/echo:invoke", `{"input":`+input+`,"metadata":{"k":"v"}}`)
			assertStatus(t, rec, http.StatusOK)
			id := rec.Header().Get("X-Execution-Id")
			if id == "" {
				t.Fatal("no X-Execution-Id header")
			}
			want := `{"executionId":"` + id + `","status":"success","output":` + input + `,"error":null}`
			assertJSON(t, rec, http.StatusOK, want)
		})
	}
}

func TestInvoke_MissingOrNullInputIsValidationError(t *testing.T) {
	for _, body := range []string{`{}`, `{"input":null}`, `{"metadata":{"k":"v"}}`} {
		for _, verb := range []string{"invoke", "enqueue"} {
			t.Run(verb+" "+body, func(t *testing.T) {
				h := newHarness(t, harnessOpts{})
				h.registerLocal("echo")
				assertError(t, h.do(http.MethodPost, "/v1/functions/echo:"+verb, body), http.StatusBadRequest,
					"VALIDATION_ERROR", "Request validation failed", "input: Input payload is required")
				if n := h.store.Len(); n != 0 {
					t.Errorf("%d executions created, want none", n)
				}
			})
		}
	}
}

func TestInvoke_XTimeoutMsHeader(t *testing.T) {
	tests := []struct {
		value  string
		status int
	}{
		{"abc", http.StatusBadRequest},
		{"1.5", http.StatusBadRequest},
		{"3000000000", http.StatusBadRequest}, // beyond a Java int
		{"", http.StatusOK},                   // empty = absent
		{" 250 ", http.StatusOK},
		{"0", http.StatusOK},  // LOCAL completes inline, so even an immediate timeout sees it done
		{"-5", http.StatusOK}, // no range validation
	}
	for _, tc := range tests {
		t.Run(tc.value, func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			h.registerLocal("echo")
			rec := h.do(http.MethodPost, "/v1/functions/echo:invoke", `{"input":1}`, "X-Timeout-Ms", tc.value)
			if tc.status == http.StatusBadRequest {
				assertJSON(t, rec, http.StatusBadRequest, `{"error":"BAD_REQUEST","message":"Type mismatch."}`)
				if n := h.store.Len(); n != 0 {
					t.Errorf("%d executions created, want none", n)
				}
				return
			}
			assertStatus(t, rec, http.StatusOK)
			if got := decodeInto[invocationResponse](t, rec).Status; got != "success" {
				t.Errorf("status = %q, want success", got)
			}
		})
	}
}

func TestInvoke_PoolOutcomesAreAll200(t *testing.T) {
	tests := []struct {
		name   string
		reply  func(w http.ResponseWriter, r *http.Request) // nil = hold until the caller gives up
		status string
		check  func(t *testing.T, got invocationResponse)
	}{
		{
			name: "success",
			reply: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"r":1}`))
			},
			status: "success",
			check: func(t *testing.T, got invocationResponse) {
				if string(got.Output) != `{"r":1}` || got.Error != nil {
					t.Errorf("output/error = %s/%+v", got.Output, got.Error)
				}
			},
		},
		{
			name: "function error",
			reply: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusInternalServerError)
				_, _ = w.Write([]byte(`{"error":"boom"}`))
			},
			status: "error",
			check: func(t *testing.T, got invocationResponse) {
				if got.Error == nil || got.Error.Code != "POOL_ERROR" || got.Error.Message == "" {
					t.Errorf("error = %+v, want POOL_ERROR", got.Error)
				}
				if string(got.Output) != "null" {
					t.Errorf("output = %s, want null", got.Output)
				}
			},
		},
		{
			name:   "wait timed out (D1)",
			status: "timeout",
			check: func(t *testing.T, got invocationResponse) {
				if string(got.Output) != "null" || got.Error != nil {
					t.Errorf("output/error = %s/%+v, want null/null", got.Output, got.Error)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			pod := newFakePod(t, tc.reply)
			h.register(`{"name":"fn","image":"i","executionMode":"POOL","maxRetries":1,"timeoutMs":10000,"endpointUrl":"` + pod.URL + `"}`)
			wait := "5000"
			if tc.reply == nil {
				wait = "20"
			}
			rec := h.do(http.MethodPost, "/v1/functions/fn:invoke", `{"input":{"q":1}}`,
				"X-Timeout-Ms", wait, "X-Trace-Id", "trace-1")
			assertStatus(t, rec, http.StatusOK)
			got := decodeInto[invocationResponse](t, rec)
			if got.Status != tc.status {
				t.Fatalf("status = %q, want %q (body %s)", got.Status, tc.status, rec.Body)
			}
			if hdr := rec.Header().Get("X-Execution-Id"); hdr != got.ExecutionID || hdr == "" {
				t.Errorf("X-Execution-Id = %q, body executionId = %q", hdr, got.ExecutionID)
			}
			tc.check(t, got)
			st := decodeInto[execution.Status](t, h.do(http.MethodGet, "/v1/executions/"+got.ExecutionID, ""))
			if st.Status != tc.status {
				t.Errorf("execution status = %q, want %q", st.Status, tc.status)
			}
			if first := receive(t, pod.requests); first.Header.Get("X-Trace-Id") != "trace-1" {
				t.Errorf("pod got X-Trace-Id %q, want trace-1", first.Header.Get("X-Trace-Id"))
			}
		})
	}
}

func TestInvoke_RejectionsAreEmpty(t *testing.T) {
	tests := []struct {
		name   string
		opts   func() harnessOpts
		fn     string
		status int
	}{
		{"unknown function", func() harnessOpts { return harnessOpts{} }, "nope", http.StatusNotFound},
		{"async queue full", func() harnessOpts { return harnessOpts{enqueuer: &fakeEnqueuer{full: true}} }, "echo", http.StatusTooManyRequests},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.opts())
			h.registerLocal("echo")
			assertEmpty(t, h.do(http.MethodPost, "/v1/functions/"+tc.fn+":invoke", `{"input":1}`), tc.status)
			if n := h.store.Len(); n != 0 {
				t.Errorf("%d executions kept, want none", n)
			}
		})
	}
}

func TestInvoke_RateLimitedIs429EvenForUnknownFunction(t *testing.T) {
	// No async queue either: the rate limit is checked first, so :enqueue is 429, not 501.
	h := newHarness(t, harnessOpts{})
	h.registerLocal("echo")
	h.limiter.SetMaxPerSecond(0)
	for _, path := range []string{"/v1/functions/echo:invoke", "/v1/functions/nope:invoke", "/v1/functions/echo:enqueue", "/v1/functions/nope:enqueue"} {
		assertEmpty(t, h.do(http.MethodPost, path, `{"input":1}`), http.StatusTooManyRequests)
	}
	h.limiter.SetMaxPerSecond(1000)
	assertStatus(t, h.do(http.MethodPost, "/v1/functions/echo:invoke", `{"input":1}`), http.StatusOK)
}

func TestInvoke_SyncQueueRejectionHeaders(t *testing.T) {
	for _, reason := range []invocation.RejectReason{invocation.RejectDepth, invocation.RejectEstWait, invocation.RejectTimeout} {
		t.Run(string(reason), func(t *testing.T) {
			h := newHarness(t, harnessOpts{syncQueue: fakeSyncQueue{
				err: &invocation.SyncQueueRejectedError{Reason: reason, RetryAfterSeconds: 2},
			}})
			h.registerLocal("echo")
			rec := h.do(http.MethodPost, "/v1/functions/echo:invoke", `{"input":1}`)
			assertEmpty(t, rec, http.StatusTooManyRequests)
			if got := rec.Header().Get("Retry-After"); got != "2" {
				t.Errorf("Retry-After = %q, want 2", got)
			}
			if got := rec.Header().Get("X-Queue-Reject-Reason"); got != string(reason) {
				t.Errorf("X-Queue-Reject-Reason = %q, want %q", got, reason)
			}
			if n := h.store.Len(); n != 0 {
				t.Errorf("%d executions kept, want none", n)
			}
		})
	}
}

// queueTimingOut is a sync queue that admits a task and then completes it with the queue-wait
// timeout code, as the sync-queue scheduler does when a task waited too long.
type queueTimingOut struct{ svc *invocation.Service }

func (q queueTimingOut) Enabled() bool          { return true }
func (q queueTimingOut) RetryAfterSeconds() int { return 3 }
func (q queueTimingOut) Enqueue(task *execution.Task) error {
	q.svc.Complete(task.ExecutionID, execution.Warm(execution.ErrorResult(invocation.QueueTimeoutCode, "waited too long")), task.Attempt)
	return nil
}

func TestInvoke_QueueWaitTimeoutIs429Timeout(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.invocations.SetSyncQueue(queueTimingOut{svc: h.invocations})
	h.register(`{"name":"echo","image":"local","executionMode":"LOCAL","maxRetries":0}`)
	rec := h.do(http.MethodPost, "/v1/functions/echo:invoke", `{"input":1}`)
	assertEmpty(t, rec, http.StatusTooManyRequests)
	if rec.Header().Get("Retry-After") != "3" || rec.Header().Get("X-Queue-Reject-Reason") != "timeout" {
		t.Errorf("headers = %v, want Retry-After 3 and reason timeout", rec.Header())
	}
}

func TestInvoke_UnexpectedAdmissionFailureIs500(t *testing.T) {
	tests := []struct {
		name string
		opts harnessOpts
	}{
		{"sync queue error", harnessOpts{syncQueue: fakeSyncQueue{err: errors.New("scheduler stopped: secret")}}},
		{"enqueuer panic", harnessOpts{enqueuer: &fakeEnqueuer{panic: true}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.opts)
			h.registerLocal("echo")
			assertJSON(t, h.do(http.MethodPost, "/v1/functions/echo:invoke", `{"input":1}`),
				http.StatusInternalServerError, internalErrorBody)
			if n := h.store.Len(); n != 0 {
				t.Errorf("%d executions kept, want none", n)
			}
		})
	}
}

func TestInvoke_SameIdempotencyKeyReplaysSameExecution(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.registerLocal("echo")
	first := h.do(http.MethodPost, "/v1/functions/echo:invoke", `{"input":1}`, "Idempotency-Key", "k1")
	second := h.do(http.MethodPost, "/v1/functions/echo:invoke", `{"input":2}`, "Idempotency-Key", "k1")
	other := h.do(http.MethodPost, "/v1/functions/echo:invoke", `{"input":3}`, "Idempotency-Key", "k2")
	a, b, c := decodeInto[invocationResponse](t, first), decodeInto[invocationResponse](t, second), decodeInto[invocationResponse](t, other)
	if a.ExecutionID != b.ExecutionID || second.Header().Get("X-Execution-Id") != a.ExecutionID {
		t.Errorf("replay id %q (header %q), want %q", b.ExecutionID, second.Header().Get("X-Execution-Id"), a.ExecutionID)
	}
	if string(b.Output) != "1" || b.Status != "success" {
		t.Errorf("replay = %+v, want the stored success with output 1", b)
	}
	if c.ExecutionID == a.ExecutionID {
		t.Errorf("different key reused execution %q", a.ExecutionID)
	}
	if n := h.store.Len(); n != 2 {
		t.Errorf("%d executions, want 2", n)
	}
}

func TestInvoke_BlankIdempotencyKeyIsAbsent(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.registerLocal("echo")
	a := decodeInto[invocationResponse](t, h.do(http.MethodPost, "/v1/functions/echo:invoke", `{"input":1}`, "Idempotency-Key", "   "))
	b := decodeInto[invocationResponse](t, h.do(http.MethodPost, "/v1/functions/echo:invoke", `{"input":1}`, "Idempotency-Key", "   "))
	if a.ExecutionID == b.ExecutionID {
		t.Errorf("blank key deduplicated executions")
	}
}

func TestEnqueue_WithoutAsyncQueueIs501Empty(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.registerLocal("echo")
	assertEmpty(t, h.do(http.MethodPost, "/v1/functions/echo:enqueue", `{"input":1}`), http.StatusNotImplemented)
	assertEmpty(t, h.do(http.MethodPost, "/v1/functions/nope:enqueue", `{"input":1}`), http.StatusNotFound)
	if n := h.store.Len(); n != 0 {
		t.Errorf("%d executions created, want none", n)
	}
}

func TestEnqueue_AcceptedIs202Queued(t *testing.T) {
	enq := &fakeEnqueuer{}
	h := newHarness(t, harnessOpts{enqueuer: enq})
	h.registerLocal("echo")
	rec := h.do(http.MethodPost, "/v1/functions/echo:enqueue", `{"input":1}`, "Idempotency-Key", "k", "X-Trace-Id", "t-1")
	assertStatus(t, rec, http.StatusAccepted)
	got := decodeInto[invocationResponse](t, rec)
	assertJSON(t, rec, http.StatusAccepted, `{"executionId":"`+got.ExecutionID+`","status":"queued","output":null,"error":null}`)
	if h := rec.Header().Get("X-Execution-Id"); h != "" {
		t.Errorf("X-Execution-Id = %q, want none on enqueue", h)
	}
	if enq.enqueued() != 1 {
		t.Fatalf("%d tasks enqueued, want 1", enq.enqueued())
	}
	task := enq.tasks[0]
	if task.ExecutionID != got.ExecutionID || task.IdempotencyKey != "k" || task.TraceID == nil || *task.TraceID != "t-1" {
		t.Errorf("task = %+v, want id %s, key k, trace t-1", task, got.ExecutionID)
	}
	st := decodeInto[execution.Status](t, h.do(http.MethodGet, "/v1/executions/"+got.ExecutionID, ""))
	if st.Status != "queued" {
		t.Errorf("execution status = %q, want queued", st.Status)
	}

	// Completed since: a replay with the same key is still 202 "queued", same id, not re-enqueued.
	assertEmpty(t, h.do(http.MethodPost, "/v1/internal/executions/"+got.ExecutionID+":complete", `{"success":true,"output":5}`),
		http.StatusNoContent)
	replay := h.do(http.MethodPost, "/v1/functions/echo:enqueue", `{"input":1}`, "Idempotency-Key", "k")
	assertJSON(t, replay, http.StatusAccepted, `{"executionId":"`+got.ExecutionID+`","status":"queued","output":null,"error":null}`)
	if enq.enqueued() != 1 {
		t.Errorf("%d tasks enqueued after replay, want 1", enq.enqueued())
	}
}

func TestEnqueue_QueueFullIs429AndRollsBack(t *testing.T) {
	h := newHarness(t, harnessOpts{enqueuer: &fakeEnqueuer{full: true}})
	h.registerLocal("echo")
	assertEmpty(t, h.do(http.MethodPost, "/v1/functions/echo:enqueue", `{"input":1}`, "Idempotency-Key", "k"), http.StatusTooManyRequests)
	if n := h.store.Len(); n != 0 {
		t.Errorf("%d executions kept, want none", n)
	}
}

func TestExecution_UnknownIs404Empty(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	assertEmpty(t, h.do(http.MethodGet, "/v1/executions/does-not-exist", ""), http.StatusNotFound)
}

func TestExecution_StatusShapeAfterLocalInvoke(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.registerLocal("echo")
	id := decodeInto[invocationResponse](t, h.do(http.MethodPost, "/v1/functions/echo:invoke", `{"input":{"x":1}}`)).ExecutionID
	rec := h.do(http.MethodGet, "/v1/executions/"+id, "")
	assertStatus(t, rec, http.StatusOK)
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var got map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"executionId": `"` + id + `"`, "status": `"success"`, "output": `{"x":1}`,
		"error": "null", "coldStart": "false", "initDurationMs": "null",
	}
	if len(got) != 8 {
		t.Errorf("fields = %v, want exactly the 8 ExecutionStatus fields", got)
	}
	for k, v := range want {
		if string(got[k]) != v {
			t.Errorf("%s = %s, want %s", k, got[k], v)
		}
	}
	for _, k := range []string{"startedAt", "finishedAt"} {
		var ts string
		if err := json.Unmarshal(got[k], &ts); err != nil || !strings.HasSuffix(ts, "Z") {
			t.Errorf("%s = %s, want an ISO-8601 UTC instant", k, got[k])
			continue
		}
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
			t.Errorf("%s = %s: %v", k, ts, err)
		}
	}
}
