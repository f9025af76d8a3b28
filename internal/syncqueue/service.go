// Package syncqueue owns the sync-queue module (spec-modules §2): admission control for
// synchronous invocations (global depth limit and estimated-wait load shedding, DECISIONS D11),
// the single global FIFO they wait in, the wait estimator fed by sync dispatches, the scheduler
// that dispatches queued items as dispatch slots free up and times out items that waited too
// long, the module's registration listener, and its sync_queue_* metrics. It implements
// invocation.SyncQueueGateway.
package syncqueue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nanofaas/control-plane/internal/config"
	"github.com/nanofaas/control-plane/internal/execution"
	"github.com/nanofaas/control-plane/internal/function"
	"github.com/nanofaas/control-plane/internal/invocation"
	"github.com/nanofaas/control-plane/internal/registry"
)

// Completion error codes and messages (spec-modules §1, §2).
const (
	codeFunctionRemoved = "FUNCTION_REMOVED"
	messageQueueTimeout = "Queue wait exceeded"
)

// Deps are a Service's collaborators and start-up settings.
type Deps struct {
	// Settings are the sync-queue.* start-up properties. MaxDepth, ThroughputWindow and
	// PerFunctionMinSamples are fixed for the process; the other five come from Config.
	Settings config.SyncQueue
	// Config supplies the live knobs; nil = NewStaticConfig(Settings).
	Config ConfigSource
	// Slots is the dispatch-slot accounting; nil = invocation.NoopEnqueuer{} (unlimited).
	Slots Slots
	// Dispatch runs one queued task (invocation.Service.Dispatch). Required.
	Dispatch func(*execution.Task)
	// Store holds the executions that queue timeouts and removals resolve. Required.
	Store *execution.Store
	// Registerer receives the sync_queue_* collector; nil = not exported.
	Registerer prometheus.Registerer
	// Now is the clock for admission times, the estimator and timeouts; nil = time.Now.
	Now func() time.Time
	// Logger; nil = slog.Default().
	Logger *slog.Logger
}

// fnState is one function's part of the module: queued count, estimator events, removed mark
// and meters. Guarded by Service.mu.
type fnState struct {
	removed bool
	queued  int
	events  eventWindow

	created                      meterSet
	admitted, rejected, timedOut uint64
	wait                         waitTimer
}

// Service is the sync-queue module. Enqueue is called by the invocation flow on every sync
// invocation while Enabled; Run is the scheduler, which must run for as long as the module is
// loaded, whatever Enabled says (DECISIONS D19).
//
// All queue, estimator and meter state sits behind one mutex: admission must read the depth,
// the estimator and append atomically anyway, and one short critical section per request is
// cheaper than three.
type Service struct {
	cfg        ConfigSource
	maxDepth   int
	window     time.Duration
	windowSecs uint64
	minSamples int
	slots      Slots
	dispatch   func(*execution.Task)
	store      *execution.Store
	now        func() time.Time
	log        *slog.Logger

	// wake tells the scheduler that work arrived; one pending signal is enough.
	wake chan struct{}
	// blocked is true while the scheduler sleeps its backoff with work queued (SlotReleased).
	blocked atomic.Bool
	running atomic.Bool

	mu     sync.Mutex
	q      ring
	fns    map[string]*fnState
	global eventWindow
	wait   waitTimer

	// Scheduler-owned: touched only by the goroutine in Run (or a test driving step).
	backoff time.Duration
	expired []item
}

var (
	_ invocation.SyncQueueGateway = (*Service)(nil)
	_ registry.Listener           = (*Service)(nil)
)

