package api_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/nanofaas/control-plane/internal/api"
	"github.com/nanofaas/control-plane/internal/registry"
)

// recordingFunctions is the real registry service, recording the names handlers look up.
type recordingFunctions struct {
	*registry.Service
	mu    sync.Mutex
	names []string
}

func (f *recordingFunctions) Get(name string) (*registry.Registered, bool) {
	f.record(name)
	return f.Service.Get(name)
}

func (f *recordingFunctions) Remove(ctx context.Context, name string) (*registry.Registered, error) {
	f.record(name)
	return f.Service.Remove(ctx, name)
}

func (f *recordingFunctions) record(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.names = append(f.names, name)
}

func (f *recordingFunctions) last() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.names) == 0 {
		return ""
	}
	return f.names[len(f.names)-1]
}

func TestRouting_VerbSuffixOnlyForPost(t *testing.T) {
	shared := registry.New()
	backing := newHarness(t, harnessOpts{registry: shared})
	rf := &recordingFunctions{Service: backing.functions}
	h := newHarness(t, harnessOpts{registry: shared, functions: rf})
	h.registerLocal("echo")

	tests := []struct {
		method, path string
		status       int
		lookedUp     string // name given to the function service ("" = not consulted)
	}{
		// GET and DELETE take the whole segment as the name, like Spring's `(.*):invoke`
		// pattern that only POST mappings use.
		{http.MethodGet, "/v1/functions/echo:invoke", http.StatusNotFound, "echo:invoke"},
		{http.MethodGet, "/v1/functions/echo:enqueue", http.StatusNotFound, "echo:enqueue"},
		{http.MethodDelete, "/v1/functions/echo:invoke", http.StatusNotFound, "echo:invoke"},
		{http.MethodGet, "/v1/functions/echo", http.StatusOK, "echo"},
		{http.MethodHead, "/v1/functions/echo", http.StatusOK, "echo"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			rec := h.do(tc.method, tc.path, "")
			assertStatus(t, rec, tc.status)
			if tc.status == http.StatusNotFound && rec.Body.Len() != 0 {
				t.Errorf("body = %q, want empty", rec.Body)
			}
			if got := rf.last(); got != tc.lookedUp {
				t.Errorf("looked up %q, want %q", got, tc.lookedUp)
			}
		})
	}
	// echo survived the DELETE of "echo:invoke".
	assertStatus(t, h.do(http.MethodGet, "/v1/functions/echo", ""), http.StatusOK)
}

func TestRouting_NamesWithDotsAndDashesInvoke(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	for _, name := range []string{"my.fn-1", "a_b", "A.b.c-d_e"} {
		t.Run(name, func(t *testing.T) {
			h.registerLocal(name)
			rec := h.do(http.MethodPost, "/v1/functions/"+name+":invoke", `{"input":"hi"}`)
			assertStatus(t, rec, http.StatusOK)
			if got := decodeInto[invocationResponse](t, rec); got.Status != "success" || string(got.Output) != `"hi"` {
				t.Errorf("response = %+v", got)
			}
			assertStatus(t, h.do(http.MethodGet, "/v1/functions/"+name, ""), http.StatusOK)
		})
	}
}

// The verb is the text after the last colon, so "a:b:invoke" invokes "a:b" (an unknown name).
func TestRouting_VerbIsTheLastColonSuffix(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.registerLocal("b")
	assertEmpty(t, h.do(http.MethodPost, "/v1/functions/a:b:invoke", `{"input":1}`), http.StatusNotFound)
	assertEmpty(t, h.do(http.MethodPost, "/v1/functions/b:invoke:invoke", `{"input":1}`), http.StatusNotFound)
}

func TestRouting_ExtraModuleRoutesAreServed(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	handler := newAPIHandlerWithRoute(h, "/v1/admin/runtime-config", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	})
	assertStatus(t, serve(t, handler, http.MethodGet, "/v1/admin/runtime-config", ""), http.StatusTeapot)
	rec := serve(t, handler, http.MethodDelete, "/v1/admin/runtime-config", "")
	assertError(t, rec, http.StatusMethodNotAllowed, "405 METHOD_NOT_ALLOWED", "")
	if got := rec.Header().Get("Allow"); got != "GET" {
		t.Errorf("Allow = %q, want GET", got)
	}
}

func newAPIHandlerWithRoute(h *harness, pattern string, get http.HandlerFunc) http.Handler {
	return api.NewAPIHandler(api.Deps{
		Functions: h.functions, Invocations: h.invocations,
		Routes: []api.Route{{Pattern: pattern, Methods: map[string]http.HandlerFunc{http.MethodGet: get}}},
	})
}
