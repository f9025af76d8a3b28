package queue

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/nanofaas/control-plane/internal/execution"
	"github.com/nanofaas/control-plane/internal/function"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

func ptr[T any](v T) *T { return &v }

// spec returns a resolved-enough spec for the queue: name, concurrency and queue size.
func spec(name string, concurrency, queueSize int) *function.Spec {
	return &function.Spec{
		Name:          name,
		Concurrency:   ptr(concurrency),
		QueueSize:     ptr(queueSize),
		MaxRetries:    ptr(1),
		TimeoutMs:     ptr(30000),
		ExecutionMode: ptr(function.ModeLocal),
	}
}

func task(fn string, i int) *execution.Task {
	return &execution.Task{ExecutionID: fmt.Sprintf("%s-%d", fn, i), FunctionName: fn, Attempt: 1}
}

// recorder is a dispatch hook that records every dispatched task in order. When release is
// set it frees the task's slot right away (an instantly completing function).
type recorder struct {
	mu      sync.Mutex
	tasks   []*execution.Task
	release bool
	m       *Manager
	onTask  func(n int, t *execution.Task) // optional, called after recording, outside mu
}

func (r *recorder) dispatch(t *execution.Task) {
	r.mu.Lock()
	r.tasks = append(r.tasks, t)
	n := len(r.tasks)
	r.mu.Unlock()
	if r.onTask != nil {
		r.onTask(n, t)
	}
	if r.release {
		r.m.ReleaseDispatchSlot(t.FunctionName)
	}
}

func (r *recorder) ids() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.tasks))
	for i, t := range r.tasks {
		out[i] = t.ExecutionID
	}
	return out
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.tasks)
}

// newManager returns a Manager over a fresh store dispatching into rec (which may be nil for
// tests that never run the scheduler).
func newManager(t testing.TB, rec *recorder) (*Manager, *execution.Store) {
	t.Helper()
	store := execution.NewStore(execution.StoreConfig{}, nil)
	hook := func(*execution.Task) {}
	if rec != nil {
		hook = rec.dispatch
	}
	m, err := NewManager(Deps{Store: store, Dispatch: hook, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	if rec != nil {
		rec.m = m
	}
	return m, store
}

func register(t testing.TB, m *Manager, specs ...*function.Spec) {
	t.Helper()
	for _, s := range specs {
		if err := m.OnRegister(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
}

// startScheduler runs m.Run in an owned goroutine and stops it (waiting for it) at cleanup.
func startScheduler(t testing.TB, m *Manager) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run returned %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitFor polls cond until it holds or fails the test after 5 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitIdle waits until the scheduler's turn counter stops moving for a few milliseconds; a
// spinning scheduler never gets there.
func waitIdle(t testing.TB, m *Manager) uint64 {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	last := m.turns.Load()
	for {
		time.Sleep(20 * time.Millisecond)
		cur := m.turns.Load()
		if cur == last {
			return cur
		}
		if time.Now().After(deadline) {
			t.Fatalf("scheduler never went idle: %d turns", cur)
		}
		last = cur
	}
}
