package syncqueue

import (
	"testing"
	"time"
)

func TestEventWindow_PruneDropsOnlyEventsStrictlyOlderThanCutoff(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var w eventWindow
	for _, s := range []int{0, 1, 2, 3} {
		w.record(t0.Add(time.Duration(s) * time.Second))
	}
	if got := w.prune(t0.Add(time.Second)); got != 3 {
		t.Fatalf("after pruning at t0+1s: %d events, want 3 (the event at the cutoff is kept)", got)
	}
	if got := w.prune(t0.Add(time.Second + time.Nanosecond)); got != 2 {
		t.Fatalf("after pruning at t0+1s+1ns: %d events, want 2", got)
	}
	if got := w.prune(t0.Add(time.Hour)); got != 0 {
		t.Fatalf("after pruning everything: %d events, want 0", got)
	}
	w.record(t0.Add(2 * time.Hour))
	if got := w.prune(t0); got != 1 {
		t.Fatalf("a window emptied by pruning records again: %d events, want 1", got)
	}
}

func TestEventWindow_CoalescesEventsWithinOneMillisecond(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var w eventWindow
	for i := range 1000 {
		w.record(t0.Add(time.Duration(i) * time.Microsecond)) // all within 1 ms of t0
	}
	w.record(t0.Add(time.Millisecond)) // starts a new bucket
	if w.n != 2 || w.total != 1001 {
		t.Fatalf("buckets = %d, events = %d; want 2 buckets holding 1001 events", w.n, w.total)
	}
	if got := w.prune(t0.Add(time.Microsecond)); got != 1 {
		t.Fatalf("pruning past the first bucket's start leaves %d events, want 1", got)
	}
}

func TestEventWindow_GrowsAndKeepsOrderAcrossWraparound(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var w eventWindow
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }
	next := 0
	for range 5 {
		w.record(at(next))
		next++
	}
	// Interleave records and prunes so head wraps while the ring grows.
	for round := range 50 {
		for range round + 3 {
			w.record(at(next))
			next++
		}
		w.prune(at(next - 5))
		if w.total != 5 {
			t.Fatalf("round %d: %d events in the window, want 5", round, w.total)
		}
	}
}

func TestWindowSeconds_IsWholeSecondsAtLeastOne(t *testing.T) {
	for _, tc := range []struct {
		in   time.Duration
		want uint64
	}{{0, 1}, {999 * time.Millisecond, 1}, {time.Second, 1}, {2500 * time.Millisecond, 2}, {30 * time.Second, 30}} {
		if got := windowSeconds(tc.in); got != tc.want {
			t.Errorf("windowSeconds(%v) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestEstimator_RemovalDropsFunctionEventsAndKeepsGlobal(t *testing.T) {
	s := defaultSettings()
	s.PerFunctionMinSamples = 3
	s.ThroughputWindow = 10 * time.Second
	f := newFixture(t, s)
	f.svc.RegisterFunction("a")
	f.seedDispatchEvents("a", 5)
	f.seedDispatchEvents("b", 5)

	f.svc.RemoveFunction("a")

	f.svc.mu.Lock()
	defer f.svc.mu.Unlock()
	if got := f.svc.fns["a"].events.total; got != 0 {
		t.Fatalf("removed function keeps %d events, want 0", got)
	}
	if got := f.svc.fns["b"].events.total; got != 5 {
		t.Fatalf("other function has %d events, want 5", got)
	}
	if got := f.svc.global.total; got != 10 {
		t.Fatalf("global window has %d events, want 10 (removal keeps global events)", got)
	}
}

func TestEstimator_AdmissionUsesDispatchesInsideTheWindow(t *testing.T) {
	s := defaultSettings()
	s.ThroughputWindow = 10 * time.Second
	s.PerFunctionMinSamples = 3
	f := newFixture(t, s)
	f.cfg.maxEst.Store(int64(20 * time.Second))
	f.seedDispatchEvents("fn", 3) // 0.3/s per function

	// Depth grows 0..6: est = depth/0.3 = 0, 3.3, 6.7, 10, 13.3, 16.7, 20 s — all ≤ 20 s.
	for range 7 {
		f.enqueue("fn")
	}
	// depth 7 → 23.3 s > 20 s.
	if reason, _ := rejectReason(t, f.svc.Enqueue(f.newTask("fn"))); reason != "est_wait" {
		t.Fatalf("reason = %q, want est_wait", reason)
	}
	// Once the events leave the window there is no throughput: +Inf.
	f.clock.Advance(10*time.Second + time.Nanosecond)
	f.cfg.maxEst.Store(int64(time.Hour))
	if reason, _ := rejectReason(t, f.svc.Enqueue(f.newTask("fn"))); reason != "est_wait" {
		t.Fatalf("after the window: reason = %q, want est_wait (+Inf estimate)", reason)
	}
}

func TestEstimator_DispatchesPruneTheWindowsEvenWithAdmissionOff(t *testing.T) {
	s := schedulerSettings() // admission disabled: Enqueue never prunes
	s.ThroughputWindow = 10 * time.Second
	f := newFixture(t, s)
	for range 5 {
		f.enqueue("fn")
		f.step()
		f.clock.Advance(time.Minute)
	}
	f.svc.mu.Lock()
	defer f.svc.mu.Unlock()
	if g, p := f.svc.global.n, f.svc.fns["fn"].events.n; g != 1 || p != 1 {
		t.Fatalf("buckets kept: global %d, per function %d; want 1 each (older ones pruned)", g, p)
	}
}
