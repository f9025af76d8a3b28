package syncqueue

import (
	"slices"
	"testing"
	"time"

	"github.com/nanofaas/control-plane/internal/config"
	"github.com/nanofaas/control-plane/internal/execution"
	"github.com/nanofaas/control-plane/internal/invocation"
)

// schedulerSettings admit everything so scheduler tests control the queue directly.
func schedulerSettings() config.SyncQueue {
	s := defaultSettings()
	s.AdmissionEnabled = false
	s.MaxDepth = 10000
	return s
}

func (f *fixture) step() tick { return f.svc.step(f.clock.Now()) }

func (f *fixture) queuedIDs() []string {
	f.svc.mu.Lock()
	defer f.svc.mu.Unlock()
	ids := make([]string, f.svc.q.len())
	for i := range ids {
		ids[i] = f.svc.q.at(i).task.ExecutionID
	}
	return ids
}

func TestStep_DispatchesHeadWhenItsFunctionHasASlot(t *testing.T) {
	f := newFixture(t, schedulerSettings())
	task := f.enqueue("fn")
	f.clock.Advance(300 * time.Millisecond)

	got := f.step()

	if !got.dispatched || got.wait != 0 {
		t.Fatalf("tick = %+v, want a dispatch with no wait", got)
	}
	if ids := f.dispatchedIDs(); !slices.Equal(ids, []string{task.ExecutionID}) {
		t.Fatalf("dispatched %v, want [%s]", ids, task.ExecutionID)
	}
	if f.depth() != 0 || f.slots.totalInFlight() != 1 {
		t.Fatalf("depth %d, in flight %d; want 0 and 1 (the scheduler acquired the slot)", f.depth(), f.slots.totalInFlight())
	}
	f.svc.mu.Lock()
	w, fw := f.svc.wait, f.svc.fns["fn"].wait
	f.svc.mu.Unlock()
	if w.count != 1 || w.sum != 300*time.Millisecond || fw.count != 1 || fw.sum != 300*time.Millisecond {
		t.Fatalf("wait timers global %+v, per function %+v; want one 300ms sample each", w, fw)
	}
}

func TestStep_EmptyQueueWaitsForWorkAndResetsBackoff(t *testing.T) {
	f := newFixture(t, schedulerSettings())
	f.slots.SetLimit("fn", 0)
	f.enqueue("fn")
	f.step()
	f.step() // backoff now 8ms
	f.svc.RemoveFunction("fn")

	got := f.step()

	if !got.idle || got.wait != 2*time.Millisecond || got.dispatched {
		t.Fatalf("tick = %+v, want idle 2ms", got)
	}
	if f.svc.backoff != minBackoff {
		t.Fatalf("backoff = %v after an empty tick, want 2ms", f.svc.backoff)
	}
}

func TestStep_BlockedWorkBacksOffExponentiallyUpTo50ms(t *testing.T) {
	f := newFixture(t, schedulerSettings())
	f.slots.SetLimit("fn", 0)
	f.enqueue("fn")
	var waits []time.Duration
	for range 8 {
		got := f.step()
		if got.dispatched || got.idle {
			t.Fatalf("tick = %+v, want blocked", got)
		}
		waits = append(waits, got.wait)
	}
	ms := time.Millisecond
	want := []time.Duration{2 * ms, 4 * ms, 8 * ms, 16 * ms, 32 * ms, 50 * ms, 50 * ms, 50 * ms}
	if !slices.Equal(waits, want) {
		t.Fatalf("backoff sequence %v, want %v", waits, want)
	}
	if len(f.dispatchedIDs()) != 0 || f.depth() != 1 {
		t.Fatalf("blocked work was dispatched or dropped")
	}
}

func TestStep_BackoffResetsAfterProgress(t *testing.T) {
	f := newFixture(t, schedulerSettings())
	f.slots.SetLimit("fn", 0)
	f.enqueue("fn")
	f.step()
	f.step()
	f.step() // next would be 8ms
	f.slots.SetLimit("fn", 1)
	if got := f.step(); !got.dispatched {
		t.Fatalf("tick = %+v, want dispatch", got)
	}
	f.slots.SetLimit("fn", 0)
	f.enqueue("fn")
	if got := f.step(); got.wait != 2*time.Millisecond {
		t.Fatalf("first blocked wait after progress = %v, want 2ms", got.wait)
	}
}

