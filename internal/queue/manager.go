// Package queue is the async-queue module (spec-modules §1, spec-core §11.1): per-function
// bounded FIFO queues, the per-function dispatch-slot accounting shared by every queued path
// (async invokes, sync-queue dispatches, retries), the single scheduler goroutine that hands
// queued tasks to the core dispatcher while respecting each function's concurrency limit, the
// ScalingMetricsSource the autoscaler reads and steers, and the per-function queue gauges.
//
// Manager implements invocation.Enqueuer and registry.Listener; the lead wires it with
// invocation.Service.SetEnqueuer, adds it to the registry listeners and runs Manager.Run.
package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nanofaas/control-plane/internal/execution"
	"github.com/nanofaas/control-plane/internal/function"
	"github.com/nanofaas/control-plane/internal/invocation"
	"github.com/nanofaas/control-plane/internal/registry"
)

// The seams Manager plugs into.
var (
	_ invocation.Enqueuer = (*Manager)(nil)
	_ registry.Listener   = (*Manager)(nil)
)

// Removal error of executions still queued when their function is removed (spec-modules §1).
const (
	FunctionRemovedCode   = "FUNCTION_REMOVED"
	functionRemovedFormat = "Function '%s' was removed before queued execution could run"
)

// DispatchFunc runs one attempt of a queued task; the scheduler has already taken the task's
// dispatch slot, and the attempt's completion releases it. It must not block on the function
// (invocation.Service.Dispatch does not).
type DispatchFunc func(task *execution.Task)

// Deps are the collaborators of a Manager.
type Deps struct {
	// Store holds the executions; removal fails the queued ones it still finds there. Required.
	Store *execution.Store
	// Dispatch is the core dispatch (invocation.Service.Dispatch). Required.
	Dispatch DispatchFunc
	// Registerer receives the queue gauges' collector; nil registers nothing.
	Registerer prometheus.Registerer
	// Logger receives dispatch panics and loop errors; nil = slog.Default().
	Logger *slog.Logger
}

// Manager is the async-queue module: QueueManager, QueueBackedEnqueuer, QueueBackedMetricsSource,
// the registration listener and the Scheduler of the reference in one value. All methods are
// safe for concurrent use.
type Manager struct {
	store    *execution.Store
	dispatch DispatchFunc
	log      *slog.Logger

	// states maps name → *state: Enqueue, the slot methods and the scraper read it lock-free;
	// register/remove touch one entry under mu.
	states sync.Map
	mu     sync.Mutex

	work    workList
	running atomic.Bool   // one Run at a time
	turns   atomic.Uint64 // scheduler turns taken (observability for tests)
}

// NewManager returns a Manager with no functions and registers its gauges on d.Registerer.
func NewManager(d Deps) (*Manager, error) {
	if d.Store == nil || d.Dispatch == nil {
		return nil, errors.New("queue: Store and Dispatch are required")
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	m := &Manager{store: d.Store, dispatch: d.Dispatch, log: d.Logger, work: newWorkList()}
	if d.Registerer != nil {
		if err := d.Registerer.Register(newCollector(m)); err != nil {
			return nil, fmt.Errorf("register queue gauges: %w", err)
		}
	}
	return m, nil
}

func (m *Manager) lookup(fn string) *state {
	if v, ok := m.states.Load(fn); ok {
		return v.(*state)
	}
	return nil
}

// --- invocation.Enqueuer ---

// Enabled reports true: with this module loaded :enqueue is served and retries are queued.
func (m *Manager) Enabled() bool { return true }

// Enqueue appends task to its function's queue without blocking and wakes the scheduler. It
// returns false when the function has no queue, or its queue is closed or full.
func (m *Manager) Enqueue(task *execution.Task) bool {
	st := m.lookup(task.FunctionName)
	if st == nil || !st.offer(task) {
		return false
	}
	m.signal(st)
	return true
}

// HasAvailableSlot reports whether fn has a queue and inFlight < effective concurrency.
func (m *Manager) HasAvailableSlot(fn string) bool {
	st := m.lookup(fn)
	return st != nil && st.hasAvailableSlot()
}

// TryAcquireSlot takes a dispatch slot of fn if one is free; false for an unknown function.
func (m *Manager) TryAcquireSlot(fn string) bool {
	st := m.lookup(fn)
	return st != nil && st.tryAcquire()
}

// ReleaseDispatchSlot frees a dispatch slot of fn (never below zero) and, when tasks are
// waiting, wakes the scheduler for fn. Unknown functions are ignored.
func (m *Manager) ReleaseDispatchSlot(fn string) {
	st := m.lookup(fn)
	if st == nil {
		return
	}
	st.release()
	if st.depth.Load() > 0 {
		m.signal(st)
	}
}

// --- registry.Listener ---

// OnRegister creates the queue state (and with it the gauges) of spec's function. For a name
// that already has state it only applies the new concurrency, as the reference's getOrCreate.
func (m *Manager) OnRegister(_ context.Context, spec *function.Spec) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if st := m.lookup(spec.Name); st != nil {
		st.setConfigured(spec.ConcurrencyLimit())
		return nil
	}
	m.states.Store(spec.Name, newState(spec))
	return nil
}

