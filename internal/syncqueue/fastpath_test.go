package syncqueue

import (
	"context"
	"testing"
	"time"
)

// startScheduler runs the fixture's scheduler until the test ends.
func startScheduler(t *testing.T, f *fixture) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = f.svc.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(2 * time.Second)
	for !f.svc.running.Load() {
		if time.Now().After(deadline) {
			t.Fatal("scheduler did not start")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestEnqueue_EmptyQueueWithAFreeSlotDispatchesOnTheCallersGoroutine(t *testing.T) {
	f := newFixture(t, defaultSettings())
	startScheduler(t, f)
	task := f.enqueue("fn")
	// Dispatched before Enqueue returned: no hand-off to the scheduler.
	if ids := f.dispatchedIDs(); len(ids) != 1 || ids[0] != task.ExecutionID {
		t.Fatalf("dispatched = %v, want [%s] synchronously", ids, task.ExecutionID)
	}
	if d := f.depth(); d != 0 {
		t.Errorf("depth = %d, want 0", d)
	}
	if acquired, _ := f.slots.counts(); acquired != 1 {
		t.Errorf("slots acquired = %d, want 1 (released later by the completion)", acquired)
	}
	// It still counts as admitted, with a zero queue wait and a throughput event.
	f.svc.mu.Lock()
	st := f.svc.fns["fn"]
	admitted, samples := st.admitted, st.events.prune(f.clock.Now().Add(-time.Hour))
	f.svc.mu.Unlock()
	if admitted != 1 || samples != 1 {
		t.Errorf("admitted = %d, estimator samples = %d; want 1 and 1", admitted, samples)
	}
}

func TestEnqueue_WithoutAFreeSlotQueuesForTheScheduler(t *testing.T) {
	f := newFixture(t, defaultSettings())
	f.slots.SetLimit("busy", 0)
	startScheduler(t, f)
	f.cfg.admission.Store(false) // nothing has been dispatched yet, so est_wait would reject
	task := f.enqueue("busy")
	if ids := f.dispatchedIDs(); len(ids) != 0 {
		t.Fatalf("dispatched %v without a free slot", ids)
	}
	if d := f.depth(); d != 1 {
		t.Fatalf("depth = %d, want 1", d)
	}
	f.slots.SetLimit("busy", 1)
	deadline := time.Now().Add(2 * time.Second)
	for len(f.dispatchedIDs()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("queued item never dispatched once a slot was free")
		}
		time.Sleep(time.Millisecond)
	}
	if ids := f.dispatchedIDs(); ids[0] != task.ExecutionID {
		t.Errorf("dispatched %v", ids)
	}
}

func TestEnqueue_WithoutARunningSchedulerAlwaysQueues(t *testing.T) {
	f := newFixture(t, defaultSettings())
	f.enqueue("fn")
	if ids := f.dispatchedIDs(); len(ids) != 0 {
		t.Fatalf("dispatched %v with no scheduler running", ids)
	}
	if d := f.depth(); d != 1 {
		t.Errorf("depth = %d, want 1", d)
	}
}

func TestSlotReleased_WakesOnlyABlockedScheduler(t *testing.T) {
	f := newFixture(t, defaultSettings())
	f.svc.SlotReleased()
	select {
	case <-f.svc.wake:
		t.Fatal("SlotReleased signalled a scheduler that was not blocked")
	default:
	}
	f.svc.blocked.Store(true)
	f.svc.SlotReleased()
	select {
	case <-f.svc.wake:
	default:
		t.Fatal("SlotReleased did not wake a blocked scheduler")
	}
}

func TestScheduler_BlockedBacklogDispatchesAsSoonAsASlotIsReleased(t *testing.T) {
	f := newFixture(t, defaultSettings())
	f.cfg.admission.Store(false)
	f.slots.SetLimit("fn", 1)
	startScheduler(t, f)
	first := f.enqueue("fn") // takes the only slot
	second := f.enqueue("fn")
	deadline := time.Now().Add(2 * time.Second)
	for !f.svc.blocked.Load() {
		if time.Now().After(deadline) {
			t.Fatal("scheduler never blocked on the busy function")
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(150 * time.Millisecond) // the backoff has grown to its 50 ms cap
	f.slots.ReleaseDispatchSlot("fn")
	f.svc.SlotReleased()
	for len(f.dispatchedIDs()) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("queued item not dispatched after the slot was released")
		}
		time.Sleep(time.Millisecond)
	}
	if ids := f.dispatchedIDs(); ids[0] != first.ExecutionID || ids[1] != second.ExecutionID {
		t.Errorf("dispatch order %v", ids)
	}
}
