package api_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/nanofaas/control-plane/internal/execution"
)

// enqueueOne creates a queued execution of a LOCAL function with maxRetries 0 (so one failed
// attempt is final) through the async queue, which never dispatches it.
func enqueueOne(t *testing.T) (*harness, string) {
	t.Helper()
	h := newHarness(t, harnessOpts{enqueuer: &fakeEnqueuer{}})
	h.register(`{"name":"fn","image":"i","executionMode":"LOCAL","maxRetries":0}`)
	rec := h.do(http.MethodPost, "/v1/functions/fn:enqueue", `{"input":1}`)
	assertStatus(t, rec, http.StatusAccepted)
	return h, decodeInto[invocationResponse](t, rec).ExecutionID
}

func executionStatus(t *testing.T, h *harness, id string) execution.Status {
	t.Helper()
	rec := h.do(http.MethodGet, "/v1/executions/"+id, "")
	assertStatus(t, rec, http.StatusOK)
	return decodeInto[execution.Status](t, rec)
}

// callbackCase is a callback body and the execution status it must leave.
type callbackCase struct {
	name   string
	body   string
	status string
	output string
	err    *execution.ErrorInfo
}

// runCallbackCases posts each body as the callback of a fresh queued execution and checks the
// execution's status, output and error.
func runCallbackCases(t *testing.T, tests []callbackCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, id := enqueueOne(t)
			assertEmpty(t, h.do(http.MethodPost, "/v1/internal/executions/"+id+":complete", tc.body), http.StatusNoContent)
			st := executionStatus(t, h, id)
			if st.Status != tc.status {
				t.Errorf("status = %q, want %q", st.Status, tc.status)
			}
			if string(st.Output) != tc.output {
				t.Errorf("output = %s, want %s", st.Output, tc.output)
			}
			if (st.Error == nil) != (tc.err == nil) || (st.Error != nil && *st.Error != *tc.err) {
				t.Errorf("error = %+v, want %+v", st.Error, tc.err)
			}
		})
	}
}

func TestCallback_BodyDecidesOutcome(t *testing.T) {
	runCallbackCases(t, []callbackCase{
		{"D4: no success, no error is success", `{"output":{"v":1}}`, "success", `{"v":1}`, nil},
		{"D4: no success, null error is success", `{"output":"ok","error":null}`, "success", `"ok"`, nil},
		{"D4: empty body object is success with null output", `{}`, "success", "null", nil},
		{"D4: no success with error is error", `{"error":{"code":"HANDLER_ERROR","message":"boom"}}`, "error", "null",
			&execution.ErrorInfo{Code: "HANDLER_ERROR", Message: "boom"}},
		{"null success is absent", `{"success":null,"output":2}`, "success", `2`, nil},
		{"explicit success", `{"success":true,"output":[1,2]}`, "success", `[1,2]`, nil},
		{"explicit success with null output", `{"success":true,"output":null}`, "success", "null", nil},
		{"explicit failure", `{"success":false,"error":{"code":"HANDLER_TIMEOUT","message":"slow"}}`, "error", "null",
			&execution.ErrorInfo{Code: "HANDLER_TIMEOUT", Message: "slow"}},
		{"D21: failure without details", `{"success":false,"error":null}`, "error", "null",
			&execution.ErrorInfo{Code: "FUNCTION_ERROR", Message: "function reported failure without error details"}},
		{"unknown fields ignored", `{"success":true,"output":3,"extra":{"a":1}}`, "success", `3`, nil},
	})
}

// X-Dispatch-Attempt is the attempt a result belongs to: the current attempt (1) applies, any
// other positive value is stale and ignored; absent, blank, non-numeric, non-positive or
// out-of-int values are the legacy "no attempt" form, which applies to the current attempt.
func TestCallback_DispatchAttemptHeader(t *testing.T) {
	tests := []struct {
		header  []string
		applied bool
	}{
		{[]string{"X-Dispatch-Attempt", "1"}, true},
		{[]string{"X-Dispatch-Attempt", " 1 "}, true},
		{[]string{"X-Dispatch-Attempt", "7"}, false},
		{[]string{"X-Dispatch-Attempt", "2"}, false},
		{[]string{"X-Dispatch-Attempt", "0"}, true},
		{[]string{"X-Dispatch-Attempt", "-3"}, true},
		{[]string{"X-Dispatch-Attempt", "abc"}, true},
		{[]string{"X-Dispatch-Attempt", ""}, true},
		{[]string{"X-Dispatch-Attempt", "4294967297"}, true}, // beyond a Java int
		{nil, true},
	}
	for _, tc := range tests {
		name := "absent"
		if tc.header != nil {
			name = "[" + tc.header[1] + "]"
		}
		t.Run(name, func(t *testing.T) {
			h, id := enqueueOne(t)
			assertEmpty(t, h.do(http.MethodPost, "/v1/internal/executions/"+id+":complete", `{"success":true,"output":9}`, tc.header...),
				http.StatusNoContent)
			st := executionStatus(t, h, id)
			want := "queued"
			if tc.applied {
				want = "success"
			}
			if st.Status != want {
				t.Errorf("status = %q, want %q", st.Status, want)
			}
		})
	}
}

func TestCallback_AlwaysNoContentOnceDecoded(t *testing.T) {
	h, id := enqueueOne(t)
	// Unknown id.
	assertEmpty(t, h.do(http.MethodPost, "/v1/internal/executions/no-such-id:complete", `{"success":true}`), http.StatusNoContent)
	// First result wins; the duplicate is accepted and changes nothing.
	assertEmpty(t, h.do(http.MethodPost, "/v1/internal/executions/"+id+":complete", `{"success":true,"output":1}`), http.StatusNoContent)
	assertEmpty(t, h.do(http.MethodPost, "/v1/internal/executions/"+id+":complete",
		`{"success":false,"error":{"code":"LATE","message":"late"}}`, "X-Trace-Id", "ignored"), http.StatusNoContent)
	st := executionStatus(t, h, id)
	if st.Status != "success" || string(st.Output) != "1" {
		t.Errorf("status = %+v, want the first result", st)
	}
}

func TestCallback_CompletesWaitingSyncInvocation(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	pod := newFakePod(t, nil) // holds the dispatch; the runtime answers by callback instead
	h.register(`{"name":"fn","image":"i","executionMode":"POOL","maxRetries":1,"endpointUrl":"` + pod.URL + `"}`)
	done := make(chan *recorder, 1)
	go func() {
		done <- h.do(http.MethodPost, "/v1/functions/fn:invoke", `{"input":1}`, "X-Timeout-Ms", "10000")
	}()
	req := receive(t, pod.requests)
	id, attempt := req.Header.Get("X-Execution-Id"), req.Header.Get("X-Dispatch-Attempt")
	assertEmpty(t, h.do(http.MethodPost, "/v1/internal/executions/"+id+":complete", `{"output":{"via":"callback"}}`,
		"X-Dispatch-Attempt", attempt), http.StatusNoContent)
	rec := receive(t, done)
	assertStatus(t, rec, http.StatusOK)
	got := decodeInto[invocationResponse](t, rec)
	if got.ExecutionID != id || got.Status != "success" || string(got.Output) != `{"via":"callback"}` {
		t.Errorf("response = %+v, want the callback's success for %s", got, id)
	}
	var out map[string]string
	if err := json.Unmarshal(got.Output, &out); err != nil || out["via"] != "callback" {
		t.Errorf("structured output not kept: %s", got.Output)
	}
}
