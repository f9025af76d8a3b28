package syncqueue

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nanofaas/control-plane/internal/execution"
	"github.com/nanofaas/control-plane/internal/invocation"
)

// startRun runs the scheduler until the test ends and checks that it stops cleanly.
func (f *fixture) startRun(t *testing.T) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.svc.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not stop after cancel")
		}
	}
	t.Cleanup(stop)
	return stop
}

// eventually polls cond for up to 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestRun_DispatchesEnqueuedWorkAndStopsOnCancel(t *testing.T) {
	f := newFixture(t, schedulerSettings())
	stop := f.startRun(t)
	a := f.enqueue("fn")
	b := f.enqueue("fn")
	eventually(t, "both items dispatched", func() bool { return len(f.dispatchedIDs()) == 2 })
	if ids := f.dispatchedIDs(); ids[0] != a.ExecutionID || ids[1] != b.ExecutionID {
		t.Fatalf("dispatch order %v, want FIFO", ids)
	}
	stop()
}

func TestRun_RefusesASecondConcurrentRunAndIsRestartable(t *testing.T) {
	f := newFixture(t, schedulerSettings())
	stop := f.startRun(t)
	eventually(t, "scheduler running", f.svc.running.Load)
	if err := f.svc.Run(context.Background()); !errors.Is(err, errAlreadyRunning) {
		t.Fatalf("second Run = %v, want errAlreadyRunning", err)
	}
	stop()
	if f.svc.running.Load() {
		t.Fatal("running flag still set after stop")
	}
	f.startRun(t)
	f.enqueue("fn")
	eventually(t, "dispatch after restart", func() bool { return len(f.dispatchedIDs()) == 1 })
}

func TestRun_SaturatedFunctionDoesNotStallOthers(t *testing.T) {
	f := newFixture(t, schedulerSettings())
	f.slots.SetLimit("hot", 1) // the hot function's single slot is never released below
	f.startRun(t)
	for range 100 {
		f.enqueue("hot")
	}
	cold := f.enqueue("cold")
	eventually(t, "the cold item dispatched behind the saturated backlog", func() bool {
		for _, id := range f.dispatchedIDs() {
			if id == cold.ExecutionID {
				return true
			}
		}
		return false
	})
	if n := len(f.dispatchedIDs()); n != 2 {
		t.Fatalf("dispatched %d items, want 2 (one hot, one cold)", n)
	}
}

func TestRun_SchedulerWorksWhateverEnabledSaysSoItCanBeToggledLive(t *testing.T) {
	// D19: the module starts disabled and is switched on and off at run time.
	s := schedulerSettings()
	s.Enabled = false
	f := newFixture(t, s)
	f.startRun(t)
	if f.svc.Enabled() {
		t.Fatal("Enabled() = true with sync-queue.enabled=false")
	}

	f.cfg.enabled.Store(true)
	if !f.svc.Enabled() {
		t.Fatal("Enabled() did not follow the live switch")
	}
	first := f.enqueue("fn")
	eventually(t, "dispatch after enabling live", func() bool { return len(f.dispatchedIDs()) == 1 })

	// Items admitted before switching off are still timed out (or dispatched), never stranded.
	f.slots.SetLimit("fn", 0)
	stranded := f.enqueue("fn")
	f.cfg.enabled.Store(false)
	f.clock.Advance(3 * time.Second)
	eventually(t, "queue timeout after disabling", func() bool {
		out, done := f.record(stranded).Outcome()
		return done && out.Error != nil && out.Error.Code == invocation.QueueTimeoutCode
	})
	if f.dispatchedIDs()[0] != first.ExecutionID {
		t.Fatal("unexpected dispatch")
	}
}

func TestRun_KeepsDispatchingAfterADispatchPanic(t *testing.T) {
	f := newFixture(t, schedulerSettings())
	f.onDispatch = func(task *execution.Task) {
		if task.FunctionName == "boom" {
			panic("dispatch exploded")
		}
	}
	f.startRun(t)
	f.enqueue("boom")
	ok := f.enqueue("ok")
	eventually(t, "dispatch after a panic", func() bool {
		ids := f.dispatchedIDs()
		return len(ids) == 2 && ids[1] == ok.ExecutionID
	})
	eventually(t, "the panicking dispatch's slot released", func() bool {
		_, rel := f.slots.counts()
		return rel == 1
	})
}
