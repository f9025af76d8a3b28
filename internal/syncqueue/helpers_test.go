package syncqueue

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/nanofaas/control-plane/internal/config"
	"github.com/nanofaas/control-plane/internal/execution"
	"github.com/nanofaas/control-plane/internal/function"
	"github.com/nanofaas/control-plane/internal/invocation"
)

// The scheduler and the D12 end-to-end test start goroutines; none may outlive the tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var quietLog = slog.New(slog.DiscardHandler)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// liveConfig is a ConfigSource whose knobs tests change at run time, as runtime-config would.
type liveConfig struct {
	enabled, admission atomic.Bool
	maxEst, maxWait    atomic.Int64
	retryAfter         atomic.Int64
}

func newLiveConfig(c StaticConfig) *liveConfig {
	l := &liveConfig{}
	l.enabled.Store(c.Enabled)
	l.admission.Store(c.AdmissionEnabled)
	l.maxEst.Store(int64(c.MaxEstimatedWait))
	l.maxWait.Store(int64(c.MaxQueueWait))
	l.retryAfter.Store(int64(c.RetryAfterSeconds))
	return l
}

func (l *liveConfig) SyncQueueEnabled() bool          { return l.enabled.Load() }
func (l *liveConfig) SyncQueueAdmissionEnabled() bool { return l.admission.Load() }
func (l *liveConfig) SyncQueueMaxEstimatedWait() time.Duration {
	return time.Duration(l.maxEst.Load())
}
func (l *liveConfig) SyncQueueMaxQueueWait() time.Duration { return time.Duration(l.maxWait.Load()) }
func (l *liveConfig) SyncQueueRetryAfterSeconds() int      { return int(l.retryAfter.Load()) }

// countingSlots is a Slots (and invocation.Enqueuer, disabled) with per-function limits that
// counts acquisitions and releases, so tests can prove no slot leaks.
type countingSlots struct {
	mu           sync.Mutex
	defaultLimit int
	limits       map[string]int
	inFlight     map[string]int
	acquired     int
	released     int
	failAcquire  bool // TryAcquireSlot loses every race even when HasAvailableSlot said yes
}

func newCountingSlots(defaultLimit int) *countingSlots {
	return &countingSlots{defaultLimit: defaultLimit, limits: map[string]int{}, inFlight: map[string]int{}}
}

func (c *countingSlots) limit(fn string) int {
	if l, ok := c.limits[fn]; ok {
		return l
	}
	return c.defaultLimit
}

func (c *countingSlots) SetLimit(fn string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.limits[fn] = n
}

func (c *countingSlots) HasAvailableSlot(fn string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inFlight[fn] < c.limit(fn)
}

func (c *countingSlots) TryAcquireSlot(fn string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failAcquire || c.inFlight[fn] >= c.limit(fn) {
		return false
	}
	c.inFlight[fn]++
	c.acquired++
	return true
}

func (c *countingSlots) ReleaseDispatchSlot(fn string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inFlight[fn] > 0 {
		c.inFlight[fn]--
	}
	c.released++
}

// Enabled and Enqueue make countingSlots an invocation.Enqueuer without an async queue (D2:
// retries are re-dispatched directly).
func (c *countingSlots) Enabled() bool                { return false }
func (c *countingSlots) Enqueue(*execution.Task) bool { return false }

func (c *countingSlots) totalInFlight() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.inFlight {
		n += v
	}
	return n
}

func (c *countingSlots) counts() (acquired, released int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.acquired, c.released
}

// defaultSettings are the shipped sync-queue.* defaults.
func defaultSettings() config.SyncQueue {
	return config.SyncQueue{
		Enabled: true, AdmissionEnabled: true, MaxDepth: 200,
		MaxEstimatedWait: 2 * time.Second, MaxQueueWait: 2 * time.Second, RetryAfterSeconds: 2,
		ThroughputWindow: 30 * time.Second, PerFunctionMinSamples: 50,
	}
}

