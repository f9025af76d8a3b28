package autoscaler

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeTicker hands the loop a channel the test sends ticks on.
type fakeTicker struct {
	ch      chan time.Time
	started chan time.Duration // receives the requested interval
	mu      sync.Mutex
	stopped bool
}

func newFakeTicker() *fakeTicker {
	return &fakeTicker{ch: make(chan time.Time), started: make(chan time.Duration, 1)}
}

func (f *fakeTicker) new(d time.Duration) (<-chan time.Time, func()) {
	f.started <- d
	return f.ch, func() {
		f.mu.Lock()
		f.stopped = true
		f.mu.Unlock()
	}
}

func (f *fakeTicker) isStopped() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stopped
}

// runScaler starts s.Run and returns a function that cancels it and returns Run's error.
func runScaler(t *testing.T, s *Scaler) func() error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	return func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after cancellation")
			return nil
		}
	}
}

func newTickedHarness(t *testing.T, interval time.Duration, ticker func(time.Duration) (<-chan time.Time, func())) *harness {
	t.Helper()
	h := &harness{clock: newClock(), replicas: newReplicas(), fns: &fakeLister{}, source: newSource(), disp: &fakeDispatches{}}
	h.replicas.notified = make(chan setCall, 16)
	s, err := New(Deps{
		Functions: h.fns, Replicas: h.replicas, Dispatches: h.disp, Metrics: h.source,
		PollInterval: interval, Logger: quietLog, Now: h.clock.Now, NewTicker: ticker,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.s = s
	return h
}

func waitSet(t *testing.T, h *harness) setCall {
	t.Helper()
	select {
	case c := <-h.replicas.notified:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no SetReplicas call")
		return setCall{}
	}
}

func TestRun_EvaluatesOnEveryTickUntilCancelled(t *testing.T) {
	ft := newFakeTicker()
	h := newTickedHarness(t, 250*time.Millisecond, ft.new)
	h.register(t, managed(deploymentSpec(t, "echo", 4, internalScaling(1, 10, metric("queue_depth", "5")))))
	h.replicas.setReady("echo", 1)
	h.source.setDepth("echo", 15)
	stop := runScaler(t, h.s)

	if d := <-ft.started; d != 250*time.Millisecond {
		t.Fatalf("ticker interval = %v, want the poll interval", d)
	}
	ft.ch <- t0
	if c := waitSet(t, h); c != (setCall{"echo", 3}) {
		t.Fatalf("first tick: %v", c)
	}
	h.clock.Advance(30 * time.Second) // 3 ready, depth 30 → 10 (max) once the up cooldown is over
	h.source.setDepth("echo", 30)
	ft.ch <- t0
	if c := waitSet(t, h); c != (setCall{"echo", 10}) {
		t.Fatalf("second tick: %v", c)
	}

	if err := stop(); err != nil {
		t.Fatalf("Run returned %v on cancellation, want nil", err)
	}
	if !ft.isStopped() {
		t.Fatal("ticker not stopped")
	}
}

func TestRun_PollIntervalDefaultsTo5Seconds(t *testing.T) {
	rows := []struct {
		configured time.Duration
		want       time.Duration
	}{{0, 5 * time.Second}, {-time.Second, 5 * time.Second}, {1500 * time.Millisecond, 1500 * time.Millisecond}}
	for _, r := range rows {
		ft := newFakeTicker()
		h := newTickedHarness(t, r.configured, ft.new)
		stop := runScaler(t, h.s)
		if d := <-ft.started; d != r.want {
			t.Errorf("poll interval %v: ticker interval %v, want %v", r.configured, d, r.want)
		}
		must(t, stop())
	}
}

func TestRun_FirstTickComesOneIntervalAfterStart(t *testing.T) {
	const interval = 100 * time.Millisecond
	h := newTickedHarness(t, interval, nil) // real ticker
	h.register(t, managed(deploymentSpec(t, "echo", 4, internalScaling(1, 10, metric("queue_depth", "5")))))
	h.replicas.setReady("echo", 1)
	h.source.setDepth("echo", 15)

	start := time.Now()
	stop := runScaler(t, h.s)
	waitSet(t, h)
	if elapsed := time.Since(start); elapsed < interval {
		t.Fatalf("first evaluation after %v, want ≥ %v", elapsed, interval)
	}
	must(t, stop())
}

func TestRun_ConcurrentRunIsRefused(t *testing.T) {
	ft := newFakeTicker()
	h := newTickedHarness(t, time.Second, ft.new)
	stop := runScaler(t, h.s)
	<-ft.started

	if err := h.s.Run(context.Background()); !errors.Is(err, ErrAlreadyRunning) {
		t.Fatalf("second Run = %v, want ErrAlreadyRunning", err)
	}
	must(t, stop())

	// Once stopped it may run again.
	stop = runScaler(t, h.s)
	<-ft.started
	must(t, stop())
}

func TestRun_RegistrationsRacingTicksAreSafe(t *testing.T) {
	ft := newFakeTicker()
	h := newTickedHarness(t, time.Second, ft.new)
	h.replicas.notified = nil
	stop := runScaler(t, h.s)
	<-ft.started

	ctx := context.Background()
	reg := managed(deploymentSpec(t, "echo", 4, internalScaling(0, 10, metric("queue_depth", "5"), metric("rps", "1"))))
	h.fns.regs = append(h.fns.regs, reg) // stays listed: ticks see it with and without state
	h.source.setDepth("echo", 50)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 200 {
			_ = h.s.OnRegister(ctx, reg.Spec)
			h.disp.add("echo", 1)
			_ = h.s.OnRemove(ctx, "echo")
		}
	}()
	for range 200 {
		ft.ch <- t0
		h.clock.Advance(time.Second)
	}
	<-done
	must(t, stop())

	h.s.mu.Lock()
	n := len(h.s.entries)
	h.s.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d entries left after the last OnRemove", n)
	}
}
