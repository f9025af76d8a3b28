package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nanofaas/control-plane/internal/execution"
)

func mustDispatch(t *testing.T, p *Pool, task *execution.Task) execution.DispatchResult {
	t.Helper()
	dr, err := p.Dispatch(context.Background(), task)
	if err != nil {
		t.Fatalf("Dispatch returned error %v, want a result", err)
	}
	return dr
}

func wantError(t *testing.T, dr execution.DispatchResult, code, message string) {
	t.Helper()
	if dr.Result.Success || dr.Result.Error == nil {
		t.Fatalf("result = %+v, want error %s", dr.Result, code)
	}
	if dr.Result.Error.Code != code || dr.Result.Error.Message != message {
		t.Fatalf("error = %+v, want {%s %q}", *dr.Result.Error, code, message)
	}
}

func TestPool_JSONSuccessPassesOutputThroughWarm(t *testing.T) {
	const out = `{"message": "ok", "n": [1, 2.50, "\u00e9"], "nested": {"a": null}}`
	srv, p := newRuntime(t, 0, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, "  "+out+"\n")
	})
	dr := mustDispatch(t, p, newTask(srv.URL+"/invoke", 5000))
	if !dr.Result.Success || dr.Result.Error != nil {
		t.Fatalf("result = %+v, want success", dr.Result)
	}
	if string(dr.Result.Output) != out {
		t.Fatalf("output = %s, want %s", dr.Result.Output, out)
	}
	if dr.ColdStart || dr.InitDurationMs != nil {
		t.Fatalf("cold = %v init = %v, want warm", dr.ColdStart, dr.InitDurationMs)
	}
}

