package invocation

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/nanofaas/control-plane/internal/function"
)

// Hot-path benchmarks. Each iteration removes its execution from the store afterwards so
// memory stays flat (the janitor does this after the TTL in production); Remove is one sharded
// map delete.

// benchRate keeps the global rate limiter out of the way of a benchmark's loop.
const benchRate = 1 << 31

func BenchmarkInvokeSync_Local(b *testing.B) {
	h := newHarness(b, harnessOpts{maxPerSecond: benchRate})
	h.register("echo", function.ModeLocal, "")
	req := request(`{"message":"hi"}`)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := h.svc.InvokeSync(ctx, "echo", req, Options{})
		if err != nil || resp.Status != StatusSuccess {
			b.Fatalf("%+v %v", resp, err)
		}
		h.store.Remove(resp.ExecutionID)
	}
}

func BenchmarkInvokeSync_LocalParallel(b *testing.B) {
	h := newHarness(b, harnessOpts{maxPerSecond: benchRate})
	h.register("echo", function.ModeLocal, "")
	req := request(`{"message":"hi"}`)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			resp, err := h.svc.InvokeSync(ctx, "echo", req, Options{})
			if err != nil || resp.Status != StatusSuccess {
				b.Errorf("%+v %v", resp, err)
				return
			}
			h.store.Remove(resp.ExecutionID)
		}
	})
}

func BenchmarkInvokeSync_IdempotentReplay(b *testing.B) {
	h := newHarness(b, harnessOpts{maxPerSecond: benchRate})
	h.register("echo", function.ModeLocal, "")
	req := request(`{"message":"hi"}`)
	ctx := context.Background()
	opt := Options{IdempotencyKey: "replayed"}
	first, err := h.svc.InvokeSync(ctx, "echo", req, opt)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := h.svc.InvokeSync(ctx, "echo", req, opt)
		if err != nil || resp.ExecutionID != first.ExecutionID {
			b.Fatalf("%+v %v", resp, err)
		}
	}
}

// BenchmarkPool compares a sync POOL invocation with calling the same runtime directly through
// the same http.Client: the difference is the control plane's overhead per invocation.
func BenchmarkPool(b *testing.B) {
	h := newHarness(b, harnessOpts{maxPerSecond: benchRate})
	out := []byte(`{"message":"hi"}`)
	rt := h.newRuntime(func(w http.ResponseWriter, _ *http.Request, _ call) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(out)
	})
	h.register("fn", function.ModePool, rt.URL())
	req := request(`{"message":"hi"}`)
	body := []byte(`{"input":{"message":"hi"},"metadata":null}`)
	ctx := context.Background()

	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			hr, err := http.NewRequestWithContext(ctx, http.MethodPost, rt.URL(), bytes.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			hr.Header["Content-Type"] = []string{"application/json"}
			hr.Header["X-Execution-Id"] = []string{"00000000-0000-4000-8000-000000000000"}
			hr.Header["X-Dispatch-Attempt"] = []string{"1"}
			resp, err := h.client.Do(hr)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, resp.Body); err != nil {
				b.Fatal(err)
			}
			_ = resp.Body.Close()
		}
	})
	b.Run("invokeSync", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			resp, err := h.svc.InvokeSync(ctx, "fn", req, Options{})
			if err != nil || resp.Status != StatusSuccess {
				b.Fatalf("%+v %v", resp, err)
			}
			h.store.Remove(resp.ExecutionID)
		}
	})
}