// New returns a Service and registers its metrics on d.Registerer.
func New(d Deps) (*Service, error) {
	if d.Dispatch == nil || d.Store == nil {
		return nil, errors.New("syncqueue: Dispatch and Store are required")
	}
	if d.Config == nil {
		d.Config = NewStaticConfig(d.Settings)
	}
	if d.Slots == nil {
		d.Slots = invocation.NoopEnqueuer{}
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	s := &Service{
		cfg:        d.Config,
		maxDepth:   d.Settings.MaxDepth,
		window:     d.Settings.ThroughputWindow,
		windowSecs: windowSeconds(d.Settings.ThroughputWindow),
		minSamples: d.Settings.PerFunctionMinSamples,
		slots:      d.Slots,
		dispatch:   d.Dispatch,
		store:      d.Store,
		now:        d.Now,
		log:        d.Logger,
		wake:       make(chan struct{}, 1),
		fns:        make(map[string]*fnState),
		wait:       newWaitTimer(d.Now()),
		backoff:    minBackoff,
	}
	if d.Registerer != nil {
		if err := d.Registerer.Register(newCollector(s)); err != nil {
			return nil, fmt.Errorf("syncqueue: register metrics: %w", err)
		}
	}
	return s, nil
}

// Enabled reports the live sync-queue.enabled: whether sync invocations go through this queue.
func (s *Service) Enabled() bool { return s.cfg.SyncQueueEnabled() }

// RetryAfterSeconds reports the live sync-queue.retry-after-seconds (the 429 Retry-After).
func (s *Service) RetryAfterSeconds() int { return s.cfg.SyncQueueRetryAfterSeconds() }

// Enqueue admits task into the queue or returns a *invocation.SyncQueueRejectedError with reason
// depth or est_wait (spec-modules §2 "Admission"). For a removed function the execution is failed
// with FUNCTION_REMOVED and the reason is depth. Admission takes no dispatch slot: the scheduler
// acquires one when it dispatches the item (D12), so a caller that goes away leaks nothing.
func (s *Service) Enqueue(task *execution.Task) error {
	now := s.now()
	in := admissionInput{
		maxDepth:         s.maxDepth,
		admissionEnabled: s.cfg.SyncQueueAdmissionEnabled(),
		maxEstimatedWait: s.cfg.SyncQueueMaxEstimatedWait(),
		minSamples:       s.minSamples,
		windowSeconds:    s.windowSecs,
	}
	cutoff := now.Add(-s.window)

	s.mu.Lock()
	st := s.fns[task.FunctionName]
	if st == nil {
		st = &fnState{wait: newWaitTimer(now)}
		s.fns[task.FunctionName] = st
	}
	if st.removed {
		s.mu.Unlock()
		s.failRemoved(task)
		return s.rejection(invocation.RejectDepth)
	}
	in.depth = s.q.len()
	if in.admissionEnabled {
		in.globalSamples = s.global.prune(cutoff)
		in.fnSamples = st.events.prune(cutoff)
	}
	v := decide(in)
	if v != admit {
		st.rejected++
		st.created |= meterRejected
		s.mu.Unlock()
		if v == rejectDepth {
			return s.rejection(invocation.RejectDepth)
		}
		return s.rejection(invocation.RejectEstWait)
	}
	st.admitted++
	st.created |= meterDepth | meterAdmitted
	// Fast path: with nothing queued ahead and a free slot, the scheduler would pick this item on
	// its very next tick; dispatching it here saves that goroutine hand-off (and its wake-up) on
	// every uncontended request. Only while the scheduler runs, so the queue keeps its meaning.
	if s.q.len() == 0 && s.running.Load() && s.slots.TryAcquireSlot(task.FunctionName) {
		s.recordDispatch(st, 0, now)
		s.mu.Unlock()
		s.dispatchTask(task)
		return nil
	}
	s.q.pushBack(item{task: task, fn: st, at: now})
	st.queued++
	s.mu.Unlock()

	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

func (s *Service) rejection(r invocation.RejectReason) error {
	return &invocation.SyncQueueRejectedError{Reason: r, RetryAfterSeconds: s.cfg.SyncQueueRetryAfterSeconds()}
}

// OnRegister un-marks a removed function and creates its depth gauge (registry.Listener).
func (s *Service) OnRegister(_ context.Context, spec *function.Spec) error {
	s.RegisterFunction(spec.Name)
	return nil
}

// OnRemove is RemoveFunction (registry.Listener).
func (s *Service) OnRemove(_ context.Context, name string) error {
	s.RemoveFunction(name)
	return nil
}

// RegisterFunction clears fn's removed mark (its meters start afresh) and creates its depth gauge.
func (s *Service) RegisterFunction(fn string) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.fns[fn]
	if st == nil || st.removed {
		st = &fnState{wait: newWaitTimer(now)}
		s.fns[fn] = st
	}
	st.created |= meterDepth
}

// RemoveFunction is the reference's removeFunctionState: it marks fn removed (further admissions
// are refused), takes its items out of the queue and fails their executions with
// FUNCTION_REMOVED, drops its estimator events and deletes its meters until it is registered
// again. Items already dispatched are left alone.
func (s *Service) RemoveFunction(fn string) {
	s.mu.Lock()
	st := s.fns[fn]
	var drained []item
	if st != nil && !st.removed {
		drained = s.q.removeFn(st, nil)
	}
	// A fresh tombstone: no meters, no events, nothing queued.
	s.fns[fn] = &fnState{removed: true}
	s.mu.Unlock()
	for i := range drained {
		s.failRemoved(drained[i].task)
	}
}

// failRemoved resolves a queued execution of a removed function, as the async queue does.
func (s *Service) failRemoved(task *execution.Task) {
	rec, ok := s.store.Get(task.ExecutionID)
	if !ok {
		return
	}
	info := &execution.ErrorInfo{
		Code:    codeFunctionRemoved,
		Message: "Function '" + task.FunctionName + "' was removed before queued execution could run",
	}
	failed := false
	rec.WithLock(func(l *execution.Locked) {
		if !l.State().Terminal() {
			failed = l.MarkError(info)
		}
	})
	if failed {
		rec.Complete(execution.Result{Error: info})
	}
}

// timeOut resolves an execution whose item exceeded the queue wait: TIMEOUT unless already
// terminal, and the completion QUEUE_TIMEOUT, which a still-waiting caller turns into 429 timeout.
func (s *Service) timeOut(task *execution.Task) {
	rec, ok := s.store.Get(task.ExecutionID)
	if !ok {
		return
	}
	rec.WithLock(func(l *execution.Locked) {
		if !l.State().Terminal() {
			l.MarkTimeout()
		}
	})
	rec.Complete(execution.ErrorResult(invocation.QueueTimeoutCode, messageQueueTimeout))
}