func TestPool_SendsInvokeRequestToEndpointAsStored(t *testing.T) {
	type seen struct {
		method, uri, body string
		header            http.Header
	}
	tests := []struct {
		name       string
		attempt    int
		key        string
		trace      *string
		request    *execution.Request
		wantBody   string
		wantKey    bool
		wantTrace  bool
		traceValue string
	}{
		{
			name: "first attempt with key and trace", attempt: 1, key: "idem-1", trace: ptr("trace-1"),
			request:  &execution.Request{Input: []byte(`{"a":[1,2]}`), Metadata: map[string]string{"k": "v\"q"}},
			wantBody: `{"input":{"a":[1,2]},"metadata":{"k":"v\"q"}}`, wantKey: true, wantTrace: true, traceValue: "trace-1",
		},
		{
			name: "retry without key and trace", attempt: 2,
			request:  &execution.Request{Input: []byte(`"text"`)},
			wantBody: `{"input":"text","metadata":null}`,
		},
		{
			name: "empty trace id is forwarded empty", attempt: 3, trace: ptr(""),
			request:  &execution.Request{Input: []byte(`42`), Metadata: map[string]string{}},
			wantBody: `{"input":42,"metadata":{}}`, wantTrace: true,
		},
		{
			name: "missing input is null", attempt: 1, request: &execution.Request{},
			wantBody: `{"input":null,"metadata":null}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan seen, 1)
			srv, p := newRuntime(t, 0, func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				got <- seen{method: r.Method, uri: r.RequestURI, body: string(b), header: r.Header.Clone()}
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, "{}")
			})
			task := newTask(srv.URL+"/fn/invoke?x=1", 5000)
			task.Attempt, task.IdempotencyKey, task.TraceID, task.Request = tc.attempt, tc.key, tc.trace, tc.request
			mustDispatch(t, p, task)
			s := <-got

			if s.method != http.MethodPost || s.uri != "/fn/invoke?x=1" {
				t.Errorf("request line = %s %s, want POST /fn/invoke?x=1", s.method, s.uri)
			}
			if s.body != tc.wantBody {
				t.Errorf("body = %s, want %s", s.body, tc.wantBody)
			}
			if ct := s.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if id := s.header.Get("X-Execution-Id"); id != "exec-1" {
				t.Errorf("X-Execution-Id = %q", id)
			}
			if a := s.header.Get("X-Dispatch-Attempt"); a != strconv.Itoa(tc.attempt) {
				t.Errorf("X-Dispatch-Attempt = %q, want %d", a, tc.attempt)
			}
			if v, ok := s.header["Idempotency-Key"]; ok != tc.wantKey || (ok && v[0] != tc.key) {
				t.Errorf("Idempotency-Key = %q (present %v), want present %v", v, ok, tc.wantKey)
			}
			if v, ok := s.header["X-Trace-Id"]; ok != tc.wantTrace || (ok && v[0] != tc.traceValue) {
				t.Errorf("X-Trace-Id = %q (present %v), want present %v value %q", v, ok, tc.wantTrace, tc.traceValue)
			}
			if ae := s.header.Get("Accept-Encoding"); ae != "" {
				t.Errorf("Accept-Encoding = %q, want none (compression off)", ae)
			}
		})
	}
}

func TestPool_DecodesSuccessBodyByContentType(t *testing.T) {
	tests := []struct {
		name        string
		contentType *string // nil = no Content-Type header at all
		body        string
		wantOutput  string // "" = null output
		wantErr     string // non-empty = POOL_ERROR message (prefix for JSON errors)
	}{
		{name: "text plain becomes a string", contentType: ptr("text/plain;charset=UTF-8"), body: "hello", wantOutput: `"hello"`},
		{name: "text plain is escaped", contentType: ptr("TEXT/PLAIN"), body: "a\"b\\c\n\x01é", wantOutput: `"a\"b\\c\n\u0001é"`},
		{name: "text plain invalid utf8 is replaced", contentType: ptr("text/plain"), body: "a\xffb", wantOutput: `"a\ufffdb"`},
		{name: "text wildcard is text", contentType: ptr("text/*"), body: "{}", wantOutput: `"{}"`},
		{name: "json suffix type is json", contentType: ptr("application/problem+json"), body: `{"a":1}`, wantOutput: `{"a":1}`},
		{name: "json scalar", contentType: ptr("application/json; charset=utf-8"), body: `"str"`, wantOutput: `"str"`},
		{name: "empty json body is null", contentType: ptr("application/json"), body: ""},
		{name: "whitespace-only json body is null", contentType: ptr("application/json"), body: " \n"},
		{name: "whitespace-only text body is a string", contentType: ptr("text/plain"), body: " \n", wantOutput: `" \n"`},
		{name: "empty text body is null", contentType: ptr("text/plain"), body: ""},
		{name: "missing type with json body is json", body: `[1,2,3]`, wantOutput: `[1,2,3]`},
		{name: "missing type with text body is a string", body: `plain words`, wantOutput: `"plain words"`},
		{name: "missing type with empty body is null", body: ""},
		{name: "invalid json is a decoding error", contentType: ptr("application/json"), body: `{"a":`, wantErr: "JSON decoding error: "},
		{name: "html is not supported", contentType: ptr("text/html; charset=UTF-8"), body: "<p>", wantErr: "Content type 'text/html;charset=UTF-8' not supported"},
		{name: "octet stream is not supported", contentType: ptr("application/octet-stream"), body: "xx", wantErr: "Content type 'application/octet-stream' not supported"},
		{name: "garbage type is invalid", contentType: ptr("garbage"), body: "xx", wantErr: `Invalid mime type "garbage"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, p := newRuntime(t, 0, func(w http.ResponseWriter, r *http.Request) {
				if tc.contentType == nil {
					w.Header()["Content-Type"] = nil // suppress net/http content sniffing
				} else {
					w.Header().Set("Content-Type", *tc.contentType)
				}
				w.Header().Set("X-Cold-Start", "true")
				_, _ = io.WriteString(w, tc.body)
			})
			dr := mustDispatch(t, p, newTask(srv.URL, 5000))
			if tc.wantErr != "" {
				if dr.Result.Success || dr.Result.Error == nil || dr.Result.Error.Code != CodePoolError ||
					!strings.HasPrefix(dr.Result.Error.Message, tc.wantErr) {
					t.Fatalf("result = %+v, want POOL_ERROR %q", dr.Result, tc.wantErr)
				}
				if dr.ColdStart {
					t.Fatal("decoding failures must be reported warm, as the reference does")
				}
				return
			}
			if !dr.Result.Success {
				t.Fatalf("result = %+v (%v), want success", dr.Result, dr.Result.Error)
			}
			if tc.wantOutput == "" {
				if dr.Result.Output != nil {
					t.Fatalf("output = %s, want null", dr.Result.Output)
				}
			} else {
				if string(dr.Result.Output) != tc.wantOutput {
					t.Fatalf("output = %s, want %s", dr.Result.Output, tc.wantOutput)
				}
				if !json.Valid(dr.Result.Output) {
					t.Fatalf("output %s is not valid JSON", dr.Result.Output)
				}
			}
			if !dr.ColdStart {
				t.Fatal("cold-start header lost on a decoded success")
			}
		})
	}
}

