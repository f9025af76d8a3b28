package execution

import (
	"log/slog"
	"sync"
	"time"
)

// fakeClock is a manually advanced clock, safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newTestRecord(clock *fakeClock) *Record {
	trace := "trace-1"
	return NewRecord(Task{
		ExecutionID:  "exec-1",
		FunctionName: "echo",
		Request:      &Request{Input: []byte(`{"x":1}`)},
		TraceID:      &trace,
		EnqueuedAt:   clock.Now(),
		Attempt:      1,
	}, clock.Now, discardLogger())
}