func TestStep_SkipsABlockedHead(t *testing.T) {
	f := newFixture(t, schedulerSettings())
	f.slots.SetLimit("hot", 0)
	hot := f.enqueue("hot")
	cold := f.enqueue("cold")

	if got := f.step(); !got.dispatched {
		t.Fatalf("tick = %+v, want dispatch of the ready item behind the blocked head", got)
	}
	if ids := f.dispatchedIDs(); !slices.Equal(ids, []string{cold.ExecutionID}) {
		t.Fatalf("dispatched %v, want [%s]", ids, cold.ExecutionID)
	}
	if q := f.queuedIDs(); !slices.Equal(q, []string{hot.ExecutionID}) {
		t.Fatalf("queue %v, want the blocked head still queued", q)
	}
}

func TestStep_FindsReadyItemBeyondTheScanWindowByRotation(t *testing.T) {
	f := newFixture(t, schedulerSettings())
	f.slots.SetLimit("hot", 0)
	for range 100 {
		f.enqueue("hot")
	}
	cold := f.enqueue("cold") // position 100: outside the first window of 64

	first := f.step()
	if first.dispatched {
		t.Fatal("dispatched on the first tick although no ready item is in the first 64")
	}
	if q := f.queuedIDs(); q[36] != cold.ExecutionID {
		t.Fatalf("after rotating 64 items the cold item is at %d, want 36", slices.Index(q, cold.ExecutionID))
	}
	if got := f.step(); !got.dispatched {
		t.Fatalf("second tick = %+v, want dispatch", got)
	}
	if ids := f.dispatchedIDs(); !slices.Equal(ids, []string{cold.ExecutionID}) {
		t.Fatalf("dispatched %v, want the cold item", ids)
	}
	if f.depth() != 100 {
		t.Fatalf("depth = %d, want 100", f.depth())
	}
}

func TestStep_ScanCoversAtMost64Items(t *testing.T) {
	f := newFixture(t, schedulerSettings())
	f.slots.SetLimit("hot", 0)
	for range 64 {
		f.enqueue("hot")
	}
	f.enqueue("cold") // position 64
	if got := f.step(); got.dispatched {
		t.Fatal("the scan looked past 64 items")
	}
}

func TestStep_FailedAcquireKeepsItemQueuedAtTheTailAndTakesNoSlot(t *testing.T) {
	f := newFixture(t, schedulerSettings())
	a := f.enqueue("a")
	b := f.enqueue("b")
	f.slots.mu.Lock()
	f.slots.failAcquire = true
	f.slots.mu.Unlock()

	got := f.step()

	if got.dispatched || got.wait != 2*time.Millisecond {
		t.Fatalf("tick = %+v, want a blocked 2ms backoff", got)
	}
	if q := f.queuedIDs(); !slices.Equal(q, []string{b.ExecutionID, a.ExecutionID}) {
		t.Fatalf("queue %v, want the candidate moved to the tail", q)
	}
	if acq, rel := f.slots.counts(); acq != 0 || rel != 0 || f.slots.totalInFlight() != 0 {
		t.Fatalf("slots acquired %d released %d; a failed acquisition must change nothing", acq, rel)
	}
	// Rotation neither frees nor takes capacity either.
	f.slots.SetLimit("a", 0)
	f.slots.SetLimit("b", 0)
	for range 5 {
		f.step()
	}
	if acq, rel := f.slots.counts(); acq != 0 || rel != 0 || f.depth() != 2 {
		t.Fatalf("after rotations: acquired %d released %d depth %d", acq, rel, f.depth())
	}
}

func TestStep_QueueTimeoutCompletesWithQueueTimeout(t *testing.T) {
	f := newFixture(t, schedulerSettings())
	f.slots.SetLimit("fn", 0)
	task := f.enqueue("fn")

	f.clock.Advance(2 * time.Second) // enqueuedAt + max-queue-wait == now: not strictly before
	f.step()
	if f.depth() != 1 {
		t.Fatal("item timed out at exactly max-queue-wait")
	}

	f.clock.Advance(time.Nanosecond)
	got := f.step()

	if !got.idle || f.depth() != 0 {
		t.Fatalf("tick = %+v depth %d, want the item purged and the queue empty", got, f.depth())
	}
	rec := f.record(task)
	if rec.State() != execution.StateTimeout {
		t.Fatalf("state = %v, want timeout", rec.State())
	}
	out, done := rec.Outcome()
	if !done || out.Success || out.Error == nil || out.Error.Code != invocation.QueueTimeoutCode || out.Error.Message != "Queue wait exceeded" {
		t.Fatalf("outcome = %+v (done %v), want QUEUE_TIMEOUT / Queue wait exceeded", out, done)
	}
	if len(f.dispatchedIDs()) != 0 {
		t.Fatal("a timed-out item was dispatched")
	}
	if acq, _ := f.slots.counts(); acq != 0 {
		t.Fatal("a timed-out item took a slot")
	}
	f.svc.mu.Lock()
	st := f.svc.fns["fn"]
	timedOut, queued, waits := st.timedOut, st.queued, f.svc.wait.count
	f.svc.mu.Unlock()
	if timedOut != 1 || queued != 0 || waits != 0 {
		t.Fatalf("timedOut %d, queued %d, wait samples %d; want 1, 0, 0", timedOut, queued, waits)
	}
}

