package queue

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nanofaas/control-plane/internal/execution"
)

func TestScheduler_DispatchesEachFunctionInFIFOOrder(t *testing.T) {
	rec := &recorder{release: true}
	m, _ := newManager(t, rec)
	register(t, m, spec("f", 1, 100))
	startScheduler(t, m)
	var want []string
	for i := range 50 {
		tk := task("f", i)
		want = append(want, tk.ExecutionID)
		if !m.Enqueue(tk) {
			t.Fatalf("enqueue %d refused", i)
		}
	}
	waitFor(t, "50 dispatches", func() bool { return rec.count() == 50 })
	if got := rec.ids(); !slices.Equal(got, want) {
		t.Fatalf("dispatch order = %v, want %v", got, want)
	}
}

func TestScheduler_ColdFunctionWaitsAtMostOneTurnBehindHotBacklog(t *testing.T) {
	const backlog = 500
	rec := &recorder{} // slots are never released: hot's concurrency is large enough
	m, _ := newManager(t, rec)
	register(t, m, spec("hot", backlog, backlog), spec("cold", 1, 10))
	for i := range backlog {
		m.Enqueue(task("hot", i))
	}
	m.Enqueue(task("cold", 0))
	startScheduler(t, m)
	waitFor(t, "every task dispatched", func() bool { return rec.count() == backlog+1 })
	idx := slices.Index(rec.ids(), "cold-0")
	if idx > maxBatchPerFunction {
		t.Fatalf("cold task dispatched after %d hot tasks, want at most one turn (%d)", idx, maxBatchPerFunction)
	}
}

func TestScheduler_ColdArrivingMidDrainWaitsAtMostOneTurn(t *testing.T) {
	const backlog = 200
	var coldEnqueuedAt atomic.Int64 // dispatch count when cold was enqueued
	rec := &recorder{}
	m, _ := newManager(t, rec)
	rec.onTask = func(n int, _ *execution.Task) {
		if n == 11 { // in the middle of hot's drain, from the scheduler's own goroutine
			coldEnqueuedAt.Store(int64(n))
			if !m.Enqueue(task("cold", 0)) {
				t.Error("cold enqueue refused")
			}
		}
	}
	register(t, m, spec("hot", backlog, backlog), spec("cold", 1, 10))
	for i := range backlog {
		m.Enqueue(task("hot", i))
	}
	startScheduler(t, m)
	waitFor(t, "every task dispatched", func() bool { return rec.count() == backlog+1 })
	idx := slices.Index(rec.ids(), "cold-0")
	hotBetween := idx - int(coldEnqueuedAt.Load())
	if hotBetween > maxBatchPerFunction {
		t.Fatalf("%d hot dispatches between cold's enqueue and its dispatch, want at most %d", hotBetween, maxBatchPerFunction)
	}
}

func TestScheduler_NeverExceedsConcurrencyAndDispatchesInBatchesOfTwo(t *testing.T) {
	rec := &recorder{}
	m, _ := newManager(t, rec)
	register(t, m, spec("f", 5, 20))
	for i := range 20 {
		m.Enqueue(task("f", i))
	}
	startScheduler(t, m)
	waitFor(t, "five dispatches", func() bool { return rec.count() == 5 })
	turns := waitIdle(t, m)
	// 5 slots in batches of 2: turns dispatching 2, 2 and 1 (each re-queues: backlog and
	// progress), then one turn that finds no slot and is not re-queued.
	if rec.count() != 5 || m.InFlight("f") != 5 || m.QueueDepth("f") != 15 {
		t.Fatalf("dispatched %d, inFlight %d, depth %d; want 5, 5, 15", rec.count(), m.InFlight("f"), m.QueueDepth("f"))
	}
	if turns != 4 {
		t.Fatalf("scheduler took %d turns, want 4", turns)
	}
}

