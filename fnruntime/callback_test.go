package fnruntime_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nanofaas/control-plane/fnruntime"
)

func TestCallback_PostsResultToExecutionURLWithHeaders(t *testing.T) {
	rc := newReceiver(t, nil)
	rt := newRuntime(t, func(context.Context, fnruntime.Request) (any, error) {
		return map[string]int{"wordCount": 2}, nil
	}, fnruntime.Config{CallbackURL: rc.base()})

	invoke(rt, `{"input":"a b"}`, "X-Execution-Id", "exec-1", "X-Trace-Id", "trace-1", "X-Dispatch-Attempt", "2")
	rc.waitCalls(t, 1)

	got := rc.snapshot()[0]
	if got.Path != "/v1/internal/executions/exec-1:complete" {
		t.Errorf("path = %q", got.Path)
	}
	for h, want := range map[string]string{"Content-Type": "application/json", "X-Trace-Id": "trace-1", "X-Dispatch-Attempt": "2"} {
		if v := got.Header.Get(h); v != want {
			t.Errorf("%s = %q, want %q", h, v, want)
		}
	}
	want := map[string]any{"success": true, "output": map[string]any{"wordCount": 2.0}, "error": nil}
	if !reflect.DeepEqual(got.Body, want) {
		t.Errorf("body = %v, want %v", got.Body, want)
	}
}

func TestCallback_OmitsTraceAndAttemptHeadersWhenUnknown(t *testing.T) {
	rc := newReceiver(t, nil)
	rt := newRuntime(t, echo, fnruntime.Config{CallbackURL: rc.base()})

	invoke(rt, `{"input":null}`, "X-Execution-Id", "e")
	rc.waitCalls(t, 1)

	h := rc.snapshot()[0].Header
	if _, ok := h["X-Trace-Id"]; ok {
		t.Errorf("X-Trace-Id sent: %q", h.Get("X-Trace-Id"))
	}
	if _, ok := h["X-Dispatch-Attempt"]; ok {
		t.Errorf("X-Dispatch-Attempt sent: %q", h.Get("X-Dispatch-Attempt"))
	}
}

func TestCallback_BaseURLIsNormalized(t *testing.T) {
	tests := []struct{ name, suffix string }{
		{"plain", "/v1/internal/executions"},
		{"trailing slashes", "/v1/internal/executions//"},
		{"surrounding spaces", "/v1/internal/executions  "},
		{"stale execution suffix", "/v1/internal/executions/ignored:complete"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newReceiver(t, nil)
			rt := newRuntime(t, echo, fnruntime.Config{CallbackURL: "  " + rc.srv.URL + tt.suffix})
			invoke(rt, `{"input":1}`, "X-Execution-Id", "to-1")
			rc.waitCalls(t, 1)
			if got := rc.snapshot()[0].Path; got != "/v1/internal/executions/to-1:complete" {
				t.Errorf("path = %q", got)
			}
		})
	}
}

// flagWriter records that the response was written (and flushed) before anything else happens.
type flagWriter struct {
	*httptest.ResponseRecorder
	written atomic.Bool
}

func (w *flagWriter) Flush() {
	w.ResponseRecorder.Flush()
	w.written.Store(true)
}

func TestCallback_SentAfterResponseIsWritten(t *testing.T) {
	w := &flagWriter{ResponseRecorder: httptest.NewRecorder()}
	var writtenFirst atomic.Bool
	rc := newReceiver(t, func(int, *http.Request) int {
		writtenFirst.Store(w.written.Load())
		return http.StatusNoContent
	})
	rt := newRuntime(t, echo, fnruntime.Config{CallbackURL: rc.base()})

	req := httptest.NewRequest(http.MethodPost, "/invoke", strings.NewReader(`{"input":1}`))
	req.Header.Set("X-Execution-Id", "e")
	rt.ServeHTTP(w, req)
	if err := rt.Close(context.Background()); err != nil { // drains the callback
		t.Fatal(err)
	}

	if len(rc.snapshot()) != 1 {
		t.Fatalf("got %d callbacks, want 1", len(rc.snapshot()))
	}
	if !writtenFirst.Load() {
		t.Error("callback arrived before the response was written and flushed")
	}
}

func TestCallback_RetryPolicy(t *testing.T) {
	tests := []struct {
		name      string
		responses []int // per attempt; 0 = connection cut
		wantCalls int
	}{
		{"success first time", []int{204}, 1},
		{"5xx then success", []int{503, 500, 204}, 3},
		{"5xx gives up after three attempts", []int{500, 502, 503, 504}, 3},
		{"408 is retried", []int{408, 200}, 2},
		{"429 is retried", []int{429, 204}, 2},
		{"network error is retried", []int{0, 204}, 2},
		{"400 is not retried", []int{400, 204}, 1},
		{"404 is not retried", []int{404, 204}, 1},
		{"3xx counts as delivered", []int{304, 204}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newReceiver(t, func(n int, _ *http.Request) int {
				if n <= len(tt.responses) {
					return tt.responses[n-1]
				}
				return 204
			})
			rt := newRuntime(t, echo, fnruntime.Config{CallbackURL: rc.base()}, fastRetries())

			invoke(rt, `{"input":1}`, "X-Execution-Id", "e", "X-Dispatch-Attempt", "1")
			if err := rt.Close(context.Background()); err != nil {
				t.Fatal(err)
			}

			calls := rc.snapshot()
			if len(calls) != tt.wantCalls {
				t.Fatalf("callback attempts = %d, want %d", len(calls), tt.wantCalls)
			}
			for i, c := range calls {
				if c.Header.Get("X-Dispatch-Attempt") != "1" || c.Path != "/v1/internal/executions/e:complete" {
					t.Errorf("attempt %d: path %q, X-Dispatch-Attempt %q", i+1, c.Path, c.Header.Get("X-Dispatch-Attempt"))
				}
			}
		})
	}
}