func TestStep_QueueTimeoutFollowsTheLiveMaxQueueWait(t *testing.T) {
	f := newFixture(t, schedulerSettings())
	f.slots.SetLimit("fn", 0)
	f.enqueue("fn")
	f.clock.Advance(time.Second)
	f.step()
	if f.depth() != 1 {
		t.Fatal("timed out before max-queue-wait")
	}
	f.cfg.maxWait.Store(int64(500 * time.Millisecond))
	f.step()
	if f.depth() != 0 {
		t.Fatal("a lowered max-queue-wait was not applied")
	}
}

func TestStep_QueueTimeoutKeepsATerminalStateButStillCompletes(t *testing.T) {
	f := newFixture(t, schedulerSettings())
	f.slots.SetLimit("fn", 0)
	task := f.enqueue("fn")
	f.record(task).MarkTimeout() // the caller's own deadline passed first

	f.clock.Advance(3 * time.Second)
	f.step()

	rec := f.record(task)
	if rec.State() != execution.StateTimeout {
		t.Fatalf("state = %v, want timeout", rec.State())
	}
	if out, done := rec.Outcome(); !done || out.Error == nil || out.Error.Code != invocation.QueueTimeoutCode {
		t.Fatalf("outcome = %+v (done %v), want QUEUE_TIMEOUT", out, done)
	}
}

func TestStep_TimesOutExpiredItemsWhileRotatingABlockedWindow(t *testing.T) {
	f := newFixture(t, schedulerSettings())
	f.slots.SetLimit("fn", 0)
	old := make([]*execution.Task, 70)
	for i := range old {
		old[i] = f.enqueue("fn")
	}
	f.clock.Advance(3 * time.Second)
	fresh := f.enqueue("fn")

	f.step() // scan purges the first 64; rotation purges the remaining 6
	if q := f.queuedIDs(); !slices.Equal(q, []string{fresh.ExecutionID}) {
		t.Fatalf("queue %v, want only the fresh item", q)
	}
	for _, tk := range old {
		if f.record(tk).State() != execution.StateTimeout {
			t.Fatalf("%s not timed out", tk.ExecutionID)
		}
	}
}

func TestStep_TimeoutOfAnEvictedExecutionOnlyCounts(t *testing.T) {
	f := newFixture(t, schedulerSettings())
	f.slots.SetLimit("fn", 0)
	task := f.enqueue("fn")
	f.store.Remove(task.ExecutionID)
	f.clock.Advance(3 * time.Second)
	f.step()
	if f.depth() != 0 {
		t.Fatal("the item of an evicted execution was not purged")
	}
}

func TestStep_DispatchPanicReleasesTheSlotAndSuccessDoesNot(t *testing.T) {
	f := newFixture(t, schedulerSettings())
	f.onDispatch = func(task *execution.Task) {
		if task.FunctionName == "boom" {
			panic("router down")
		}
	}
	f.enqueue("boom")
	f.enqueue("ok")

	f.step()
	f.step()

	acq, rel := f.slots.counts()
	if acq != 2 || rel != 1 {
		t.Fatalf("acquired %d released %d; want 2 and 1 (only the panicking dispatch releases)", acq, rel)
	}
	if f.slots.totalInFlight() != 1 {
		t.Fatalf("in flight %d, want 1 (the successful dispatch keeps its slot until completion)", f.slots.totalInFlight())
	}
}

// panicSlots panics in HasAvailableSlot, as a buggy collaborator might.
type panicSlots struct{ *countingSlots }

func (panicSlots) HasAvailableSlot(string) bool { panic("slots broken") }

func TestSafeStep_SurvivesAPanickingCollaborator(t *testing.T) {
	f := newFixture(t, schedulerSettings())
	f.svc.slots = panicSlots{f.slots}
	f.enqueue("fn")
	got := f.svc.safeStep(f.clock.Now())
	if got.dispatched || got.wait != 2*time.Millisecond {
		t.Fatalf("tick = %+v, want a 2ms backoff", got)
	}
	// The lock was released: admission still works.
	f.enqueue("fn")
}
