package queue

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nanofaas/control-plane/internal/execution"
)

// BenchmarkEnqueue measures the admission hot path: table lookup, bounded offer and the
// (deduplicated) scheduler signal. The queue is drained directly so it never fills.
func BenchmarkEnqueue(b *testing.B) {
	m, _ := newManager(b, nil)
	register(b, m, spec("f", 4, 1024))
	st := m.lookup("f")
	tk := task("f", 1)
	b.ReportAllocs()
	for b.Loop() {
		if !m.Enqueue(tk) {
			b.Fatal("enqueue refused")
		}
		st.poll()
	}
}

// BenchmarkEnqueueParallel is BenchmarkEnqueue from all Ps against one function.
func BenchmarkEnqueueParallel(b *testing.B) {
	m, _ := newManager(b, nil)
	register(b, m, spec("f", 4, 1<<20))
	st := m.lookup("f")
	tk := task("f", 1)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if m.Enqueue(tk) {
				st.poll()
			}
		}
	})
}

// BenchmarkEnqueueToDispatch measures throughput through the real scheduler goroutine: every
// task is enqueued, picked up, handed to a dispatch hook that completes it instantly (releasing
// its slot), across 4 functions with concurrency 4.
func BenchmarkEnqueueToDispatch(b *testing.B) {
	fns := []string{"a", "b", "c", "d"}
	var done atomic.Int64
	var m *Manager
	store := execution.NewStore(execution.StoreConfig{}, nil)
	m, err := NewManager(Deps{Store: store, Logger: quietLog, Dispatch: func(t *execution.Task) {
		done.Add(1)
		m.ReleaseDispatchSlot(t.FunctionName)
	}})
	if err != nil {
		b.Fatal(err)
	}
	tasks := make([]*execution.Task, len(fns))
	for i, fn := range fns {
		register(b, m, spec(fn, 4, 4096))
		tasks[i] = task(fn, i)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = m.Run(ctx) })
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		for !m.Enqueue(tasks[i%len(tasks)]) {
			runtime.Gosched() // queue full: let the scheduler catch up
		}
	}
	for done.Load() < int64(b.N) {
		runtime.Gosched()
	}
	b.StopTimer()
	cancel()
	wg.Wait()
}
