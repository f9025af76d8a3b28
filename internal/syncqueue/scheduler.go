package syncqueue

import (
	"context"
	"errors"
	"time"

	"github.com/nanofaas/control-plane/internal/execution"
)

// Scheduler constants (spec-modules §2 "Scheduler", §9).
const (
	scanWindow = 64                    // POLL_READY_MATCHING_SCAN_LIMIT
	idleWait   = 2 * time.Millisecond  // the reference's poll of an empty queue (Run blocks instead)
	minBackoff = 2 * time.Millisecond  // first wait when work is blocked
	maxBackoff = 50 * time.Millisecond // backoff cap
)

// errAlreadyRunning is returned by a second concurrent Run.
var errAlreadyRunning = errors.New("syncqueue: scheduler already running")

// Run is the sync scheduler: it dispatches queued items whose function has a free dispatch slot,
// oldest first but without head-of-line blocking, and times out items that waited longer than the
// live max-queue-wait. It runs until ctx ends, then returns nil; it may be started again later.
// At most one Run may be active at a time.
func (s *Service) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errAlreadyRunning
	}
	defer s.running.Store(false)
	s.backoff = minBackoff
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		default:
		}
		t := s.safeStep(s.now())
		if t.wait <= 0 {
			continue // dispatched: look for the next item at once
		}
		// An empty queue has nothing to dispatch or time out, so it sleeps until an enqueue wakes
		// it instead of polling every 2 ms (which cost ~40 ms of CPU per idle second). A blocked
		// queue waits its backoff, cut short by new work for a function that may have free slots.
		if t.idle {
			select {
			case <-ctx.Done():
				return nil
			case <-s.wake:
			}
			continue
		}
		timer.Reset(t.wait)
		s.blocked.Store(true)
		select {
		case <-ctx.Done():
			s.blocked.Store(false)
			return nil
		case <-s.wake:
		case <-timer.C:
		}
		s.blocked.Store(false)
	}
}

// SlotReleased wakes a scheduler that is backing off because every queued item's function was
// out of dispatch slots: a completion just freed one. The reference only polls (2 to 50 ms), so
// under saturation queued items waited for the next poll although a slot was free; this keeps
// the backoff for spurious wake-ups and costs nothing when the scheduler is not blocked.
func (s *Service) SlotReleased() {
	if s.blocked.Load() {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// tick is what one scheduler step did.
type tick struct {
	dispatched bool
	idle       bool          // the queue was empty
	wait       time.Duration // before the next step; 0 after a dispatch
}

// safeStep keeps the loop alive if a collaborator panics (the reference logs and continues).
func (s *Service) safeStep(now time.Time) (t tick) {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("sync scheduler step failed", "panic", v)
			s.finishExpired()
			t = tick{wait: s.nextBackoff()}
		}
	}()
	return s.step(now)
}

// step runs one scheduler tick at now (spec-modules §2 "Scheduler" steps 1–5).
func (s *Service) step(now time.Time) tick {
	cutoff := now.Add(-s.cfg.SyncQueueMaxQueueWait())
	task, res := s.pick(now, cutoff)
	s.finishExpired()
	switch res {
	case pickEmpty:
		s.backoff = minBackoff
		return tick{idle: true, wait: idleWait}
	case pickBlocked:
		return tick{wait: s.nextBackoff()}
	}
	s.backoff = minBackoff
	s.dispatchTask(task)
	return tick{dispatched: true}
}

type pickResult uint8

const (
	pickDispatch pickResult = iota // a task was taken and its slot acquired
	pickEmpty                      // nothing queued (after purging expired items)
	pickBlocked                    // work exists but no slot could be had within the window
)

// pick does the locked part of a tick: purge expired items in the scan window, find the first
// item whose function has a free slot, acquire the slot and take the item. A blocked window is
// rotated to the tail so the next tick scans the items behind it; an item whose slot acquisition
// loses a race goes to the tail. The slot calls happen under the lock so the chosen item cannot
// vanish between acquisition and removal; they are cheap, non-blocking and never call back here.
func (s *Service) pick(now, cutoff time.Time) (*execution.Task, pickResult) {
	s.mu.Lock()
	defer s.mu.Unlock()
	idx := -1
	for i, seen := 0, 0; seen < scanWindow && i < s.q.len(); seen++ {
		it := s.q.at(i)
		if it.at.Before(cutoff) {
			s.expire(s.q.removeAt(i))
			continue
		}
		if s.slots.HasAvailableSlot(it.task.FunctionName) {
			idx = i
			break
		}
		i++
	}
	if idx < 0 {
		if s.q.len() == 0 {
			return nil, pickEmpty
		}
		for k := min(s.q.len(), scanWindow); k > 0; k-- {
			it := s.q.popFront()
			if it.at.Before(cutoff) {
				s.expire(it)
			} else {
				s.q.pushBack(it)
			}
		}
		return nil, pickBlocked
	}
	if !s.slots.TryAcquireSlot(s.q.at(idx).task.FunctionName) {
		s.q.pushBack(s.q.removeAt(idx))
		return nil, pickBlocked
	}
	it := s.q.removeAt(idx)
	it.fn.queued--
	s.recordDispatch(it.fn, now.Sub(it.at), now)
	return it.task, pickDispatch
}

// recordDispatch accounts for an item leaving the queue for dispatch: its wait-time metric and a
// throughput event for the estimator. Called with s.mu held.
func (s *Service) recordDispatch(fn *fnState, waited time.Duration, now time.Time) {
	s.wait.record(waited, now)
	fn.wait.record(waited, now)
	fn.created |= meterWait
	// Pruning here too keeps the windows bounded while admission (the other pruner) is off.
	windowCutoff := now.Add(-s.window)
	s.global.prune(windowCutoff)
	s.global.record(now)
	fn.events.prune(windowCutoff)
	fn.events.record(now)
}

// expire accounts for an item removed by a queue timeout; its execution is resolved by
// finishExpired once the lock is released. Called with s.mu held.
func (s *Service) expire(it item) {
	it.fn.queued--
	it.fn.timedOut++
	it.fn.created |= meterTimedOut
	s.expired = append(s.expired, it)
}

// finishExpired resolves the executions of the items expired by the last pick.
func (s *Service) finishExpired() {
	for i := range s.expired {
		s.timeOut(s.expired[i].task)
		s.expired[i] = item{}
	}
	s.expired = s.expired[:0]
}

// nextBackoff returns the current backoff and doubles it for next time, up to maxBackoff:
// 2, 4, 8, 16, 32, 50, 50, … ms.
func (s *Service) nextBackoff() time.Duration {
	d := s.backoff
	s.backoff = min(2*s.backoff, maxBackoff)
	return d
}

// dispatchTask hands task to the core. The slot acquired for it is released by the attempt's
// completion; only a dispatch that panics before completing releases it here (D12).
func (s *Service) dispatchTask(task *execution.Task) {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("sync-queue dispatch failed", "function", task.FunctionName,
				"executionId", task.ExecutionID, "panic", v)
			s.slots.ReleaseDispatchSlot(task.FunctionName)
		}
	}()
	s.dispatch(task)
}
