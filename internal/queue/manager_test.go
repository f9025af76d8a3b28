package queue

import (
	"context"
	"testing"

	"github.com/nanofaas/control-plane/internal/execution"
)

func TestNewManager_RequiresStoreAndDispatch(t *testing.T) {
	store := execution.NewStore(execution.StoreConfig{}, nil)
	hook := func(*execution.Task) {}
	for _, d := range []Deps{{Dispatch: hook}, {Store: store}} {
		if _, err := NewManager(d); err == nil {
			t.Errorf("NewManager(%+v) succeeded", d)
		}
	}
}

func TestManager_UnknownFunctionHasNoQueueAndNoSlots(t *testing.T) {
	m, _ := newManager(t, nil)
	if m.Enqueue(task("ghost", 1)) {
		t.Error("Enqueue for an unknown function returned true")
	}
	if m.TryAcquireSlot("ghost") {
		t.Error("TryAcquireSlot for an unknown function returned true")
	}
	if m.HasAvailableSlot("ghost") {
		t.Error("HasAvailableSlot for an unknown function returned true")
	}
	m.ReleaseDispatchSlot("ghost") // must not panic
	m.SetEffectiveConcurrency("ghost", 3)
	if m.QueueDepth("ghost") != 0 || m.InFlight("ghost") != 0 {
		t.Error("unknown function reports non-zero depth or inFlight")
	}
	if !m.Enabled() {
		t.Error("Enabled() = false")
	}
}

func TestEnqueue_FullQueueReturnsFalseWithoutBlocking(t *testing.T) {
	m, _ := newManager(t, nil)
	register(t, m, spec("f", 1, 3))
	for i := range 3 {
		if !m.Enqueue(task("f", i)) {
			t.Fatalf("enqueue %d refused below queueSize", i)
		}
	}
	if m.Enqueue(task("f", 3)) {
		t.Fatal("enqueue into a full queue returned true")
	}
	if got := m.QueueDepth("f"); got != 3 {
		t.Fatalf("QueueDepth = %d, want 3", got)
	}
}

func TestSlots_SharedCounterVisibleAsInFlight(t *testing.T) {
	m, _ := newManager(t, nil)
	register(t, m, spec("f", 2, 10))
	for i := range 2 {
		if !m.TryAcquireSlot("f") {
			t.Fatalf("acquire %d below the limit refused", i+1)
		}
	}
	if m.TryAcquireSlot("f") || m.HasAvailableSlot("f") {
		t.Fatal("slot available above the limit")
	}
	if got := m.InFlight("f"); got != 2 {
		t.Fatalf("InFlight = %d, want 2", got)
	}
	for range 4 {
		m.ReleaseDispatchSlot("f")
	}
	if got := m.InFlight("f"); got != 0 {
		t.Fatalf("InFlight = %d after over-release, want 0", got)
	}
}

func TestSetEffectiveConcurrency_LimitsSlots(t *testing.T) {
	m, _ := newManager(t, nil)
	register(t, m, spec("f", 4, 10))
	m.SetEffectiveConcurrency("f", 1)
	if !m.TryAcquireSlot("f") || m.TryAcquireSlot("f") {
		t.Fatal("effective concurrency 1 did not allow exactly one slot")
	}
	m.SetEffectiveConcurrency("f", 100)
	for range 3 {
		if !m.TryAcquireSlot("f") {
			t.Fatal("raised effective concurrency refused a slot below configured")
		}
	}
	if m.TryAcquireSlot("f") {
		t.Fatal("effective concurrency exceeded configured concurrency 4")
	}
}

func TestOnRegister_ExistingNameUpdatesConcurrencyAndKeepsQueue(t *testing.T) {
	m, _ := newManager(t, nil)
	register(t, m, spec("f", 1, 5))
	m.Enqueue(task("f", 1))
	register(t, m, spec("f", 3, 50))
	if got := m.QueueDepth("f"); got != 1 {
		t.Fatalf("QueueDepth = %d after re-register, want the queued task kept", got)
	}
	for i := range 3 {
		if !m.TryAcquireSlot("f") {
			t.Fatalf("acquire %d refused after raising concurrency to 3", i+1)
		}
	}
	if m.TryAcquireSlot("f") {
		t.Fatal("acquire above the raised concurrency succeeded")
	}
}

