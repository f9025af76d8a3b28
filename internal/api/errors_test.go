package api_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nanofaas/control-plane/internal/failure"
	"github.com/nanofaas/control-plane/internal/function"
	"github.com/nanofaas/control-plane/internal/registry"
)

func TestRegister_ValidationErrorDetails(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		details []string
	}{
		{"blank name", `{"name":"  ","image":"i"}`, []string{"name: must not be blank"}},
		{"missing name", `{"image":"i"}`, []string{"name: must not be blank"}},
		{"null image", `{"name":"fn","image":null}`, []string{"image: must not be blank"}},
		{"concurrency 0", `{"name":"fn","image":"i","concurrency":0}`, []string{"concurrency: must be greater than or equal to 1"}},
		{"timeoutMs 0", `{"name":"fn","image":"i","timeoutMs":0}`, []string{"timeoutMs: must be greater than or equal to 1"}},
		{"queueSize 0", `{"name":"fn","image":"i","queueSize":0}`, []string{"queueSize: must be greater than or equal to 1"}},
		{"maxRetries -1", `{"name":"fn","image":"i","maxRetries":-1}`, []string{"maxRetries: must be greater than or equal to 0"}},
		{"name with colon (D22)", `{"name":"a:b","image":"i"}`, []string{`name: must match "` + function.NamePattern + `"`}},
		{"name with space (D22)", `{"name":"my fn","image":"i"}`, []string{`name: must match "` + function.NamePattern + `"`}},
		{"name starting with digit (D22)", `{"name":"1fn","image":"i"}`, []string{`name: must match "` + function.NamePattern + `"`}},
		{"name of 64 characters (D22)", `{"name":"a` + strings.Repeat("b", 63) + `","image":"i"}`, []string{`name: must match "` + function.NamePattern + `"`}},
		{"several violations", `{"name":"","image":"","concurrency":0,"maxRetries":-1}`, []string{
			"name: must not be blank", "image: must not be blank",
			"concurrency: must be greater than or equal to 1", "maxRetries: must be greater than or equal to 0",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			rec := h.do(http.MethodPost, "/v1/functions", tc.body)
			assertError(t, rec, http.StatusBadRequest, "VALIDATION_ERROR", "Request validation failed", tc.details...)
			if got := h.functions.List(); len(got) != 0 {
				t.Errorf("%d functions registered, want none", len(got))
			}
		})
	}
}

func TestRegister_NameOf63CharactersIsAccepted(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.registerLocal("a" + strings.Repeat("b", 62))
}

func TestBlankPathVariable_ValidationError(t *testing.T) {
	tests := []struct {
		method, path, body, detail string
	}{
		{http.MethodGet, "/v1/functions/%20", "", "name: Function name is required"},
		{http.MethodDelete, "/v1/functions/%20", "", "name: Function name is required"},
		{http.MethodPost, "/v1/functions/%20:invoke", `{"input":1}`, "name: Function name is required"},
		{http.MethodPost, "/v1/functions/:invoke", `{"input":1}`, "name: Function name is required"},
		{http.MethodPost, "/v1/functions/%20:enqueue", `{"input":1}`, "name: Function name is required"},
		{http.MethodPut, "/v1/functions/%20/replicas", `{"replicas":1}`, "name: Function name is required"},
		{http.MethodGet, "/v1/executions/%20", "", "executionId: Execution ID is required"},
		{http.MethodPost, "/v1/internal/executions/%20:complete", `{"success":true}`, "executionId: Execution ID is required"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			assertError(t, h.do(tc.method, tc.path, tc.body), http.StatusBadRequest,
				"VALIDATION_ERROR", "Request validation failed", tc.detail)
		})
	}
}

