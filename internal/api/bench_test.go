package api_test

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
)

// BenchmarkInvokeSyncLocal measures the API layer plus the core sync path for a LOCAL function
// (routing, body decoding, invocation, response encoding); the recorder is part of the cost.
func BenchmarkInvokeSyncLocal(b *testing.B) {
	invoke := localInvoker(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		invoke()
	}
}

// localInvoker registers a LOCAL echo function and returns a sync invocation of it through the
// API handler.
func localInvoker(b *testing.B) func() {
	h := newHarness(b, harnessOpts{})
	h.registerLocal("echo")
	body := `{"input":{"message":"hello","n":42}}`
	return func() {
		req := httptest.NewRequest(http.MethodPost, "/v1/functions/echo:invoke", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
	}
}

// BenchmarkRetainedExecution reports the heap each finished execution keeps while the store
// retains it (nanofaas.execution-store.ttl, 5 min by default): under sustained load this is what
// the control plane's memory and its GC marking grow with.
func BenchmarkRetainedExecution(b *testing.B) {
	invoke := localInvoker(b)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	n := 0
	for b.Loop() {
		invoke()
		n++
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(n), "retained-B/execution")
}