// queuedRecord stores a QUEUED execution for fn and returns its record and task.
func queuedRecord(store *execution.Store, fn string, i int) (*execution.Record, *execution.Task) {
	tk := task(fn, i)
	rec := execution.NewRecord(*tk, nil, quietLog)
	store.Put(rec)
	return rec, rec.Task()
}

func TestOnRemove_FailsQueuedExecutionsWithFunctionRemoved(t *testing.T) {
	m, store := newManager(t, nil)
	register(t, m, spec("f", 1, 10), spec("other", 1, 10))

	inFlightRec, inFlightTask := queuedRecord(store, "f", 0)
	queued1, t1 := queuedRecord(store, "f", 1)
	timedOut, t2 := queuedRecord(store, "f", 2)
	queued3, t3 := queuedRecord(store, "f", 3)
	otherRec, otherTask := queuedRecord(store, "other", 1)
	for _, tk := range []*execution.Task{inFlightTask, t1, t2, t3, task("f", 99), otherTask} {
		if !m.Enqueue(tk) {
			t.Fatalf("enqueue %s refused", tk.ExecutionID)
		}
	}
	// The first task is taken by a dispatcher: it is in flight, not queued.
	if !m.TryAcquireSlot("f") {
		t.Fatal("no slot")
	}
	st := m.lookup("f")
	if got, _ := st.poll(); got != inFlightTask {
		t.Fatal("unexpected head of queue")
	}
	inFlightRec.MarkRunning()
	timedOut.MarkTimeout()

	if err := m.OnRemove(context.Background(), "f"); err != nil {
		t.Fatal(err)
	}

	want := execution.ErrorInfo{Code: "FUNCTION_REMOVED", Message: "Function 'f' was removed before queued execution could run"}
	for _, rec := range []*execution.Record{queued1, queued3} {
		snap := rec.Snapshot()
		if rec.State() != execution.StateError || snap.Status().Error == nil || *snap.Status().Error != want {
			t.Errorf("%s: state %s, status %+v; want ERROR with %+v", rec.ID(), rec.State(), snap.Status(), want)
		}
		out, done := rec.Outcome()
		if !done || out.Success || out.Error == nil || *out.Error != want {
			t.Errorf("%s: completion = %+v (done %v), want the FUNCTION_REMOVED error", rec.ID(), out, done)
		}
	}
	if timedOut.State() != execution.StateTimeout {
		t.Errorf("terminal execution changed to %s", timedOut.State())
	}
	if _, done := timedOut.Outcome(); done {
		t.Error("terminal execution was completed again")
	}
	if inFlightRec.State() != execution.StateRunning {
		t.Errorf("in-flight execution changed to %s", inFlightRec.State())
	}
	if otherRec.State() != execution.StateQueued || m.QueueDepth("other") != 1 {
		t.Error("removal touched another function's queue")
	}
	if m.Enqueue(task("f", 100)) {
		t.Error("enqueue after removal accepted")
	}
	if !st.closed.Load() || st.depth.Load() != 0 {
		t.Error("removed state not closed and drained")
	}
	if m.QueueDepth("f") != 0 || m.InFlight("f") != 0 {
		t.Error("removed function still reports depth or inFlight")
	}
	if err := m.OnRemove(context.Background(), "f"); err != nil {
		t.Fatalf("second removal: %v", err)
	}
}

func TestOnRemove_ThenRegisterStartsFresh(t *testing.T) {
	m, _ := newManager(t, nil)
	register(t, m, spec("f", 1, 10))
	m.Enqueue(task("f", 1))
	m.TryAcquireSlot("f")
	_ = m.OnRemove(context.Background(), "f")
	register(t, m, spec("f", 1, 10))
	if m.QueueDepth("f") != 0 || m.InFlight("f") != 0 {
		t.Fatal("re-registered function inherited old state")
	}
	if !m.Enqueue(task("f", 2)) {
		t.Fatal("enqueue after re-register refused")
	}
}
