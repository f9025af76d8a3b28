package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"testing"

	"github.com/nanofaas/control-plane/internal/execution"
)

// sentToPod is the InvocationRequest a function replica received.
type sentToPod struct {
	Input    json.RawMessage    `json:"input"`
	Metadata map[string]*string `json:"metadata"`
}

// echoBody answers a POOL dispatch with the request body it received, so the invocation's
// output is exactly what the control plane sent to the function.
func echoBody(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

func strPtr(s string) *string { return &s }

// The invoke/enqueue body is read like the reference's Jackson mapper reads it (§1, §2.3):
// case-sensitive keys, unknown keys ignored, null = absent, last duplicate wins, scalar
// metadata values coerced to strings.
func TestInvocationBody_JacksonSemantics(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		input    string             // "" = input missing: 400 VALIDATION_ERROR
		metadata map[string]*string // what the function receives
	}{
		{name: "upper-case INPUT is an unknown property", body: `{"INPUT":{"a":1}}`},
		{name: "Input is an unknown property", body: `{"Input":1,"metadata":{"k":"v"}}`},
		{name: "later null input is absent", body: `{"input":1,"input":null}`},
		{name: "metadata number coerced to a string", body: `{"input":1,"metadata":{"n":1}}`,
			input: `1`, metadata: map[string]*string{"n": strPtr("1")}},
		{name: "metadata scalars coerced, null value empty, keys exact",
			body:  `{"input":{"a":1},"metadata":{"b":true,"f":1.50,"z":null,"K":"x","k":"y"}}`,
			input: `{"a":1}`, metadata: map[string]*string{"b": strPtr("true"), "f": strPtr("1.50"),
				"z": strPtr(""), "K": strPtr("x"), "k": strPtr("y")}},
		{name: "escaped property name", body: `{"inp\u0075t":[1]}`, input: `[1]`},
		{name: "last duplicate wins", body: `{"input":1,"input":"two","metadata":{"a":"1"},"metadata":{"b":"2"}}`,
			input: `"two"`, metadata: map[string]*string{"b": strPtr("2")}},
		{name: "differently cased metadata ignored", body: `{"input":true,"Metadata":5,"extra":{"input":null}}`,
			input: `true`},
	}
	for _, tc := range tests {
		t.Run("invoke/"+tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			pod := newFakePod(t, echoBody)
			h.register(`{"name":"fn","image":"i","executionMode":"POOL","endpointUrl":"` + pod.URL + `"}`)
			rec := h.do(http.MethodPost, "/v1/functions/fn:invoke", tc.body)
			if tc.input == "" {
				assertError(t, rec, http.StatusBadRequest, "VALIDATION_ERROR", "Request validation failed",
					"input: Input payload is required")
				return
			}
			assertStatus(t, rec, http.StatusOK)
			got := decodeInto[invocationResponse](t, rec)
			if got.Status != "success" {
				t.Fatalf("status = %q (body %s)", got.Status, rec.Body)
			}
			var sent sentToPod
			if err := json.Unmarshal(got.Output, &sent); err != nil {
				t.Fatalf("pod received %s: %v", got.Output, err)
			}
			if string(sent.Input) != tc.input || !reflect.DeepEqual(sent.Metadata, tc.metadata) {
				t.Errorf("pod received %s, want input %s and metadata %v", got.Output, tc.input, tc.metadata)
			}
		})
		t.Run("enqueue/"+tc.name, func(t *testing.T) {
			q := &fakeEnqueuer{}
			h := newHarness(t, harnessOpts{enqueuer: q})
			h.registerLocal("fn")
			rec := h.do(http.MethodPost, "/v1/functions/fn:enqueue", tc.body)
			if tc.input == "" {
				assertError(t, rec, http.StatusBadRequest, "VALIDATION_ERROR", "Request validation failed",
					"input: Input payload is required")
				if n := q.enqueued(); n != 0 {
					t.Errorf("%d tasks enqueued, want none", n)
				}
				return
			}
			assertStatus(t, rec, http.StatusAccepted)
			if n := q.enqueued(); n != 1 {
				t.Fatalf("%d tasks enqueued, want 1", n)
			}
			req := q.tasks[0].Request
			want := map[string]string(nil)
			if tc.metadata != nil {
				want = map[string]string{}
				for k, v := range tc.metadata {
					want[k] = *v
				}
			}
			if string(req.Input) != tc.input || !reflect.DeepEqual(req.Metadata, want) {
				t.Errorf("task request = %s %v, want %s %v", req.Input, req.Metadata, tc.input, want)
			}
		})
	}
}

