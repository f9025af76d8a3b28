package syncqueue

import (
	"context"
	"testing"
	"time"

	"github.com/nanofaas/control-plane/internal/config"
	"github.com/nanofaas/control-plane/internal/execution"
	"github.com/nanofaas/control-plane/internal/function"
	"github.com/nanofaas/control-plane/internal/invocation"
)

func TestNew_RequiresDispatchAndStore(t *testing.T) {
	if _, err := New(Deps{Settings: defaultSettings()}); err == nil {
		t.Fatal("New without Dispatch and Store succeeded")
	}
}

func TestNew_DefaultsToStaticConfigFromSettings(t *testing.T) {
	s := defaultSettings()
	s.Enabled = false
	s.RetryAfterSeconds = 7
	svc, err := New(Deps{Settings: s, Dispatch: func(*execution.Task) {}, Store: execution.NewStore(execution.StoreConfig{}, nil)})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Enabled() || svc.RetryAfterSeconds() != 7 {
		t.Fatalf("Enabled=%v RetryAfterSeconds=%d, want false and 7", svc.Enabled(), svc.RetryAfterSeconds())
	}
}

func TestStaticConfig_ReportsStartupValues(t *testing.T) {
	c := NewStaticConfig(config.SyncQueue{Enabled: true, AdmissionEnabled: true, MaxEstimatedWait: 3 * time.Second,
		MaxQueueWait: 4 * time.Second, RetryAfterSeconds: 5})
	if !c.SyncQueueEnabled() || !c.SyncQueueAdmissionEnabled() || c.SyncQueueMaxEstimatedWait() != 3*time.Second ||
		c.SyncQueueMaxQueueWait() != 4*time.Second || c.SyncQueueRetryAfterSeconds() != 5 {
		t.Fatalf("StaticConfig = %+v", c)
	}
}

func TestEnabledAndRetryAfter_FollowTheLiveConfig(t *testing.T) {
	f := newFixture(t, defaultSettings())
	f.cfg.enabled.Store(false)
	f.cfg.retryAfter.Store(9)
	if f.svc.Enabled() || f.svc.RetryAfterSeconds() != 9 {
		t.Fatalf("Enabled=%v RetryAfterSeconds=%d, want false and 9", f.svc.Enabled(), f.svc.RetryAfterSeconds())
	}
	f.cfg.enabled.Store(true)
	if !f.svc.Enabled() {
		t.Fatal("Enabled did not follow the live config")
	}
}

func TestEnqueue_FullQueueRejectsWithDepthAndCounts(t *testing.T) {
	s := defaultSettings()
	s.MaxDepth = 2
	s.AdmissionEnabled = false
	f := newFixture(t, s)
	f.enqueue("fn")
	f.enqueue("other") // depth is global: any function fills it
	f.cfg.retryAfter.Store(4)

	reason, retry := rejectReason(t, f.svc.Enqueue(f.newTask("fn")))
	if reason != invocation.RejectDepth || retry != 4 {
		t.Fatalf("rejection = (%q, %d), want (depth, 4)", reason, retry)
	}
	if f.depth() != 2 {
		t.Fatalf("depth = %d, want 2", f.depth())
	}
	f.svc.mu.Lock()
	rejected := f.svc.fns["fn"].rejected
	f.svc.mu.Unlock()
	if rejected != 1 {
		t.Fatalf("rejected counter = %d, want 1", rejected)
	}
}

func TestEnqueue_ZeroEstimatedWaitRejectsEveryRequestWithEstWait(t *testing.T) {
	s := defaultSettings()
	s.MaxEstimatedWait = 0
	f := newFixture(t, s)
	f.seedDispatchEvents("fn", 1000) // plenty of throughput: the 0s limit alone rejects
	for i := range 3 {
		reason, retry := rejectReason(t, f.svc.Enqueue(f.newTask("fn")))
		if reason != invocation.RejectEstWait || retry != 2 {
			t.Fatalf("request %d: rejection = (%q, %d), want (est_wait, 2)", i, reason, retry)
		}
	}
	if f.depth() != 0 {
		t.Fatalf("depth = %d, want 0", f.depth())
	}
}

