package fnruntime_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nanofaas/control-plane/fnruntime"
)

// quiet discards runtime logs in tests.
func quiet() fnruntime.Option { return fnruntime.WithLogger(slog.New(slog.DiscardHandler)) }

// newRuntime builds a Runtime closed at the end of the test.
func newRuntime(t *testing.T, h fnruntime.Handler, cfg fnruntime.Config, opts ...fnruntime.Option) *fnruntime.Runtime {
	t.Helper()
	rt := fnruntime.New(h, cfg, append([]fnruntime.Option{quiet()}, opts...)...)
	t.Cleanup(func() { _ = rt.Close(context.Background()) })
	return rt
}

// invoke sends POST /invoke with body and headers (name, value pairs) straight to rt.
func invoke(rt http.Handler, body string, headers ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/invoke", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	rt.ServeHTTP(rec, req)
	return rec
}

func echo(_ context.Context, req fnruntime.Request) (any, error) { return req.Input, nil }

// callback is one request seen by a receiver.
type callback struct {
	Path   string
	Header http.Header
	Body   map[string]any
}

// receiver is a real HTTP callback endpoint. respond picks the reaction to the n-th (1-based)
// request: a status code, or 0 to cut the connection (a network error).
type receiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	calls   []callback
	respond func(n int, r *http.Request) int
	got     chan struct{} // one token per request, never blocks (big buffer)
}

func newReceiver(t *testing.T, respond func(n int, r *http.Request) int) *receiver {
	t.Helper()
	rc := &receiver{respond: respond, got: make(chan struct{}, 1024)}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	_ = json.Unmarshal(raw, &body)
	rc.mu.Lock()
	rc.calls = append(rc.calls, callback{Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
	n := len(rc.calls)
	rc.mu.Unlock()
	rc.got <- struct{}{}
	status := http.StatusNoContent
	if rc.respond != nil {
		status = rc.respond(n, r)
	}
	if status == 0 {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return
			}
		}
	}
	w.WriteHeader(status)
}

func (rc *receiver) base() string { return rc.srv.URL + "/v1/internal/executions" }

func (rc *receiver) snapshot() []callback {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]callback(nil), rc.calls...)
}

// waitCalls waits until the receiver has seen n requests.
func (rc *receiver) waitCalls(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-rc.got:
		case <-time.After(5 * time.Second):
			t.Fatalf("timed out waiting for callback; got %d, want %d", len(rc.snapshot()), n)
		}
	}
}

// fastRetries makes callback retries near-instant.
func fastRetries() fnruntime.Option {
	return fnruntime.WithCallbackRetryDelays(time.Millisecond, time.Millisecond)
}

func decodeJSON(t *testing.T, raw []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("body %q is not JSON: %v", raw, err)
	}
	return v
}