// Malformed JSON and type errors keep the reference's decode-error answer, and admit nothing.
func TestInvocationBody_UndecodableIsBadRequest(t *testing.T) {
	for _, body := range []string{
		`{"input":`, `{"input":1,}`, `{"input":1} {}`, `{input:1}`,
		`[{"input":1}]`, `"{\"input\":1}"`, `5`, `true`,
		`{"input":1,"metadata":{"k":{}}}`, `{"input":1,"metadata":{"k":[1]}}`,
		`{"input":1,"metadata":"k"}`, `{"input":1,"metadata":""}`, `{"input":1,"metadata":[{"k":"v"}]}`,
	} {
		for _, verb := range []string{"invoke", "enqueue"} {
			t.Run(verb+" "+body, func(t *testing.T) {
				q := &fakeEnqueuer{}
				h := newHarness(t, harnessOpts{enqueuer: q})
				h.registerLocal("echo")
				assertError(t, h.do(http.MethodPost, "/v1/functions/echo:"+verb, body), http.StatusBadRequest,
					"BAD_REQUEST", "Failed to read HTTP message")
				if n := h.store.Len(); n != 0 || q.enqueued() != 0 {
					t.Errorf("%d executions created, %d enqueued; want none", n, q.enqueued())
				}
			})
		}
	}
}

// The callback body is read like the reference reads an InvocationResult (§2.6, §3.9, D4).
func TestCallbackBody_JacksonSemantics(t *testing.T) {
	runCallbackCases(t, []callbackCase{
		{"D4: Success and Output are unknown properties", `{"Success":false,"Output":7}`, "success", "null", nil},
		{"success string coerced", `{"success":"true"}`, "success", "null", nil},
		{"success string False coerced", `{"success":"False","error":{"code":"E","message":"m"}}`, "error", "null",
			&execution.ErrorInfo{Code: "E", Message: "m"}},
		{"success integer coerced", `{"success":1,"output":"x"}`, "success", `"x"`, nil},
		{"error fields coerced to strings", `{"success":0,"error":{"code":42,"message":true}}`, "error", "null",
			&execution.ErrorInfo{Code: "42", Message: "true"}},
		{"error keys are case-sensitive", `{"error":{"Code":"E","message":"m"}}`, "error", "null",
			&execution.ErrorInfo{Message: "m"}},
		{"D4: ERROR is an unknown property", `{"ERROR":{"code":"E","message":"m"},"output":3}`, "success", "3", nil},
		{"last duplicate wins", `{"success":false,"success":true,"output":1,"output":2}`, "success", "2", nil},
		{"escaped property name", `{"succ\u0065ss":false,"error":null}`, "error", "null",
			&execution.ErrorInfo{Code: "FUNCTION_ERROR", Message: "function reported failure without error details"}},
		{"blank success string is absent (D4)", `{"success":" ","output":[1]}`, "success", "[1]", nil},
	})
}

// Malformed JSON and type errors in a callback keep the decode-error answer and change nothing.
func TestCallbackBody_UndecodableIsBadRequest(t *testing.T) {
	for _, body := range []string{
		`{"success":`, `{"success":true,}`, `{"success":true} x`, `[{"success":true}]`, `"ok"`,
		`{"success":{}}`, `{"success":[true]}`, `{"success":"yes"}`, `{"success":1.5}`,
		`{"error":"boom"}`, `{"error":[]}`, `{"error":{"code":{}}}`, `{"error":{"message":["m"]}}`,
	} {
		t.Run(body, func(t *testing.T) {
			h, id := enqueueOne(t)
			assertError(t, h.do(http.MethodPost, "/v1/internal/executions/"+id+":complete", body),
				http.StatusBadRequest, "BAD_REQUEST", "Failed to read HTTP message")
			if st := executionStatus(t, h, id); st.Status != "queued" {
				t.Errorf("status = %q, want queued", st.Status)
			}
		})
	}
}
