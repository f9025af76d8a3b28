package fnruntime_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nanofaas/control-plane/fnruntime"
)

// BenchmarkInvoke measures the runtime's own overhead per invocation (no network, no callback).
func BenchmarkInvoke(b *testing.B) {
	rt := fnruntime.New(echo, fnruntime.Config{Timeout: fnruntime.DefaultTimeout}, quiet())
	defer rt.Close(context.Background())
	const body = `{"input":{"text":"the quick brown fox","topN":3},"metadata":null}`
	req := httptest.NewRequest(http.MethodPost, "/invoke", nil)
	req.Header.Set("X-Execution-Id", "bench")
	req.Header.Set("X-Dispatch-Attempt", "1")
	b.ReportAllocs()
	for b.Loop() {
		req.Body = readCloser{strings.NewReader(body)}
		req.ContentLength = int64(len(body))
		rec := httptest.NewRecorder()
		rt.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
	}
}

type readCloser struct{ *strings.Reader }

func (readCloser) Close() error { return nil }