func TestScheduler_BlockedBacklogDoesNotSpinAndResumesOnRelease(t *testing.T) {
	rec := &recorder{}
	m, _ := newManager(t, rec)
	register(t, m, spec("f", 1, 100))
	for i := range 10 {
		m.Enqueue(task("f", i))
	}
	startScheduler(t, m)
	waitFor(t, "first dispatch", func() bool { return rec.count() == 1 })
	// Turn 1 dispatches one task and re-queues (backlog, progress); turn 2 finds no slot and
	// does not re-queue. Nothing else may happen while the slot stays taken.
	if turns := waitIdle(t, m); turns != 2 {
		t.Fatalf("blocked scheduler took %d turns, want 2", turns)
	}
	if rec.count() != 1 {
		t.Fatalf("dispatched %d tasks with concurrency 1", rec.count())
	}

	m.ReleaseDispatchSlot("f")
	waitFor(t, "second dispatch", func() bool { return rec.count() == 2 })
	if turns := waitIdle(t, m); turns != 4 {
		t.Fatalf("after one release the scheduler took %d turns in total, want 4", turns)
	}
	if got := rec.ids(); !slices.Equal(got, []string{"f-0", "f-1"}) {
		t.Fatalf("dispatched %v", got)
	}
}

func TestScheduler_IdleDoesNotTakeTurns(t *testing.T) {
	m, _ := newManager(t, &recorder{})
	register(t, m, spec("f", 1, 10))
	startScheduler(t, m)
	if turns := waitIdle(t, m); turns != 0 {
		t.Fatalf("idle scheduler took %d turns", turns)
	}
}

func TestScheduler_DispatchPanicReleasesSlotAndLoopContinues(t *testing.T) {
	rec := &recorder{}
	m, _ := newManager(t, rec)
	rec.onTask = func(n int, _ *execution.Task) {
		if n == 1 {
			panic("dispatcher exploded")
		}
	}
	register(t, m, spec("f", 1, 10))
	m.Enqueue(task("f", 0))
	m.Enqueue(task("f", 1))
	startScheduler(t, m)
	waitFor(t, "second dispatch", func() bool { return rec.count() == 2 })
	if got := m.InFlight("f"); got != 1 {
		t.Fatalf("InFlight = %d, want 1 (the panicking dispatch released its slot)", got)
	}
}

func TestScheduler_SkipsRemovedFunction(t *testing.T) {
	rec := &recorder{}
	m, _ := newManager(t, rec)
	register(t, m, spec("gone", 1, 10), spec("kept", 1, 10))
	m.Enqueue(task("gone", 0))
	m.Enqueue(task("kept", 0))
	_ = m.OnRemove(context.Background(), "gone") // still in the work list
	startScheduler(t, m)
	waitFor(t, "kept dispatched", func() bool { return rec.count() == 1 })
	waitIdle(t, m)
	if got := rec.ids(); !slices.Equal(got, []string{"kept-0"}) {
		t.Fatalf("dispatched %v", got)
	}
}

func TestRun_StopsOnCancelAndCanRestart(t *testing.T) {
	rec := &recorder{release: true}
	m, _ := newManager(t, rec)
	register(t, m, spec("f", 1, 10))

	stop := startScheduler(t, m)
	m.Enqueue(task("f", 0))
	waitFor(t, "first dispatch", func() bool { return rec.count() == 1 })
	stop()

	m.Enqueue(task("f", 1)) // queued while stopped
	startScheduler(t, m)
	waitFor(t, "dispatch after restart", func() bool { return rec.count() == 2 })
}

func TestRun_SecondConcurrentRunIsRejected(t *testing.T) {
	m, _ := newManager(t, &recorder{})
	startScheduler(t, m)
	waitFor(t, "scheduler running", m.running.Load)
	if err := m.Run(context.Background()); !errors.Is(err, ErrAlreadyRunning) {
		t.Fatalf("second Run = %v, want ErrAlreadyRunning", err)
	}
}

func TestSlots_ConcurrentAcquireReleaseNeverExceedsLimit(t *testing.T) {
	const limit = 3
	m, _ := newManager(t, nil)
	register(t, m, spec("f", limit, 10))
	var active, highWater atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 2000 {
				if !m.TryAcquireSlot("f") {
					continue
				}
				n := active.Add(1)
				for hw := highWater.Load(); n > hw && !highWater.CompareAndSwap(hw, n); hw = highWater.Load() {
				}
				active.Add(-1)
				m.ReleaseDispatchSlot("f")
			}
		})
	}
	wg.Wait()
	if hw := highWater.Load(); hw > limit {
		t.Fatalf("%d slots held at once, limit %d", hw, limit)
	}
	if got := m.InFlight("f"); got != 0 {
		t.Fatalf("InFlight = %d after every slot was released", got)
	}
}
