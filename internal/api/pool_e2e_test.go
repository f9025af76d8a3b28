package api_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/nanofaas/control-plane/internal/execution"
)

// A POOL function's reply, as the HTTP client sees it through the real API handler: the invoke
// answer and the execution status (GET /v1/executions/{id}) carry the same outcome, and the
// cold-start headers reach the status (spec-core §6.8, D3).
func TestInvoke_PoolReplyShapesReachInvokeAndStatus(t *testing.T) {
	tests := []struct {
		name        string
		contentType *string // nil = no Content-Type header
		body        string
		coldHeaders bool
		status      string
		output      string // the invoke answer's output
		errCode     string
		errPrefix   string
	}{
		{name: "json", contentType: new("application/json"), body: `{"r":[1,2]}`, status: "success", output: `{"r":[1,2]}`},
		{name: "text plain is a string", contentType: new("text/plain;charset=UTF-8"), body: "hi \"you\"", status: "success", output: `"hi \"you\""`},
		{name: "empty body is null", contentType: new("application/json"), body: "", status: "success", output: "null"},
		{name: "missing content type with json body (D3)", body: `[1,2,3]`, status: "success", output: `[1,2,3]`},
		{name: "missing content type with text body (D3)", body: `plain words`, status: "success", output: `"plain words"`},
		{name: "unsupported type", contentType: new("application/octet-stream"), body: "xx", status: "error", output: "null",
			errCode: "POOL_ERROR", errPrefix: "Content type 'application/octet-stream' not supported"},
		{name: "cold start headers", contentType: new("application/json"), body: `1`, coldHeaders: true, status: "success", output: "1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			pod := newFakePod(t, func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				if tc.contentType == nil {
					w.Header()["Content-Type"] = nil // no sniffing: really absent
				} else {
					w.Header().Set("Content-Type", *tc.contentType)
				}
				if tc.coldHeaders {
					w.Header().Set("X-Cold-Start", "TRUE")
					w.Header().Set("X-Init-Duration-Ms", "42")
				}
				_, _ = io.WriteString(w, tc.body)
			})
			h.register(`{"name":"fn","image":"i","executionMode":"POOL","maxRetries":1,"timeoutMs":5000,"endpointUrl":"` + pod.URL + `"}`)
			rec := h.do(http.MethodPost, "/v1/functions/fn:invoke", `{"input":{"q":1}}`)
			assertStatus(t, rec, http.StatusOK)
			got := decodeInto[invocationResponse](t, rec)
			if got.Status != tc.status || string(got.Output) != tc.output {
				t.Fatalf("invoke = %s, want status %s output %s", rec.Body, tc.status, tc.output)
			}
			if tc.errCode == "" && got.Error != nil || tc.errCode != "" &&
				(got.Error == nil || got.Error.Code != tc.errCode || !strings.HasPrefix(got.Error.Message, tc.errPrefix)) {
				t.Errorf("error = %+v, want %s %q…", got.Error, tc.errCode, tc.errPrefix)
			}
			st := decodeInto[execution.Status](t, h.do(http.MethodGet, "/v1/executions/"+got.ExecutionID, ""))
			if st.Status != tc.status || string(st.Output) != tc.output {
				t.Errorf("execution = %+v, want status %s output %s", st, tc.status, tc.output)
			}
			if st.ColdStart != tc.coldHeaders || (tc.coldHeaders != (st.InitDurationMs != nil)) ||
				(st.InitDurationMs != nil && *st.InitDurationMs != 42) {
				t.Errorf("coldStart %v initDurationMs %v, want cold=%v 42", st.ColdStart, st.InitDurationMs, tc.coldHeaders)
			}
		})
	}
}

// A runtime that posts its result to the callback endpoint before answering the dispatch: the
// callback completes the execution, the HTTP answer that follows is ignored, and the waiting
// sync caller gets the callback's result.
func TestInvoke_CallbackFromTheRuntimeBeforeItsReplyWins(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	pod := newFakePod(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		id := r.Header.Get("X-Execution-Id")
		cb := h.do(http.MethodPost, "/v1/internal/executions/"+id+":complete", `{"success":true,"output":"from callback"}`,
			"X-Dispatch-Attempt", r.Header.Get("X-Dispatch-Attempt"))
		if cb.Code != http.StatusNoContent {
			t.Errorf("callback = %d %s", cb.Code, cb.Body)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `"from reply"`)
	})
	h.register(`{"name":"fn","image":"i","executionMode":"POOL","maxRetries":1,"timeoutMs":5000,"endpointUrl":"` + pod.URL + `"}`)
	rec := h.do(http.MethodPost, "/v1/functions/fn:invoke", `{"input":1}`)
	got := decodeInto[invocationResponse](t, rec)
	if got.Status != "success" || string(got.Output) != `"from callback"` {
		t.Fatalf("invoke = %s, want the callback's result", rec.Body)
	}
	st := decodeInto[execution.Status](t, h.do(http.MethodGet, "/v1/executions/"+got.ExecutionID, ""))
	if st.Status != "success" || string(st.Output) != `"from callback"` {
		t.Errorf("execution = %+v, want the callback's result", st)
	}
}
