package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func newBenchMetrics(b *testing.B) *FunctionMetrics {
	b.Helper()
	fm, err := NewFunctionMetrics(prometheus.NewRegistry(), nil)
	if err != nil {
		b.Fatal(err)
	}
	for i := range 100 {
		fm.For("fn-" + string(rune('a'+i%26)) + string(rune('a'+i/26)))
	}
	return fm
}

func BenchmarkFor_Dispatch(b *testing.B) {
	fm := newBenchMetrics(b)
	fm.For("echo")
	b.ReportAllocs()
	for b.Loop() {
		fm.For("echo").Dispatch()
	}
}

func BenchmarkFor_DispatchParallel(b *testing.B) {
	fm := newBenchMetrics(b)
	fm.For("echo")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			fm.For("echo").Dispatch()
		}
	})
}

// BenchmarkSuccessCompletion is what a final successful completion costs: dispatch, success and
// warm-start counters plus the latency, queue-wait and e2e timers.
func BenchmarkSuccessCompletion(b *testing.B) {
	fm := newBenchMetrics(b)
	fm.For("echo")
	b.ReportAllocs()
	for b.Loop() {
		m := fm.For("echo")
		m.Dispatch()
		m.Success()
		m.WarmStart()
		m.Latency(3 * time.Millisecond)
		m.QueueWait(time.Millisecond)
		m.E2E(4 * time.Millisecond)
	}
}

func BenchmarkFor_RemovedFunction(b *testing.B) {
	fm := newBenchMetrics(b)
	fm.RemoveFunction("gone")
	b.ReportAllocs()
	for b.Loop() {
		fm.For("gone").Dispatch()
	}
}