func TestCallback_DefaultRetryDelaysAre100And500ms(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the real retry delays (0.6 s)")
	}
	var (
		mu sync.Mutex
		at []time.Time
	)
	rc := newReceiver(t, func(int, *http.Request) int {
		mu.Lock()
		defer mu.Unlock()
		at = append(at, time.Now())
		return 503
	})
	rt := newRuntime(t, echo, fnruntime.Config{CallbackURL: rc.base()})
	invoke(rt, `{"input":1}`, "X-Execution-Id", "e")
	if err := rt.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(at) != 3 {
		t.Fatalf("attempts = %d, want 3", len(at))
	}
	for i, min := range []time.Duration{100 * time.Millisecond, 500 * time.Millisecond} {
		if gap := at[i+1].Sub(at[i]); gap < min || gap > min+400*time.Millisecond {
			t.Errorf("gap before attempt %d = %v, want about %v", i+2, gap, min)
		}
	}
}

func TestCallback_QueueIsBoundedAndDropsOverflow(t *testing.T) {
	gate := make(chan struct{})
	rc := newReceiver(t, func(n int, r *http.Request) int {
		if n == 1 {
			select { // hold the only worker until the test has overflowed the queue
			case <-gate:
			case <-r.Context().Done():
			}
		}
		return 204
	})
	rt := newRuntime(t, echo, fnruntime.Config{CallbackURL: rc.base()}, fnruntime.WithCallbackQueue(1, 1))

	invoke(rt, `{"input":1}`, "X-Execution-Id", "e-1")
	rc.waitCalls(t, 1) // e-1 is in flight, the worker is busy
	for i := 2; i <= 4; i++ {
		rec := invoke(rt, `{"input":1}`, "X-Execution-Id", fmt.Sprintf("e-%d", i))
		if rec.Code != http.StatusOK {
			t.Fatalf("invocation %d: status %d; a full callback queue must not fail invocations", i, rec.Code)
		}
	}
	close(gate)
	if err := rt.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	var paths []string
	for _, c := range rc.snapshot() {
		paths = append(paths, c.Path)
	}
	want := []string{"/v1/internal/executions/e-1:complete", "/v1/internal/executions/e-2:complete"}
	if !reflect.DeepEqual(paths, want) {
		t.Errorf("delivered %v, want %v (e-3, e-4 dropped)", paths, want)
	}
}

func TestClose_DrainsQueuedCallbacks(t *testing.T) {
	rc := newReceiver(t, func(int, *http.Request) int {
		time.Sleep(2 * time.Millisecond) // slow enough that callbacks queue up
		return 204
	})
	rt := newRuntime(t, echo, fnruntime.Config{CallbackURL: rc.base()}, fnruntime.WithCallbackQueue(1, 16))
	for i := range 10 {
		invoke(rt, `{"input":1}`, "X-Execution-Id", fmt.Sprint(i))
	}
	if err := rt.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(rc.snapshot()); n != 10 {
		t.Errorf("delivered %d callbacks before Close returned, want 10", n)
	}
}

func TestClose_DeadlineAbandonsStuckCallbacks(t *testing.T) {
	rc := newReceiver(t, func(_ int, r *http.Request) int {
		<-r.Context().Done() // never answers; released when the runtime gives up
		return 204
	})
	rt := newRuntime(t, echo, fnruntime.Config{CallbackURL: rc.base()}, fnruntime.WithCallbackQueue(1, 8))
	for i := range 3 {
		invoke(rt, `{"input":1}`, "X-Execution-Id", fmt.Sprint(i))
	}
	rc.waitCalls(t, 1)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := rt.Close(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close = %v, want deadline exceeded", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("Close took %v after its deadline", el)
	}
	if n := len(rc.snapshot()); n != 1 {
		t.Errorf("receiver saw %d callbacks, want 1 (the rest abandoned)", n)
	}
}

func TestCallback_DisabledWithoutCallbackURL(t *testing.T) {
	rt := newRuntime(t, echo, fnruntime.Config{})
	if rec := invoke(rt, `{"input":1}`, "X-Execution-Id", "e"); rec.Code != http.StatusOK {
		t.Fatalf("status = %d", rec.Code)
	}
	if err := rt.Close(context.Background()); err != nil {
		t.Errorf("Close = %v", err)
	}
}

func TestCallback_UsesInjectedHTTPClient(t *testing.T) {
	rc := newReceiver(t, nil)
	var used atomic.Int32
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		used.Add(1)
		return http.DefaultTransport.RoundTrip(r)
	})}
	rt := newRuntime(t, echo, fnruntime.Config{CallbackURL: rc.base()}, fnruntime.WithHTTPClient(client))
	invoke(rt, `{"input":1}`, "X-Execution-Id", "e")
	if err := rt.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	if used.Load() != 1 {
		t.Errorf("injected client used %d times, want 1", used.Load())
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
