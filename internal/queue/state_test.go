package queue

import (
	"testing"

	"github.com/nanofaas/control-plane/internal/function"
)

func TestNewState_ConfiguredConcurrencyIsAtLeastOne(t *testing.T) {
	for _, tc := range []struct{ concurrency, want int64 }{{-3, 1}, {0, 1}, {1, 1}, {7, 7}} {
		st := newState(spec("f", int(tc.concurrency), 10))
		if got := st.configured.Load(); got != tc.want {
			t.Errorf("concurrency %d: configured = %d, want %d", tc.concurrency, got, tc.want)
		}
		if got := st.effective.Load(); got != tc.want {
			t.Errorf("concurrency %d: effective = %d, want %d", tc.concurrency, got, tc.want)
		}
	}
}

func TestTryAcquire_StopsAtEffectiveConcurrency(t *testing.T) {
	st := newState(spec("f", 3, 10))
	for i := range 3 {
		if !st.tryAcquire() {
			t.Fatalf("acquire %d refused below the limit", i+1)
		}
	}
	if st.tryAcquire() {
		t.Fatal("acquire above the limit succeeded")
	}
	if st.hasAvailableSlot() {
		t.Fatal("hasAvailableSlot true at the limit")
	}
	st.release()
	if !st.hasAvailableSlot() || !st.tryAcquire() {
		t.Fatal("released slot not reusable")
	}
}

func TestRelease_NeverGoesBelowZero(t *testing.T) {
	st := newState(spec("f", 2, 10))
	for range 5 {
		st.release()
	}
	if got := st.inFlight.Load(); got != 0 {
		t.Fatalf("inFlight = %d after over-release, want 0", got)
	}
	// Over-release must not have created extra capacity.
	for i := range 2 {
		if !st.tryAcquire() {
			t.Fatalf("acquire %d after over-release refused", i+1)
		}
	}
	if st.tryAcquire() {
		t.Fatal("over-release leaked a slot above the limit")
	}
}

func TestSetEffective_ClampsBetweenOneAndConfigured(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int
		want int64
	}{
		{"below one", 0, 1},
		{"negative", -4, 1},
		{"within", 3, 3},
		{"above configured", 9, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newState(spec("f", 5, 10))
			st.setEffective(tc.n)
			if got := st.effective.Load(); got != tc.want {
				t.Fatalf("effective = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestSetEffective_CapsAcquires(t *testing.T) {
	st := newState(spec("f", 5, 10))
	st.setEffective(2)
	st.tryAcquire()
	st.tryAcquire()
	if st.tryAcquire() {
		t.Fatal("acquire above the lowered effective limit succeeded")
	}
}

func TestSetConfigured_EffectiveFollowsOrIsLowered(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		configured, effective int // before
		newConfigured         int
		wantConfigured        int64
		wantEffective         int64
	}{
		{"tracking effective follows a raise", 4, 4, 8, 8, 8},
		{"tracking effective follows a cut", 4, 4, 2, 2, 2},
		{"reduced effective kept under a raise", 4, 2, 8, 8, 2},
		{"reduced effective lowered to a smaller configured", 6, 4, 3, 3, 3},
		{"reduced effective kept when still below", 6, 2, 3, 3, 2},
		{"zero configured becomes one", 4, 4, 0, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newState(spec("f", tc.configured, 10))
			st.setEffective(tc.effective)
			st.setConfigured(tc.newConfigured)
			if got := st.configured.Load(); got != tc.wantConfigured {
				t.Errorf("configured = %d, want %d", got, tc.wantConfigured)
			}
			if got := st.effective.Load(); got != tc.wantEffective {
				t.Errorf("effective = %d, want %d", got, tc.wantEffective)
			}
		})
	}
}

func TestOffer_FIFOAndBoundedByCapacity(t *testing.T) {
	const capacity = 40 // above initialQueueBuf, so the ring has to grow and wrap
	st := newState(spec("f", 1, capacity))
	next := 0
	// Interleave offers and polls so the ring wraps before it grows.
	for range 10 {
		if !st.offer(task("f", next)) {
			t.Fatal("offer refused below capacity")
		}
		next++
	}
	for i := range 5 {
		got, _ := st.poll()
		if got.ExecutionID != task("f", i).ExecutionID {
			t.Fatalf("poll %d = %s", i, got.ExecutionID)
		}
	}
	for st.offer(task("f", next)) {
		next++
	}
	if got := st.depth.Load(); got != capacity {
		t.Fatalf("depth = %d when full, want %d", got, capacity)
	}
	for i := 5; i < next; i++ {
		got, ok := st.poll()
		if !ok || got.ExecutionID != task("f", i).ExecutionID {
			t.Fatalf("poll = %v, want %s", got, task("f", i).ExecutionID)
		}
	}
	if _, ok := st.poll(); ok {
		t.Fatal("poll of an empty queue returned a task")
	}
	if len(st.tasks.buf) > capacity {
		t.Fatalf("buffer grew to %d, beyond capacity %d", len(st.tasks.buf), capacity)
	}
}

func TestCloseAndDrain_ReturnsQueuedInOrderAndRejectsLaterOffers(t *testing.T) {
	st := newState(spec("f", 1, 10))
	for i := range 3 {
		st.offer(task("f", i))
	}
	drained := st.closeAndDrain()
	if len(drained) != 3 {
		t.Fatalf("drained %d tasks, want 3", len(drained))
	}
	for i, d := range drained {
		if d.ExecutionID != task("f", i).ExecutionID {
			t.Fatalf("drained[%d] = %s", i, d.ExecutionID)
		}
	}
	if st.offer(task("f", 9)) {
		t.Fatal("offer to a closed queue accepted")
	}
	if st.depth.Load() != 0 {
		t.Fatal("depth not zero after drain")
	}
}

func TestControllerOf_DefaultsToFixedAndZero(t *testing.T) {
	fixed := function.ConcurrencyFixed
	static := function.ConcurrencyStaticPerPod
	for _, tc := range []struct {
		name       string
		sc         *function.ScalingConfig
		wantMode   function.ConcurrencyControlMode
		wantTarget int
	}{
		{"no scaling config", nil, fixed, 0},
		{"no concurrency control", &function.ScalingConfig{}, fixed, 0},
		{"mode unset", &function.ScalingConfig{ConcurrencyControl: &function.ConcurrencyControlConfig{TargetInFlightPerPod: ptr(3)}}, fixed, 3},
		{"static with target", &function.ScalingConfig{ConcurrencyControl: &function.ConcurrencyControlConfig{Mode: &static, TargetInFlightPerPod: ptr(4)}}, static, 4},
		{"negative target", &function.ScalingConfig{ConcurrencyControl: &function.ConcurrencyControlConfig{Mode: &static, TargetInFlightPerPod: ptr(-1)}}, static, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := spec("f", 1, 1)
			s.ScalingConfig = tc.sc
			mode, target := controllerOf(s)
			if mode != tc.wantMode || target != tc.wantTarget {
				t.Fatalf("controllerOf = (%s, %d), want (%s, %d)", mode, target, tc.wantMode, tc.wantTarget)
			}
		})
	}
}