func TestEnqueue_WithoutHistoryAdmitsIntoEmptyQueueThenRejectsEstWait(t *testing.T) {
	f := newFixture(t, defaultSettings())
	f.enqueue("fn") // depth 0 → estimate 0
	reason, _ := rejectReason(t, f.svc.Enqueue(f.newTask("fn")))
	if reason != invocation.RejectEstWait {
		t.Fatalf("reason = %q, want est_wait (+Inf estimate)", reason)
	}
}

func TestEnqueue_SubSecondLimitIsARealLimit(t *testing.T) {
	// D11: the reference truncated 500ms to 0 s and rejected everything.
	s := defaultSettings()
	s.MaxEstimatedWait = 500 * time.Millisecond
	s.ThroughputWindow = 10 * time.Second
	f := newFixture(t, s)
	f.enqueue("fn") // depth 0

	f.seedDispatchEvents("x", 25) // global 2.5/s: depth 1 → 0.4 s
	f.enqueue("fn")

	// depth 2 → 0.8 s > 0.5 s.
	if reason, _ := rejectReason(t, f.svc.Enqueue(f.newTask("fn"))); reason != invocation.RejectEstWait {
		t.Fatalf("reason = %q, want est_wait", reason)
	}
}

func TestEnqueue_FractionalSecondsOfTheLimitCount(t *testing.T) {
	// D11: est 1.25 s against 1500ms is admitted (the reference compared with a truncated 1 s).
	s := defaultSettings()
	s.MaxEstimatedWait = 1500 * time.Millisecond
	s.ThroughputWindow = 10 * time.Second
	f := newFixture(t, s)
	f.enqueue("fn")
	f.seedDispatchEvents("x", 8) // 0.8/s: depth 1 → 1.25 s
	f.enqueue("fn")
}

func TestEnqueue_AdmissionDisabledIgnoresTheEstimate(t *testing.T) {
	s := defaultSettings()
	s.AdmissionEnabled = false
	s.MaxEstimatedWait = 0
	f := newFixture(t, s)
	for range 5 {
		f.enqueue("fn")
	}
	// ...and the live knob turns it back on.
	f.cfg.admission.Store(true)
	if reason, _ := rejectReason(t, f.svc.Enqueue(f.newTask("fn"))); reason != invocation.RejectEstWait {
		t.Fatalf("reason = %q, want est_wait after enabling admission", reason)
	}
}

func TestEnqueue_TakesNoDispatchSlot(t *testing.T) {
	f := newFixture(t, defaultSettings())
	f.enqueue("fn")
	if acq, _ := f.slots.counts(); acq != 0 {
		t.Fatalf("admission acquired %d slots, want 0 (the scheduler acquires at dispatch)", acq)
	}
}

func TestEnqueue_RemovedFunctionFailsExecutionAndRejectsWithDepth(t *testing.T) {
	f := newFixture(t, defaultSettings())
	f.svc.RegisterFunction("fn")
	f.svc.RemoveFunction("fn")
	task := f.newTask("fn")

	reason, _ := rejectReason(t, f.svc.Enqueue(task))
	if reason != invocation.RejectDepth {
		t.Fatalf("reason = %q, want depth", reason)
	}
	rec := f.record(task)
	out, done := rec.Outcome()
	if !done || out.Error == nil || out.Error.Code != "FUNCTION_REMOVED" ||
		out.Error.Message != "Function 'fn' was removed before queued execution could run" {
		t.Fatalf("outcome = %+v (done %v), want FUNCTION_REMOVED", out, done)
	}
	if rec.State() != execution.StateError {
		t.Fatalf("state = %v, want error", rec.State())
	}
	f.svc.mu.Lock()
	st := f.svc.fns["fn"]
	f.svc.mu.Unlock()
	if st.rejected != 0 || st.created != 0 {
		t.Fatalf("removed function got meters (rejected %d, created %b); want none", st.rejected, st.created)
	}
}

