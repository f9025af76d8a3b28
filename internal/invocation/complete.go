package invocation

import (
	"time"

	"github.com/nanofaas/control-plane/internal/execution"
)

// outcome is what Complete decided under the record's lock and publishes after releasing it.
type outcome int

const (
	outcomeIgnored    outcome = iota // stale attempt or already terminal
	outcomeRetried                   // re-enqueued; the completion stays pending
	outcomeRedispatch                // no async queue: dispatch the retry directly (D2)
	outcomeExhausted                 // retry refused by a full queue: final with the original error
	outcomeFinal                     // success or final error
)

// Complete applies the result of one attempt (spec-core §6.9). attempt is the attempt the
// result belongs to; 0 means "unknown" (a legacy callback without X-Dispatch-Attempt), which
// applies to whatever attempt is current. It is safe to call any number of times: stale and
// duplicate completions change nothing, and the dispatch slot is released once per attempt.
func (s *Service) Complete(executionID string, dr execution.DispatchResult, attempt int) {
	if rec, ok := s.store.Get(executionID); ok {
		s.complete(rec, dr, attempt)
	}
}

// complete is Complete for a record already looked up.
func (s *Service) complete(rec *execution.Record, dr execution.DispatchResult, attempt int) {
	var (
		decision  outcome
		release   bool
		task      *execution.Task
		retry     *execution.Task
		r         = dr.Result
		latency   time.Duration
		queueWait time.Duration
		e2e       time.Duration
		hasTiming bool
	)
	if !r.Success && r.Error == nil {
		// D21: every failure carries an error object, in the record and in the response.
		r.Error = &execution.ErrorInfo{Code: "FUNCTION_ERROR", Message: "function reported failure without error details"}
	}
	rec.WithLock(func(l *execution.Locked) {
		cur := l.Task()
		task = cur
		if attempt != 0 && cur.Attempt != attempt {
			return // stale: no slot release, no change
		}
		release = l.MarkDispatchSlotReleased(cur.Attempt)
		if l.State().Terminal() {
			return
		}
		if !r.Success && cur.Attempt < cur.Spec.Retries() {
			next := *cur
			next.IdempotencyKey = ""
			next.EnqueuedAt = s.now()
			next.Attempt = cur.Attempt + 1
			retry = &next
			l.ResetForRetry(retry)
			if !s.enqueuer.Enabled() {
				decision = outcomeRedispatch
				return
			}
			s.metrics.For(cur.FunctionName).Retry()
			if err := s.enqueue(retry); err == nil {
				decision = outcomeRetried
				return
			}
			l.MarkError(r.Error)
			decision = outcomeExhausted
			return
		}
		started := l.StartedAt()
		if r.Success {
			l.MarkSuccess(r.Output)
		} else {
			l.MarkError(r.Error)
		}
		finished := l.FinishedAt()
		if dr.ColdStart {
			var ms int64
			if dr.InitDurationMs != nil {
				ms = *dr.InitDurationMs
			}
			l.MarkColdStart(ms)
		}
		if !started.IsZero() {
			hasTiming = true
			latency = finished.Sub(started)
			queueWait = started.Sub(cur.EnqueuedAt)
		}
		e2e = finished.Sub(cur.EnqueuedAt)
		decision = outcomeFinal
	})
	if release {
		s.enqueuer.ReleaseDispatchSlot(task.FunctionName)
	}
	m := s.metrics.For(task.FunctionName)
	switch decision {
	case outcomeIgnored, outcomeRetried:
		return
	case outcomeRedispatch:
		m.Retry()
		s.Dispatch(retry)
		return
	case outcomeFinal:
		if dr.ColdStart {
			m.ColdStart()
			if dr.InitDurationMs != nil {
				m.InitDuration(time.Duration(*dr.InitDurationMs) * time.Millisecond)
			}
		} else {
			m.WarmStart()
		}
		if hasTiming {
			m.Latency(latency)
			if queueWait >= 0 {
				m.QueueWait(queueWait)
			}
		}
		if e2e >= 0 {
			m.E2E(e2e)
		}
	}
	if r.Success {
		m.Success()
	} else {
		m.Error()
	}
	rec.Complete(r)
}

// CompleteCallback applies a runtime callback (POST /v1/internal/executions/{id}:complete):
// callbacks never carry cold-start information, so they count as warm starts.
func (s *Service) CompleteCallback(executionID string, r execution.Result, attempt int) {
	s.Complete(executionID, execution.Warm(r), attempt)
}