func TestUndecodableBody_BadRequest(t *testing.T) {
	tests := []struct {
		name, method, path, body string
	}{
		{"malformed JSON", http.MethodPost, "/v1/functions", `{"name":"fn",`},
		{"trailing garbage", http.MethodPost, "/v1/functions", `{"name":"fn","image":"i"} x`},
		{"not an object", http.MethodPost, "/v1/functions", `["fn"]`},
		{"JSON null", http.MethodPost, "/v1/functions", `null`},
		{"string for int", http.MethodPost, "/v1/functions", `{"name":"fn","image":"i","timeoutMs":"soon"}`},
		{"object for string", http.MethodPost, "/v1/functions", `{"name":{"x":1},"image":"i"}`},
		{"lower-case enum", http.MethodPost, "/v1/functions", `{"name":"fn","image":"i","executionMode":"deployment"}`},
		{"unknown enum", http.MethodPost, "/v1/functions", `{"name":"fn","image":"i","runtimeMode":"GRPC"}`},
		{"invoke malformed", http.MethodPost, "/v1/functions/echo:invoke", `{"input":`},
		{"invoke metadata not a map", http.MethodPost, "/v1/functions/echo:invoke", `{"input":1,"metadata":[1]}`},
		{"enqueue malformed", http.MethodPost, "/v1/functions/echo:enqueue", `{`},
		{"replicas malformed", http.MethodPut, "/v1/functions/echo/replicas", `{"replicas":`},
		{"replicas boolean", http.MethodPut, "/v1/functions/echo/replicas", `{"replicas":true}`},
		{"callback malformed", http.MethodPost, "/v1/internal/executions/x:complete", `{"success":`},
		{"callback success not boolean", http.MethodPost, "/v1/internal/executions/x:complete", `{"success":{}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			h.registerLocal("echo")
			assertError(t, h.do(tc.method, tc.path, tc.body), http.StatusBadRequest, "BAD_REQUEST", "Failed to read HTTP message")
			if tc.path == "/v1/functions" && len(h.functions.List()) != 1 {
				t.Errorf("undecodable registration was stored")
			}
		})
	}
}

func TestMissingBody_BadRequest(t *testing.T) {
	for _, tc := range []struct{ method, path string }{
		{http.MethodPost, "/v1/functions"},
		{http.MethodPost, "/v1/functions/echo:invoke"},
		{http.MethodPost, "/v1/functions/echo:enqueue"},
		{http.MethodPut, "/v1/functions/echo/replicas"},
		{http.MethodPost, "/v1/internal/executions/x:complete"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			rec := h.do(tc.method, tc.path, "", "Content-Type", "application/json")
			assertError(t, rec, http.StatusBadRequest, "BAD_REQUEST", "")
			if msg := decodeInto[errorBody](t, rec).Message; !strings.HasPrefix(msg, "Required request body is missing") {
				t.Errorf("message = %q, want the missing-body message", msg)
			}
		})
	}
}

func TestContentType_OnlyJSONIsAccepted(t *testing.T) {
	tests := []struct {
		name, contentType string
		status            int
		message           string
	}{
		{"missing is octet-stream", "", http.StatusUnsupportedMediaType, "Content type 'application/octet-stream' not supported"},
		{"text/plain", "text/plain", http.StatusUnsupportedMediaType, "Content type 'text/plain' not supported"},
		{"octet-stream", "application/octet-stream", http.StatusUnsupportedMediaType, "Content type 'application/octet-stream' not supported"},
		{"unparsable", "application/json; charset", http.StatusUnsupportedMediaType, ""},
		{"application/json with charset", "application/json;charset=UTF-8", http.StatusCreated, ""},
		{"upper-case application/json", "Application/JSON", http.StatusCreated, ""},
		{"+json suffix", "application/merge-patch+json", http.StatusCreated, ""},
		{"vendor +json", "application/vnd.nanofaas.v1+json; charset=utf-8", http.StatusCreated, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			rec := h.do(http.MethodPost, "/v1/functions", `{"name":"echo","image":"local","executionMode":"LOCAL"}`,
				"Content-Type", tc.contentType)
			if tc.status == http.StatusCreated {
				assertJSON(t, rec, http.StatusCreated, echoResponse)
				return
			}
			assertError(t, rec, tc.status, "415 UNSUPPORTED_MEDIA_TYPE", tc.message)
			if len(h.functions.List()) != 0 {
				t.Errorf("415 registration was stored")
			}
		})
	}
}

func TestContentType_EveryBodyEndpointAnswers415(t *testing.T) {
	for _, tc := range []struct{ method, path, body string }{
		{http.MethodPost, "/v1/functions/echo:invoke", `{"input":1}`},
		{http.MethodPost, "/v1/functions/echo:enqueue", `{"input":1}`},
		{http.MethodPut, "/v1/functions/echo/replicas", `{"replicas":1}`},
		{http.MethodPost, "/v1/internal/executions/x:complete", `{"success":true}`},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			h.registerLocal("echo")
			assertError(t, h.do(tc.method, tc.path, tc.body, "Content-Type", "text/plain"),
				http.StatusUnsupportedMediaType, "415 UNSUPPORTED_MEDIA_TYPE", "Content type 'text/plain' not supported")
			if n := h.store.Len(); n != 0 {
				t.Errorf("%d executions created, want none", n)
			}
		})
	}
}

// D13: a body over nanofaas.http.max-request-body-mb is 413 and admits nothing, whether its
// length is declared up front or only discovered while reading a chunked body.
func TestBodyLimit_PayloadTooLargeAdmitsNothing(t *testing.T) {
	const limit = 1024
	big := strings.Repeat("x", 2*limit)
	tests := []struct {
		name, method, path, body string
	}{
		{"register", http.MethodPost, "/v1/functions", `{"name":"fn","image":"i","executionMode":"LOCAL","env":{"k":"` + big + `"}}`},
		{"invoke", http.MethodPost, "/v1/functions/echo:invoke", `{"input":"` + big + `"}`},
		{"enqueue", http.MethodPost, "/v1/functions/echo:enqueue", `{"input":"` + big + `"}`},
		{"replicas", http.MethodPut, "/v1/functions/echo/replicas", `{"replicas":1,"pad":"` + big + `"}`},
		{"callback", http.MethodPost, "/v1/internal/executions/x:complete", `{"success":true,"output":"` + big + `"}`},
	}
	for _, tc := range tests {
		for _, chunked := range []bool{false, true} {
			name := tc.name
			if chunked {
				name += " chunked"
			}
			t.Run(name, func(t *testing.T) {
				enq := &fakeEnqueuer{}
				h := newHarness(t, harnessOpts{maxBodyBytes: limit, enqueuer: enq})
				h.registerLocal("echo")
				var body io.Reader = strings.NewReader(tc.body)
				if chunked {
					body = io.MultiReader(body) // hides the length
				}
				req := httptest.NewRequest(tc.method, tc.path, body)
				req.Header.Set("Content-Type", "application/json")
				if chunked {
					req.ContentLength = -1
				}
				rec := httptest.NewRecorder()
				h.handler.ServeHTTP(rec, req)
				assertJSON(t, rec, http.StatusRequestEntityTooLarge,
					`{"error":"PAYLOAD_TOO_LARGE","message":"Request body exceeds the limit of 1024 bytes"}`)
				assertEmpty(t, h.do(http.MethodGet, "/v1/functions/fn", ""), http.StatusNotFound)
				if n := h.store.Len(); n != 0 {
					t.Errorf("%d executions created, want none", n)
				}
				if n := enq.enqueued(); n != 0 {
					t.Errorf("%d tasks enqueued, want none", n)
				}
			})
		}
	}
}

func TestBodyLimit_BodyAtTheLimitIsAccepted(t *testing.T) {
	body := `{"name":"echo","image":"local","executionMode":"LOCAL"}`
	h := newHarness(t, harnessOpts{maxBodyBytes: int64(len(body))})
	assertJSON(t, h.do(http.MethodPost, "/v1/functions", body), http.StatusCreated, echoResponse)
}

func TestUnknownRoute_404JSON(t *testing.T) {
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/"},
		{http.MethodGet, "/v2/functions"},
		{http.MethodGet, "/v1/functions/"},
		{http.MethodPost, "/v1/functions/"},
		{http.MethodGet, "/v1/functions/echo/"},
		{http.MethodPost, "/v1/functions/echo:invoke/"},
		{http.MethodGet, "/v1/functions/echo/replicas/x"},
		{http.MethodGet, "/v1/executions"},
		{http.MethodPost, "/v1/internal/executions/abc"},
		{http.MethodPost, "/v1/internal/executions/abc:finish"},
		{http.MethodGet, "/actuator/health"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			h.registerLocal("echo")
			assertError(t, h.do(tc.method, tc.path, ""), http.StatusNotFound, "404 NOT_FOUND", "")
		})
	}
}

func TestWrongMethod_405JSONWithAllow(t *testing.T) {
	for _, tc := range []struct{ method, path, allow string }{
		{http.MethodDelete, "/v1/functions", "GET, POST"},
		{http.MethodPut, "/v1/functions", "GET, POST"},
		{http.MethodPost, "/v1/functions/echo", "DELETE, GET"},
		{http.MethodPut, "/v1/functions/echo", "DELETE, GET"},
		// The verb segments route POST as well as GET/DELETE of the whole segment.
		{http.MethodPatch, "/v1/functions/echo:invoke", "DELETE, GET, POST"},
		{http.MethodPut, "/v1/functions/echo:invoke", "DELETE, GET, POST"},
		{http.MethodPut, "/v1/functions/echo:enqueue", "DELETE, GET, POST"},
		{http.MethodPut, "/v1/functions/echo:complete", "DELETE, GET"},
		{http.MethodPut, "/v1/functions/echo:invoke:x", "DELETE, GET"},
		{http.MethodPut, "/v1/internal/executions/abc:complete", "POST"},
		{http.MethodGet, "/v1/functions/echo/replicas", "PUT"},
		{http.MethodPost, "/v1/functions/echo/replicas", "PUT"},
		{http.MethodPost, "/v1/executions/abc", "GET"},
		{http.MethodDelete, "/v1/executions/abc", "GET"},
		{http.MethodGet, "/v1/internal/executions/abc:complete", "POST"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			h.registerLocal("echo")
			rec := h.do(tc.method, tc.path, "")
			assertError(t, rec, http.StatusMethodNotAllowed, "405 METHOD_NOT_ALLOWED",
				"Request method '"+tc.method+"' is not supported.")
			if got := rec.Header().Get("Allow"); got != tc.allow {
				t.Errorf("Allow = %q, want %q", got, tc.allow)
			}
		})
	}
}

// panickyFunctions is a FunctionService that fails in every way an unexpected bug can.
type panickyFunctions struct{}

func (panickyFunctions) Register(context.Context, function.Spec) (*registry.Registered, error) {
	panic("nil pointer in provider at 10.0.0.1")
}

func (panickyFunctions) Remove(context.Context, string) (*registry.Registered, error) {
	return nil, errors.New("etcd: permission denied for user admin")
}

func (panickyFunctions) SetReplicas(context.Context, string, int) (int, error) {
	panic(errors.New("index out of range"))
}

func (panickyFunctions) Get(string) (*registry.Registered, bool) { panic("corrupted map") }
func (panickyFunctions) List() []*registry.Registered            { panic("corrupted map") }

func TestInternalError_NeverLeaksInternals(t *testing.T) {
	h := newHarness(t, harnessOpts{functions: panickyFunctions{}})
	for _, tc := range []struct{ method, path, body string }{
		{http.MethodPost, "/v1/functions", `{"name":"fn","image":"i"}`},
		{http.MethodDelete, "/v1/functions/fn", ""},
		{http.MethodPut, "/v1/functions/fn/replicas", `{"replicas":1}`},
		{http.MethodGet, "/v1/functions/fn", ""},
		{http.MethodGet, "/v1/functions", ""},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			assertJSON(t, h.do(tc.method, tc.path, tc.body), http.StatusInternalServerError, internalErrorBody)
		})
	}
}

// A handler aborted with http.ErrAbortHandler keeps net/http's semantics (the connection is
// dropped) instead of being turned into a 500.
func TestInternalError_AbortHandlerPanicPropagates(t *testing.T) {
	h := newHarness(t, harnessOpts{functions: abortingFunctions{}})
	defer func() {
		if v := recover(); v != http.ErrAbortHandler {
			t.Fatalf("recovered %v, want http.ErrAbortHandler", v)
		}
	}()
	h.do(http.MethodGet, "/v1/functions", "")
	t.Fatal("ErrAbortHandler was swallowed")
}

type abortingFunctions struct{ panickyFunctions }

func (abortingFunctions) List() []*registry.Registered { panic(http.ErrAbortHandler) }

// Unclean paths are unknown routes, not redirects to their cleaned form.
func TestUnknownRoute_UncleanPathsAreNotRedirected(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.registerLocal("echo")
	management, _ := newManagement(t, "", nil)
	for _, tc := range []struct {
		handler      http.Handler
		method, path string
	}{
		{h.handler, http.MethodGet, "/v1//functions"},
		{h.handler, http.MethodGet, "/v1/functions/./echo"},
		{h.handler, http.MethodGet, "/v1/functions/x/../echo"},
		{h.handler, http.MethodPost, "//v1/functions/echo:invoke"},
		{h.handler, http.MethodPost, "/v1/functions/x/..//echo:invoke/"},
		{management, http.MethodGet, "/actuator//health"},
		{management, http.MethodGet, "/actuator/./health"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			rec := serve(t, tc.handler, tc.method, tc.path, `{"input":1}`)
			assertError(t, rec, http.StatusNotFound, "404 NOT_FOUND", "")
			if loc := rec.Header().Get("Location"); loc != "" {
				t.Errorf("Location = %q, want no redirect", loc)
			}
		})
	}
	if n := h.store.Len(); n != 0 {
		t.Errorf("%d executions created, want none", n)
	}
}

// A failure.Internal error (a Kubernetes API error, say) is the reference's untranslated
// exception: 500 with the generic body, never a 503 with its text and never a degradation to
// POOL, even when the spec has an endpointUrl. Its message (which names cluster objects and
// namespaces) is not shown.
func TestInternalKind_Is500WithoutDetailsAndNeverDegrades(t *testing.T) {
	apiErr := failure.Internalf(errors.New("admission webhook denied"),
		"Kubernetes API error: cannot create HorizontalPodAutoscaler 'fn-fn' in namespace 'secret-ns': minReplicas must be >= 1")
	for name, endpoint := range map[string]string{"register": "", "register with endpointUrl": `"endpointUrl":"http://ext:8080/invoke",`} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{providers: toProviders(&fakeProvider{id: "k8s", provisionErr: apiErr})})
			rec := h.do(http.MethodPost, "/v1/functions",
				`{"name":"fn","image":"i",`+endpoint+`"scalingConfig":{"strategy":"HPA","minReplicas":0,"maxReplicas":2}}`)
			assertJSON(t, rec, http.StatusInternalServerError, internalErrorBody)
			if strings.Contains(rec.Body.String(), "secret-ns") {
				t.Fatalf("body leaks the error: %s", rec.Body.String())
			}
			if got := h.functions.List(); len(got) != 0 {
				t.Fatalf("registered %+v despite the error (degraded?)", got[0].Meta)
			}
		})
	}

	t.Run("replicas", func(t *testing.T) {
		p := &fakeProvider{id: "k8s", endpoint: "http://fn/"}
		h := newHarness(t, harnessOpts{providers: toProviders(p)})
		h.register(`{"name":"fn","image":"i"}`)
		p.setReplicasErr = fmt.Errorf("scale: %w", apiErr)
		assertJSON(t, h.do(http.MethodPut, "/v1/functions/fn/replicas", `{"replicas":2}`),
			http.StatusInternalServerError, internalErrorBody)
	})
	t.Run("delete", func(t *testing.T) {
		p := &fakeProvider{id: "k8s", endpoint: "http://fn/"}
		h := newHarness(t, harnessOpts{providers: toProviders(p)})
		h.register(`{"name":"fn","image":"i"}`)
		p.deprovisionErr = apiErr
		assertJSON(t, h.do(http.MethodDelete, "/v1/functions/fn", ""), http.StatusInternalServerError, internalErrorBody)
		if _, ok := h.functions.Get("fn"); !ok {
			t.Fatal("function not restored after the failed removal")
		}
	})
}