// fixture is a Service on a fake clock with counting slots, a live config, a metrics registry
// and a dispatch hook that records tasks (and acquires nothing itself: the scheduler did).
type fixture struct {
	t     testing.TB
	clock *fakeClock
	store *execution.Store
	slots *countingSlots
	cfg   *liveConfig
	reg   *prometheus.Registry
	svc   *Service

	mu         sync.Mutex
	dispatched []*execution.Task
	onDispatch func(*execution.Task)
	seq        int
}

func newFixture(t testing.TB, settings config.SyncQueue) *fixture {
	t.Helper()
	f := &fixture{
		t:     t,
		clock: newFakeClock(),
		slots: newCountingSlots(1 << 30),
		cfg:   newLiveConfig(NewStaticConfig(settings)),
		reg:   prometheus.NewRegistry(),
	}
	f.store = execution.NewStore(execution.StoreConfig{}, f.clock.Now)
	svc, err := New(Deps{
		Settings: settings, Config: f.cfg, Slots: f.slots, Dispatch: f.dispatch,
		Store: f.store, Registerer: f.reg, Now: f.clock.Now, Logger: quietLog,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	f.svc = svc
	return f
}

func (f *fixture) dispatch(task *execution.Task) {
	f.mu.Lock()
	f.dispatched = append(f.dispatched, task)
	hook := f.onDispatch
	f.mu.Unlock()
	if hook != nil {
		hook(task)
	}
}

func (f *fixture) dispatchedIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := make([]string, len(f.dispatched))
	for i, t := range f.dispatched {
		ids[i] = t.ExecutionID
	}
	return ids
}

// newTask creates an execution of fn in the store and returns its task.
func (f *fixture) newTask(fn string) *execution.Task {
	f.mu.Lock()
	f.seq++
	id := fmt.Sprintf("%s-%d", fn, f.seq)
	f.mu.Unlock()
	timeout, retries, mode := 30000, 0, function.ModeLocal
	task := execution.Task{
		ExecutionID: id, FunctionName: fn, Attempt: 1, EnqueuedAt: f.clock.Now(),
		Spec:    &function.Spec{Name: fn, ExecutionMode: &mode, TimeoutMs: &timeout, MaxRetries: &retries},
		Request: &execution.Request{},
	}
	rec := execution.NewRecord(task, f.clock.Now, quietLog)
	f.store.Put(rec)
	return rec.Task()
}

// enqueue admits a new execution of fn, failing the test on rejection.
func (f *fixture) enqueue(fn string) *execution.Task {
	f.t.Helper()
	task := f.newTask(fn)
	if err := f.svc.Enqueue(task); err != nil {
		f.t.Fatalf("Enqueue(%s): %v", fn, err)
	}
	return task
}

func (f *fixture) record(task *execution.Task) *execution.Record {
	f.t.Helper()
	rec, ok := f.store.Get(task.ExecutionID)
	if !ok {
		f.t.Fatalf("record %s not in store", task.ExecutionID)
	}
	return rec
}

func (f *fixture) depth() int {
	f.svc.mu.Lock()
	defer f.svc.mu.Unlock()
	return f.svc.q.len()
}

// rejectReason returns the reason of a *SyncQueueRejectedError, failing on any other error.
func rejectReason(t testing.TB, err error) (invocation.RejectReason, int) {
	t.Helper()
	var rej *invocation.SyncQueueRejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("error = %v, want *SyncQueueRejectedError", err)
	}
	return rej.Reason, rej.RetryAfterSeconds
}

// seedDispatchEvents records n dispatch events of fn at the fake clock's current time, as if
// the scheduler had dispatched them.
func (f *fixture) seedDispatchEvents(fn string, n int) {
	now := f.clock.Now()
	f.svc.mu.Lock()
	defer f.svc.mu.Unlock()
	st := f.svc.fns[fn]
	if st == nil {
		st = &fnState{wait: newWaitTimer(now)}
		f.svc.fns[fn] = st
	}
	for range n {
		f.svc.global.record(now)
		st.events.record(now)
	}
}