func TestRemoveFunction_DrainsOnlyThatFunctionWithFunctionRemoved(t *testing.T) {
	s := defaultSettings()
	s.AdmissionEnabled = false
	f := newFixture(t, s)
	a1 := f.enqueue("a")
	b1 := f.enqueue("b")
	a2 := f.enqueue("a")
	b2 := f.enqueue("b")
	// A waiter that already timed out keeps its TIMEOUT.
	f.record(a2).MarkTimeout()

	f.svc.RemoveFunction("a")

	if f.depth() != 2 {
		t.Fatalf("depth = %d, want 2", f.depth())
	}
	if got := f.record(a1).State(); got != execution.StateError {
		t.Fatalf("a1 state = %v, want error", got)
	}
	if out, _ := f.record(a1).Outcome(); out.Error == nil || out.Error.Code != "FUNCTION_REMOVED" {
		t.Fatalf("a1 outcome = %+v, want FUNCTION_REMOVED", out)
	}
	if got := f.record(a2).State(); got != execution.StateTimeout {
		t.Fatalf("a2 state = %v, want timeout kept", got)
	}
	// The remaining items keep their order.
	f.svc.mu.Lock()
	got := []string{f.svc.q.at(0).task.ExecutionID, f.svc.q.at(1).task.ExecutionID}
	f.svc.mu.Unlock()
	if got[0] != b1.ExecutionID || got[1] != b2.ExecutionID {
		t.Fatalf("queue = %v, want [%s %s]", got, b1.ExecutionID, b2.ExecutionID)
	}
	for _, b := range []*execution.Task{b1, b2} {
		if _, done := f.record(b).Outcome(); done {
			t.Fatalf("%s was completed by another function's removal", b.ExecutionID)
		}
	}
}

func TestListener_RegisterAfterRemoveReenablesAdmission(t *testing.T) {
	s := defaultSettings()
	s.AdmissionEnabled = false
	f := newFixture(t, s)
	ctx := context.Background()
	spec := &function.Spec{Name: "fn"}
	if err := f.svc.OnRegister(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.OnRemove(ctx, "fn"); err != nil {
		t.Fatal(err)
	}
	if _, err := rejectReasonOrNil(f.svc.Enqueue(f.newTask("fn"))); err == nil {
		t.Fatal("enqueue after removal was admitted")
	}
	if err := f.svc.OnRegister(ctx, spec); err != nil {
		t.Fatal(err)
	}
	f.enqueue("fn")
}

func rejectReasonOrNil(err error) (invocation.RejectReason, error) {
	if err == nil {
		return "", nil
	}
	rej, ok := err.(*invocation.SyncQueueRejectedError)
	if !ok {
		return "", err
	}
	return rej.Reason, err
}

func TestEnqueue_AdmissionPathDoesNotAllocate(t *testing.T) {
	s := defaultSettings()
	s.MaxDepth = 1 << 20
	f := newFixture(t, s)
	f.seedDispatchEvents("fn", 100)
	f.cfg.maxEst.Store(int64(time.Hour))
	tasks := make([]*execution.Task, 1024+501)
	for i := range tasks {
		tasks[i] = f.newTask("fn")
	}
	// Warm up: grow the ring to its working size, then let the scheduler drain it.
	for _, tk := range tasks[:1024] {
		if err := f.svc.Enqueue(tk); err != nil {
			t.Fatal(err)
		}
	}
	for f.depth() > 0 {
		f.svc.step(f.clock.Now())
	}
	i := 1024
	allocs := testing.AllocsPerRun(500, func() {
		if err := f.svc.Enqueue(tasks[i]); err != nil {
			t.Fatal(err)
		}
		i++
	})
	if allocs != 0 {
		t.Fatalf("an admitted Enqueue allocates %v times", allocs)
	}
}
