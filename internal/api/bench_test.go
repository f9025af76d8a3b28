package api_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkInvokeSyncLocal measures the API layer plus the core sync path for a LOCAL function
// (routing, body decoding, invocation, response encoding); the recorder is part of the cost.
func BenchmarkInvokeSyncLocal(b *testing.B) {
	h := newHarness(b, harnessOpts{})
	h.registerLocal("echo")
	body := `{"input":{"message":"hello","n":42}}`
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v1/functions/echo:invoke", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
	}
}
