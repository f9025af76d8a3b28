package syncqueue

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nanofaas/control-plane/internal/execution"
)

// BenchmarkEnqueueAndStep measures the per-invocation cost of the module on one goroutine: one
// admission (estimator on) and one scheduler tick that dispatches the item.
func BenchmarkEnqueueAndStep(b *testing.B) {
	s := defaultSettings()
	s.MaxDepth = 1 << 20
	f := newFixture(b, s)
	f.cfg.maxEst.Store(int64(time.Hour))
	f.seedDispatchEvents("fn", 100)
	task := f.newTask("fn")
	svc := f.svc
	svc.dispatch = func(*execution.Task) {}
	b.ReportAllocs()
	for b.Loop() {
		if err := svc.Enqueue(task); err != nil {
			b.Fatal(err)
		}
		svc.step(f.clock.Now())
	}
}

// BenchmarkEnqueueToDispatch measures throughput with the scheduler goroutine running: parallel
// callers admit items, the scheduler dispatches them; ns/op is per dispatched item.
func BenchmarkEnqueueToDispatch(b *testing.B) {
	s := defaultSettings()
	s.AdmissionEnabled = false
	s.MaxDepth = 1 << 16
	f := newFixture(b, s)
	var dispatched atomic.Int64
	f.svc.dispatch = func(*execution.Task) { dispatched.Add(1) }
	task := f.newTask("fn")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.svc.Run(ctx) }()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			for f.svc.Enqueue(task) != nil { // depth reached: let the scheduler catch up
				time.Sleep(10 * time.Microsecond)
			}
		}
	})
	for dispatched.Load() < int64(b.N) {
		time.Sleep(50 * time.Microsecond)
	}
	b.StopTimer()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}
