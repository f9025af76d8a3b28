package fnruntime_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nanofaas/control-plane/fnruntime"
)

func TestConfigFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    fnruntime.Config
		wantErr string
	}{
		{name: "defaults", env: nil,
			want: fnruntime.Config{Port: "8080", Timeout: 30 * time.Second}},
		{name: "all set", env: map[string]string{"PORT": "9090", "HOST": " 127.0.0.1 ", "TIMEOUT_MS": "1500",
			"CALLBACK_URL": " http://cp/v1/internal/executions ", "TRACE_ID": "tr"},
			want: fnruntime.Config{Port: "9090", Host: "127.0.0.1", Timeout: 1500 * time.Millisecond,
				CallbackURL: "http://cp/v1/internal/executions", TraceID: "tr"}},
		{name: "timeout not a number", env: map[string]string{"TIMEOUT_MS": "2s"}, wantErr: "TIMEOUT_MS"},
		{name: "timeout zero", env: map[string]string{"TIMEOUT_MS": "0"}, wantErr: "TIMEOUT_MS"},
		{name: "bad port", env: map[string]string{"PORT": "http"}, wantErr: "PORT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := fnruntime.ConfigFromEnv(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want mention of %s", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestInvoke_SuccessReturnsOutputAsJSON(t *testing.T) {
	rt := newRuntime(t, func(context.Context, fnruntime.Request) (any, error) {
		return map[string]any{"upper": "HELLO", "n": 2}, nil
	}, fnruntime.Config{Timeout: time.Second})

	rec := invoke(rt, `{"input":"hello"}`, "X-Execution-Id", "e-1")

	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, body %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	want := map[string]any{"upper": "HELLO", "n": 2.0}
	if got := decodeJSON(t, rec.Body.Bytes()); !reflect.DeepEqual(got, want) {
		t.Errorf("body = %v, want %v", got, want)
	}
}

func TestInvoke_HandlerSeesRequestFields(t *testing.T) {
	tests := []struct {
		name    string
		cfg     fnruntime.Config
		body    string
		headers []string
		want    fnruntime.Request
	}{
		{
			name:    "all headers",
			body:    `{"input":{"a":[1,2]},"metadata":{"k":"v"}}`,
			headers: []string{"X-Execution-Id", "e-1", "X-Trace-Id", "t-1", "X-Dispatch-Attempt", "3"},
			want: fnruntime.Request{Input: json.RawMessage(`{"a":[1,2]}`), Metadata: map[string]string{"k": "v"},
				ExecutionID: "e-1", TraceID: "t-1", Attempt: 3},
		},
		{
			name:    "trace id falls back to TRACE_ID, absent input is null",
			cfg:     fnruntime.Config{TraceID: "env-trace"},
			body:    `{"metadata":null}`,
			headers: []string{"X-Execution-Id", "e-2", "X-Dispatch-Attempt", "x"},
			want:    fnruntime.Request{Input: json.RawMessage(`null`), ExecutionID: "e-2", TraceID: "env-trace"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got fnruntime.Request
			rt := newRuntime(t, func(_ context.Context, req fnruntime.Request) (any, error) {
				got = req
				return nil, nil
			}, tt.cfg)
			if rec := invoke(rt, tt.body, tt.headers...); rec.Code != http.StatusOK {
				t.Fatalf("status = %d, body %s", rec.Code, rec.Body)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("request = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestInvoke_NilOutputIsJSONNull(t *testing.T) {
	rt := newRuntime(t, func(context.Context, fnruntime.Request) (any, error) { return nil, nil }, fnruntime.Config{})
	rec := invoke(rt, `{"input":1}`, "X-Execution-Id", "e")
	if rec.Code != http.StatusOK || rec.Body.String() != "null" {
		t.Fatalf("got %d %q, want 200 null", rec.Code, rec.Body)
	}
}

func TestInvoke_BadRequestsAreRejectedBeforeTheHandler(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		headers    []string
		wantStatus int
		wantError  string
	}{
		{"missing execution id", `{"input":1}`, nil, 400, "X-Execution-Id header is required"},
		{"malformed JSON", `{"input":`, []string{"X-Execution-Id", "e"}, 400, "Malformed request body"},
		{"empty body", ``, []string{"X-Execution-Id", "e"}, 400, "Malformed request body"},
		{"non-string metadata", `{"input":1,"metadata":{"k":1}}`, []string{"X-Execution-Id", "e"}, 400, "Malformed request body"},
		{"body too large", `{"input":"` + strings.Repeat("x", 16<<20) + `"}`, []string{"X-Execution-Id", "e"}, 413, "Request body too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var called atomic.Bool
			rt := newRuntime(t, func(context.Context, fnruntime.Request) (any, error) {
				called.Store(true)
				return "ok", nil
			}, fnruntime.Config{})
			rec := invoke(rt, tt.body, tt.headers...)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d (body %s)", rec.Code, tt.wantStatus, rec.Body)
			}
			want := map[string]any{"error": tt.wantError}
			if got := decodeJSON(t, rec.Body.Bytes()); !reflect.DeepEqual(got, want) {
				t.Errorf("body = %v, want %v", got, want)
			}
			if called.Load() {
				t.Error("handler was called")
			}
			if rec.Header().Get("X-Cold-Start") != "" {
				t.Error("a rejected request reported a cold start")
			}
		})
	}
}

func TestInvoke_ColdStartHeadersOnlyOnFirstInvocation(t *testing.T) {
	var now atomic.Int64 // unix millis of a fake clock
	now.Store(1_000_000)
	clock := func() time.Time { return time.UnixMilli(now.Load()) }
	rt := newRuntime(t, echo, fnruntime.Config{}, fnruntime.WithClock(clock))

	now.Add(1500)    // the first request arrives 1.5 s after start
	invoke(rt, `{}`) // rejected (no id): does not count as the first invocation
	first := invoke(rt, `{"input":1}`, "X-Execution-Id", "e-1")
	now.Add(10)
	second := invoke(rt, `{"input":1}`, "X-Execution-Id", "e-2")

	if got := first.Header().Get("X-Cold-Start"); got != "true" {
		t.Errorf("first X-Cold-Start = %q, want true", got)
	}
	if got := first.Header().Get("X-Init-Duration-Ms"); got != "1500" {
		t.Errorf("first X-Init-Duration-Ms = %q, want 1500", got)
	}
	if second.Header().Get("X-Cold-Start") != "" || second.Header().Get("X-Init-Duration-Ms") != "" {
		t.Errorf("second invocation has cold-start headers: %v", second.Header())
	}
}

func TestInvoke_FailuresMapToStatusAndCallbackCode(t *testing.T) {
	tests := []struct {
		name        string
		handler     fnruntime.Handler
		wantStatus  int
		wantBody    string
		wantCode    string
		wantMessage string
	}{
		{
			name:       "handler error",
			handler:    func(context.Context, fnruntime.Request) (any, error) { return nil, errors.New("boom") },
			wantStatus: 500, wantBody: "boom", wantCode: "HANDLER_ERROR", wantMessage: "boom",
		},
		{
			name:       "handler panic",
			handler:    func(context.Context, fnruntime.Request) (any, error) { panic("kaput") },
			wantStatus: 500, wantBody: "handler panic: kaput", wantCode: "HANDLER_ERROR", wantMessage: "handler panic: kaput",
		},
		{
			name: "handler timeout",
			handler: func(ctx context.Context, _ fnruntime.Request) (any, error) {
				<-ctx.Done()
				return nil, ctx.Err()
			},
			wantStatus: 504, wantBody: "Handler timed out", wantCode: "HANDLER_TIMEOUT",
			wantMessage: "Handler exceeded configured timeout",
		},
		{
			name:       "unserializable output",
			handler:    func(context.Context, fnruntime.Request) (any, error) { return math.Inf(1), nil },
			wantStatus: 500, wantCode: "OUTPUT_SERIALIZATION_ERROR",
			wantBody:    "Output serialization failed: json: unsupported value: +Inf",
			wantMessage: "Output serialization failed: json: unsupported value: +Inf",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newReceiver(t, nil)
			rt := newRuntime(t, tt.handler, fnruntime.Config{Timeout: 20 * time.Millisecond, CallbackURL: rc.base()})

			rec := invoke(rt, `{"input":1}`, "X-Execution-Id", "e-1")

			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d (body %s)", rec.Code, tt.wantStatus, rec.Body)
			}
			if got, want := decodeJSON(t, rec.Body.Bytes()), map[string]any{"error": tt.wantBody}; !reflect.DeepEqual(got, want) {
				t.Errorf("body = %v, want %v", got, want)
			}
			rc.waitCalls(t, 1)
			want := map[string]any{"success": false, "output": nil,
				"error": map[string]any{"code": tt.wantCode, "message": tt.wantMessage}}
			if got := rc.snapshot()[0].Body; !reflect.DeepEqual(got, want) {
				t.Errorf("callback body = %v, want %v", got, want)
			}
		})
	}
}

func TestInvoke_TimeoutAnswersEvenWhenHandlerIgnoresContext(t *testing.T) {
	release := make(chan struct{})
	rt := newRuntime(t, func(context.Context, fnruntime.Request) (any, error) {
		<-release // deliberately deaf to ctx
		return "late", nil
	}, fnruntime.Config{Timeout: 10 * time.Millisecond})

	start := time.Now()
	rec := invoke(rt, `{"input":1}`, "X-Execution-Id", "e")
	if rec.Code != http.StatusGatewayTimeout {
		t.Fatalf("status = %d, want 504", rec.Code)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("504 took %v", el)
	}

	// Close waits for the abandoned handler: it gives up at its deadline while the handler
	// hangs, and succeeds once the handler returns.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := rt.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close with a stuck handler = %v, want deadline exceeded", err)
	}
	close(release)
}

func TestInvoke_CallerGoneSendsNoCallback(t *testing.T) {
	rc := newReceiver(t, nil)
	started := make(chan struct{})
	rt := newRuntime(t, func(ctx context.Context, _ fnruntime.Request) (any, error) {
		close(started)
		<-ctx.Done()
		return nil, ctx.Err()
	}, fnruntime.Config{Timeout: time.Minute, CallbackURL: rc.base()})

	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/invoke", strings.NewReader(`{"input":1}`))
	req.Header.Set("X-Execution-Id", "gone")
	go func() { <-started; cancel() }()
	rec := httptest.NewRecorder()
	rt.ServeHTTP(rec, req)

	if rec.Code != http.StatusInternalServerError {
		t.Errorf("status = %d, want 500", rec.Code)
	}
	if err := rt.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(rc.snapshot()); n != 0 {
		t.Errorf("got %d callbacks, want none", n)
	}
}

func TestRoutes(t *testing.T) {
	rt := newRuntime(t, echo, fnruntime.Config{})
	tests := []struct {
		method, path string
		wantStatus   int
		wantBody     string
		wantAllow    string
	}{
		{"GET", "/health", 200, `{"status":"ok"}`, ""},
		{"HEAD", "/health", 200, `{"status":"ok"}`, ""},
		{"GET", "/invoke", 405, `{"error":"Method not allowed"}`, "POST"},
		{"GET", "/nope", 404, `{"error":"Not found"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			rt.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			if rec.Code != tt.wantStatus || rec.Body.String() != tt.wantBody {
				t.Errorf("got %d %s, want %d %s", rec.Code, rec.Body, tt.wantStatus, tt.wantBody)
			}
			if got := rec.Header().Get("Allow"); got != tt.wantAllow {
				t.Errorf("Allow = %q, want %q", got, tt.wantAllow)
			}
		})
	}
}

func TestInvoke_AfterCloseReturns503(t *testing.T) {
	rt := newRuntime(t, echo, fnruntime.Config{})
	if err := rt.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rec := invoke(rt, `{"input":1}`, "X-Execution-Id", "e"); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("status = %d, want 503", rec.Code)
	}
}

func TestRequestDecode(t *testing.T) {
	var in struct{ Text string }
	req := fnruntime.Request{Input: json.RawMessage(`{"Text":"hi"}`)}
	if err := req.Decode(&in); err != nil || in.Text != "hi" {
		t.Fatalf("Decode = %v, %+v", err, in)
	}
}