func TestPool_ReadsColdStartHeadersOnAnyStatus(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		cold     string
		init     string
		wantCold bool
		wantInit *int64
	}{
		{name: "true with duration", status: 200, cold: "true", init: "250", wantCold: true, wantInit: ptr(int64(250))},
		{name: "upper-case TRUE", status: 200, cold: "TRUE", init: "7", wantCold: true, wantInit: ptr(int64(7))},
		{name: "absent headers are warm", status: 200},
		{name: "false is warm", status: 200, cold: "false", init: "10", wantInit: ptr(int64(10))},
		{name: "yes is not true", status: 200, cold: "yes"},
		{name: "invalid duration is nil", status: 200, cold: "true", init: "12ms", wantCold: true},
		{name: "duration beyond int64 is nil", status: 200, cold: "true", init: "99999999999999999999", wantCold: true},
		{name: "non-2xx still carries cold start", status: 500, cold: "True", init: "30", wantCold: true, wantInit: ptr(int64(30))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, p := newRuntime(t, 0, func(w http.ResponseWriter, r *http.Request) {
				if tc.cold != "" {
					w.Header().Set("X-Cold-Start", tc.cold)
				}
				if tc.init != "" {
					w.Header().Set("X-Init-Duration-Ms", tc.init)
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, `{"ok":true}`)
			})
			dr := mustDispatch(t, p, newTask(srv.URL, 5000))
			if dr.ColdStart != tc.wantCold {
				t.Errorf("ColdStart = %v, want %v", dr.ColdStart, tc.wantCold)
			}
			switch {
			case tc.wantInit == nil && dr.InitDurationMs != nil:
				t.Errorf("InitDurationMs = %d, want nil", *dr.InitDurationMs)
			case tc.wantInit != nil && (dr.InitDurationMs == nil || *dr.InitDurationMs != *tc.wantInit):
				t.Errorf("InitDurationMs = %v, want %d", dr.InitDurationMs, *tc.wantInit)
			}
		})
	}
}

func TestPool_SlowFunctionBeyondSpecTimeoutIsPoolTimeout(t *testing.T) {
	tests := []struct {
		name      string
		partFirst bool // send headers and part of the body before stalling
	}{
		{name: "slow headers"},
		{name: "slow body", partFirst: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, p := newRuntime(t, 0, func(w http.ResponseWriter, r *http.Request) {
				// Consuming the body lets net/http notice the client hanging up.
				_, _ = io.Copy(io.Discard, r.Body)
				if tc.partFirst {
					w.Header().Set("Content-Type", "application/json")
					w.Header().Set("X-Cold-Start", "true")
					_, _ = io.WriteString(w, `{"partial":`)
					w.(http.Flusher).Flush()
				}
				select { // stall until the control plane gives up
				case <-r.Context().Done():
				case <-time.After(10 * time.Second):
				}
			})
			start := time.Now()
			dr := mustDispatch(t, p, newTask(srv.URL, 200))
			elapsed := time.Since(start)
			wantError(t, dr, CodePoolTimeout, "Pool request timed out after 200ms")
			if dr.ColdStart {
				t.Error("timeout must be reported warm")
			}
			if elapsed < 200*time.Millisecond || elapsed > 3*time.Second {
				t.Errorf("took %v, want about 200ms", elapsed)
			}
		})
	}
}

// A spec without a positive timeoutMs is bounded by read-timeout-ms (WithDefaultTimeout), and
// the spec's own timeout wins over it.
func TestPool_DefaultTimeoutBoundsSpecsWithoutOne(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	client := NewHTTPClient(ClientConfig{})
	defer srv.Close()
	defer client.CloseIdleConnections()
	p := NewPool(client, 0, WithDefaultTimeout(150*time.Millisecond))

	start := time.Now()
	dr := mustDispatch(t, p, newTask(srv.URL, 0))
	wantError(t, dr, CodePoolTimeout, "Pool request timed out after 150ms")
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Errorf("took %v, want about 150ms", elapsed)
	}

	dr = mustDispatch(t, p, newTask(srv.URL, 50))
	wantError(t, dr, CodePoolTimeout, "Pool request timed out after 50ms")
}

func TestPool_Non2xxIsPoolErrorWithBodyOrStatus(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		wantMsg string
	}{
		{name: "500 with body", status: 500, body: `{"error":"boom"}`, wantMsg: `{"error":"boom"}`},
		{name: "500 empty", status: 500, wantMsg: "500 INTERNAL_SERVER_ERROR"},
		{name: "502 empty", status: 502, wantMsg: "502 BAD_GATEWAY"},
		{name: "404 empty", status: 404, wantMsg: "404 NOT_FOUND"},
		{name: "413 empty", status: 413, wantMsg: "413 PAYLOAD_TOO_LARGE"},
		{name: "unknown code empty", status: 599, wantMsg: "599"},
		{name: "redirect is not followed", status: 302, wantMsg: "302 FOUND"},
		{name: "400 text body", status: 400, body: "bad input", wantMsg: "bad input"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var hits atomic.Int32
			srv, p := newRuntime(t, 0, func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				if tc.status == 302 {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			})
			dr := mustDispatch(t, p, newTask(srv.URL+"/invoke", 5000))
			wantError(t, dr, CodePoolError, tc.wantMsg)
			if n := hits.Load(); n != 1 {
				t.Errorf("runtime hit %d times, want 1", n)
			}
		})
	}
}