// OnRemove removes fn's state (its gauges disappear with it), closes its queue so later
// offers are rejected, and fails every drained execution that is still stored and not terminal
// with FUNCTION_REMOVED, completing it so waiting callers return. In-flight executions are
// left alone. No success/error metrics are recorded for them.
func (m *Manager) OnRemove(_ context.Context, fn string) error {
	st := m.removeState(fn)
	if st == nil {
		return nil
	}
	drained := st.closeAndDrain()
	if len(drained) == 0 {
		return nil
	}
	errInfo := &execution.ErrorInfo{Code: FunctionRemovedCode, Message: fmt.Sprintf(functionRemovedFormat, fn)}
	result := execution.Result{Error: errInfo}
	for _, task := range drained {
		rec, ok := m.store.Get(task.ExecutionID)
		if !ok {
			continue
		}
		failed := false
		rec.WithLock(func(l *execution.Locked) {
			if !l.State().Terminal() {
				failed = l.MarkError(errInfo)
			}
		})
		if failed {
			rec.Complete(result)
		}
	}
	return nil
}

func (m *Manager) removeState(fn string) *state {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.states.LoadAndDelete(fn)
	if !ok {
		return nil
	}
	return v.(*state)
}

// --- ScalingMetricsSource ---

// QueueDepth returns the number of tasks queued for fn (0 if unknown). Items waiting in the
// sync queue are not counted, as in the reference.
func (m *Manager) QueueDepth(fn string) int {
	if st := m.lookup(fn); st != nil {
		return int(st.depth.Load())
	}
	return 0
}

// InFlight returns the dispatch slots of fn in use, sync-queue dispatches included (0 if
// unknown).
func (m *Manager) InFlight(fn string) int {
	if st := m.lookup(fn); st != nil {
		return int(st.inFlight.Load())
	}
	return 0
}

// SetEffectiveConcurrency sets fn's effective limit to clamp(n, 1, configured concurrency).
// Slots already taken above a lowered limit drain naturally. Unknown functions are ignored.
func (m *Manager) SetEffectiveConcurrency(fn string, n int) {
	if st := m.lookup(fn); st != nil {
		st.setEffective(n)
	}
}

// UpdateConcurrencyController records the autoscaler's controller mode and per-pod target for
// the gauges (an unknown mode counts as FIXED; a negative target as 0). Unlike the reference,
// which would create gauges for an unknown function here, unknown functions are ignored so a
// late autoscaler tick cannot resurrect a removed function's series.
func (m *Manager) UpdateConcurrencyController(fn string, mode function.ConcurrencyControlMode, targetPerPod int) {
	st := m.lookup(fn)
	if st == nil {
		return
	}
	st.mode.Store(modeIndex(mode))
	st.target.Store(int64(max(0, targetPerPod)))
}
