package queue

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/nanofaas/control-plane/internal/execution"
)

// maxBatchPerFunction bounds the dispatches of one function per scheduler turn, so a deep
// backlog cannot starve other functions (the reference's MAX_BATCH_PER_FUNCTION).
const maxBatchPerFunction = 2

// ErrAlreadyRunning is returned by Run while another Run of the same Manager is active.
var ErrAlreadyRunning = errors.New("queue: scheduler already running")

// workList is the scheduler's FIFO of functions with work. De-duplication is the state's
// signalled flag (a function is in the list at most once), so signalling allocates nothing.
type workList struct {
	mu    sync.Mutex
	items ring[*state]
	// wake holds at most one pending wake-up: a signal arriving while the scheduler is busy is
	// kept, and a sleeping scheduler is woken without polling.
	wake chan struct{}
}

func newWorkList() workList { return workList{wake: make(chan struct{}, 1)} }

func (w *workList) push(st *state) {
	w.mu.Lock()
	w.items.push(st, 0)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *workList) pop() *state {
	w.mu.Lock()
	defer w.mu.Unlock()
	st, _ := w.items.pop()
	return st
}

// signal appends st to the work list unless it is already there (the reference's signalWork).
func (m *Manager) signal(st *state) {
	if st.signalled.CompareAndSwap(false, true) {
		m.work.push(st)
	}
}

// Run is the scheduler loop (the reference's nanofaas-scheduler thread). It takes functions
// from the work list in FIFO order and gives each a turn of at most two dispatches; it sleeps
// on a channel while the list is empty, so an idle or fully blocked scheduler burns no CPU.
// It returns nil when ctx ends (after finishing the current turn; dispatch never blocks), and
// may be called again afterwards. Concurrent calls return ErrAlreadyRunning.
func (m *Manager) Run(ctx context.Context) error {
	if !m.running.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	defer m.running.Store(false)
	m.log.Info("async-queue scheduler started")
	defer m.log.Info("async-queue scheduler stopped")
	for ctx.Err() == nil {
		st := m.work.pop()
		if st == nil {
			select {
			case <-ctx.Done():
			case <-m.work.wake:
			}
			continue
		}
		// Cleared before the turn: a signal racing with the turn re-queues the function
		// instead of being lost.
		st.signalled.Store(false)
		m.turn(st)
	}
	return nil
}

// turn dispatches up to maxBatchPerFunction tasks of st while slots are free, then re-queues st
// at the back of the work list if backlog remains and it made progress. A function blocked on
// slots is not re-queued: a slot release or a new enqueue signals it again. A turn is not
// interrupted by cancellation: it is at most two non-blocking dispatches.
func (m *Manager) turn(st *state) {
	m.turns.Add(1)
	if st.closed.Load() {
		return // removed: its queue was drained
	}
	dispatched := 0
	for dispatched < maxBatchPerFunction && st.tryAcquire() {
		task, ok := st.poll()
		if !ok {
			st.release()
			break
		}
		dispatched++
		m.safeDispatch(st, task)
	}
	if dispatched > 0 && st.depth.Load() > 0 {
		m.signal(st)
	}
}

// safeDispatch calls the dispatch hook; a panic releases the task's slot and is logged, and the
// loop carries on.
func (m *Manager) safeDispatch(st *state, task *execution.Task) {
	defer func() {
		if v := recover(); v != nil {
			st.release()
			m.log.Error("async-queue dispatch failed", "function", st.name,
				"executionId", task.ExecutionID, "error", fmt.Sprint(v))
		}
	}()
	m.dispatch(task)
}