func TestPool_BodyOverLimitIsPoolError(t *testing.T) {
	const limit = 1024
	tests := []struct {
		name    string
		size    int
		chunked bool
		wantOK  bool
	}{
		{name: "exactly the limit succeeds", size: limit, wantOK: true},
		{name: "over the limit with content length", size: limit + 1},
		{name: "over the limit chunked", size: 4 * limit, chunked: true},
		{name: "far over the limit chunked", size: 1 << 20, chunked: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, p := newRuntime(t, limit, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				body := strings.Repeat("a", tc.size)
				if tc.chunked {
					_, _ = io.WriteString(w, body[:10])
					w.(http.Flusher).Flush()
					_, _ = io.WriteString(w, body[10:])
					return
				}
				w.Header().Set("Content-Length", strconv.Itoa(tc.size))
				_, _ = io.WriteString(w, body)
			})
			dr := mustDispatch(t, p, newTask(srv.URL, 5000))
			if tc.wantOK {
				if !dr.Result.Success || len(dr.Result.Output) != limit+2 {
					t.Fatalf("result = %v / %d bytes, want a %d-char string", dr.Result.Error, len(dr.Result.Output), limit)
				}
				return
			}
			wantError(t, dr, CodePoolError, "Exceeded limit on max bytes to buffer : 1024")
		})
	}
}

func TestPool_ConnectionRefusedIsPoolError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	client := NewHTTPClient(ClientConfig{ConnectTimeout: time.Second})
	defer client.CloseIdleConnections()
	dr := mustDispatch(t, NewPool(client, 0), newTask("http://"+addr+"/invoke", 5000))
	if dr.Result.Success || dr.Result.Error == nil || dr.Result.Error.Code != CodePoolError ||
		!strings.Contains(dr.Result.Error.Message, "connection refused") {
		t.Fatalf("result = %+v %v, want POOL_ERROR mentioning connection refused", dr.Result, dr.Result.Error)
	}
}

func TestPool_MissingEndpointFailsWithoutHTTP(t *testing.T) {
	var hits atomic.Int32
	_, p := newRuntime(t, 0, func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })
	for _, endpoint := range []*string{nil, ptr(""), ptr("  \t")} {
		task := newTask("", 5000)
		task.Spec.EndpointURL = endpoint
		dr := mustDispatch(t, p, task)
		wantError(t, dr, CodeEndpointMissing, "endpointUrl is required for POOL mode")
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("runtime hit %d times, want 0", n)
	}
}

func TestPool_InvalidEndpointIsPoolError(t *testing.T) {
	_, p := newRuntime(t, 0, func(w http.ResponseWriter, r *http.Request) {})
	for _, endpoint := range []string{"://nope", "ftp://example.invalid/x", "http://[::1"} {
		dr := mustDispatch(t, p, newTask(endpoint, 5000))
		if dr.Result.Success || dr.Result.Error == nil || dr.Result.Error.Code != CodePoolError || dr.Result.Error.Message == "" {
			t.Errorf("endpoint %q: result = %+v, want POOL_ERROR", endpoint, dr.Result)
		}
	}
}

func TestPool_CallerCancellationIsAnError(t *testing.T) {
	release, started := make(chan struct{}), make(chan struct{})
	srv, p := newRuntime(t, 0, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		close(started)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := p.Dispatch(ctx, newTask(srv.URL, 5000))
		done <- err
	}()
	<-started
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Dispatch did not return after cancellation")
	}
}

func TestPool_ReusesOneConnectionAcrossDispatches(t *testing.T) {
	var mu sync.Mutex
	newConns := 0
	srv, p := newRuntimeWithConnState(t, 0, func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			mu.Lock()
			newConns++
			mu.Unlock()
		}
	}, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		switch r.Header.Get("X-Dispatch-Attempt") {
		case "2": // error replies must not cost a connection either
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, "boom")
		case "3": // nor must a content type we reject
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, "<p>hi</p>")
		default:
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"ok":true}`)
		}
	})
	for i := range 100 {
		task := newTask(srv.URL+"/invoke", 5000)
		task.Attempt = 1 + i%3
		mustDispatch(t, p, task)
	}
	mu.Lock()
	defer mu.Unlock()
	if newConns != 1 {
		t.Fatalf("opened %d connections for 100 sequential dispatches, want 1", newConns)
	}
}
