package execution

import (
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// State is the state of an execution (spec-core §6.2).
type State uint8

// Execution states. QUEUED is initial; SUCCESS, ERROR and TIMEOUT are terminal.
const (
	StateQueued State = iota
	StateRunning
	StateSuccess
	StateError
	StateTimeout
)

// String returns the lower-case JSON value: queued, running, success, error or timeout.
func (s State) String() string {
	switch s {
	case StateQueued:
		return "queued"
	case StateRunning:
		return "running"
	case StateSuccess:
		return "success"
	case StateError:
		return "error"
	case StateTimeout:
		return "timeout"
	}
	return "unknown"
}

// Terminal reports whether s is SUCCESS, ERROR or TIMEOUT; nothing leaves a terminal state.
func (s State) Terminal() bool { return s >= StateSuccess && s <= StateTimeout }

// D21: an ERROR always carries an error object.
const (
	codeFunctionError   = "FUNCTION_ERROR"
	messageNoErrDetails = "function reported failure without error details"
)

// Record is an ExecutionRecord: the state of one execution across its attempts, guarded by a
// per-record mutex, plus a one-shot completion signal shared by every waiter.
//
// Single operations are available directly on Record (each takes the lock). A caller that
// must decide several things atomically (the completion handler: stale check, slot release,
// terminal check, retry or finalize) uses WithLock and the Locked view.
type Record struct {
	id  string
	now func() time.Time
	log *slog.Logger

	// The completion is independent of the record lock so waiters never contend with it.
	done      chan struct{}
	completed atomic.Bool
	outcome   Result // written once before done is closed; read only after done is closed

	mu sync.Mutex
	l  Locked

	task0 Task // storage for the first attempt's task, saving an allocation per execution

	// handoff is a waiting sync caller's offer to run an attempt on its own goroutine: nil = no
	// offer, &offerOpen = offered, anything else = the task handed over (see OfferCaller).
	handoff atomic.Pointer[Task]
}

// offerOpen marks an open offer in Record.handoff; it is never read or written as a task.
var offerOpen Task

// OfferCaller opens an offer by a waiting caller to run the next dispatched attempt itself, which
// saves the dispatcher a goroutine and a wake-up. It returns false if another caller's offer is
// open. The caller must end the offer with TakeHandedOver.
func (r *Record) OfferCaller() bool { return r.handoff.CompareAndSwap(nil, &offerOpen) }

// HandToCaller gives task to the caller whose offer is open and reports whether it did; the
// caller then runs the attempt and nobody else may.
func (r *Record) HandToCaller(task *Task) bool { return r.handoff.CompareAndSwap(&offerOpen, task) }

// TakeHandedOver ends the caller's offer and returns the task handed over meanwhile, if any.
func (r *Record) TakeHandedOver() *Task {
	if t := r.handoff.Swap(nil); t != &offerOpen {
		return t
	}
	return nil
}

// NewRecord returns a QUEUED record for the first attempt described by task (copied). now is
// the clock used for startedAt/finishedAt/dispatchedAt (nil = time.Now); log receives warnings
// about ignored transitions (nil = slog.Default()).
func NewRecord(task Task, now func() time.Time, log *slog.Logger) *Record {
	r := &Record{}
	r.init(task, now, log)
	return r
}

func (r *Record) init(task Task, now func() time.Time, log *slog.Logger) {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	r.id = task.ExecutionID
	r.now = now
	r.log = log
	r.done = make(chan struct{})
	r.task0 = task
	r.l = Locked{rec: r, task: &r.task0, state: StateQueued}
}

// ID returns the execution id.
func (r *Record) ID() string { return r.id }

// WithLock runs fn with the record's lock held. The Locked view must not be retained after fn
// returns, and fn must not call Record methods that take the lock (they would deadlock).
func (r *Record) WithLock(fn func(l *Locked)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fn(&r.l)
}

// Task returns the current attempt's task. Tasks are never mutated after publication.
func (r *Record) Task() *Task {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.l.task
}

// State returns the current state.
func (r *Record) State() State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.l.state
}

// MarkRunning is Locked.MarkRunning under the lock.
func (r *Record) MarkRunning() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.l.MarkRunning()
}

// MarkSuccess is Locked.MarkSuccess under the lock.
func (r *Record) MarkSuccess(output json.RawMessage) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.l.MarkSuccess(output)
}

// MarkError is Locked.MarkError under the lock.
func (r *Record) MarkError(err *ErrorInfo) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.l.MarkError(err)
}

// MarkTimeout is Locked.MarkTimeout under the lock.
func (r *Record) MarkTimeout() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.l.MarkTimeout()
}

// ResetForRetry is Locked.ResetForRetry under the lock.
func (r *Record) ResetForRetry(task *Task) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.l.ResetForRetry(task)
}

// MarkDispatchedAt is Locked.MarkDispatchedAt under the lock.
func (r *Record) MarkDispatchedAt() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.l.MarkDispatchedAt()
}

// MarkColdStart is Locked.MarkColdStart under the lock.
func (r *Record) MarkColdStart(initDurationMs int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.l.MarkColdStart(initDurationMs)
}

// MarkDispatchSlotReleased is Locked.MarkDispatchSlotReleased under the lock.
func (r *Record) MarkDispatchSlotReleased(attempt int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.l.MarkDispatchSlotReleased(attempt)
}

// Cleanup is Locked.Cleanup under the lock.
func (r *Record) Cleanup() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.l.Cleanup()
}

// Snapshot returns a consistent copy of the observable state.
func (r *Record) Snapshot() Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.l.Snapshot()
}

// TerminalResult is the replay mapping of spec-core §6.11, read consistently: for SUCCESS or
// ERROR it returns the stored result; for TIMEOUT timedOut is true; for a non-terminal record
// ok is false.
func (r *Record) TerminalResult() (res Result, timedOut, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch r.l.state {
	case StateSuccess, StateError:
		if r.l.lastError == nil {
			return Result{Success: true, Output: r.l.output}, false, true
		}
		return Result{Error: r.l.lastError}, false, true
	case StateTimeout:
		return Result{}, true, true
	}
	return Result{}, false, false
}

// sweepView returns what the janitor needs, under the lock.
func (r *Record) sweepView() (terminal bool, finishedAt time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.l.state.Terminal(), r.l.finishedAt
}

// Done returns the completion signal, closed exactly once by Complete. Waiters that give up
// simply stop selecting on it; nothing but Complete ever closes it.
func (r *Record) Done() <-chan struct{} { return r.done }

// Complete publishes the final result and wakes every waiter. It returns false (and changes
// nothing) if the record was already completed. It does not touch the record's state: the
// state machine and the completion are separate, as in the reference.
func (r *Record) Complete(res Result) bool {
	if !r.completed.CompareAndSwap(false, true) {
		return false
	}
	r.outcome = res
	close(r.done)
	return true
}

// Outcome returns the published result once Complete has run.
func (r *Record) Outcome() (Result, bool) {
	select {
	case <-r.done:
		return r.outcome, true
	default:
		return Result{}, false
	}
}

// Locked is the record's state as seen with its lock held (see Record.WithLock). Zero times
// mean "not set".
type Locked struct {
	rec            *Record
	task           *Task
	state          State
	startedAt      time.Time
	finishedAt     time.Time
	dispatchedAt   time.Time
	lastError      *ErrorInfo
	output         json.RawMessage
	coldStart      bool
	initDurationMs *int64 // replaced, never mutated, so snapshots may share it
	cleaned        bool
	// Attempts whose dispatch slot was released: a bitmask covers attempts 1–64 without
	// allocating; larger attempt numbers fall back to a map.
	releasedMask  uint64
	releasedExtra map[int]struct{}
}

// ExecutionID returns the execution id.
func (l *Locked) ExecutionID() string { return l.rec.id }

// Task returns the current attempt's task.
func (l *Locked) Task() *Task { return l.task }

// State returns the current state.
func (l *Locked) State() State { return l.state }

// StartedAt returns when the current attempt was dispatched (zero if not yet).
func (l *Locked) StartedAt() time.Time { return l.startedAt }

// FinishedAt returns when the record reached a terminal state (zero if not yet).
func (l *Locked) FinishedAt() time.Time { return l.finishedAt }

// DispatchedAt returns the last MarkDispatchedAt time (zero if none).
func (l *Locked) DispatchedAt() time.Time { return l.dispatchedAt }

// Output returns the stored output (nil = null).
func (l *Locked) Output() json.RawMessage { return l.output }

// LastError returns the stored error (nil = null).
func (l *Locked) LastError() *ErrorInfo { return l.lastError }

// ColdStart reports whether the final attempt was a cold start.
func (l *Locked) ColdStart() bool { return l.coldStart }

// InitDurationMs returns the cold-start init duration, or nil.
func (l *Locked) InitDurationMs() *int64 { return l.initDurationMs }

// Cleaned reports whether Cleanup has dropped the payloads.
func (l *Locked) Cleaned() bool { return l.cleaned }

func (l *Locked) guard(op string) bool {
	if l.state.Terminal() {
		l.rec.log.Warn("ignoring transition of terminal execution",
			"executionId", l.rec.id, "state", l.state.String(), "op", op)
		return false
	}
	return true
}

// MarkRunning moves a non-terminal record to RUNNING and sets startedAt to now (overwriting).
// It returns false, changing nothing, if the record is terminal.
func (l *Locked) MarkRunning() bool {
	if !l.guard("markRunning") {
		return false
	}
	l.state = StateRunning
	l.startedAt = l.rec.now()
	return true
}

// MarkSuccess moves a non-terminal record to SUCCESS with the given output.
func (l *Locked) MarkSuccess(output json.RawMessage) bool {
	if !l.guard("markSuccess") {
		return false
	}
	l.state = StateSuccess
	l.finishedAt = l.rec.now()
	l.output = output
	l.lastError = nil
	return true
}

// MarkError moves a non-terminal record to ERROR. A nil err is stored as FUNCTION_ERROR so
// every ERROR carries an error object (DECISIONS D21).
func (l *Locked) MarkError(err *ErrorInfo) bool {
	if !l.guard("markError") {
		return false
	}
	if err == nil {
		err = &ErrorInfo{Code: codeFunctionError, Message: messageNoErrDetails}
	}
	l.state = StateError
	l.finishedAt = l.rec.now()
	l.lastError = err
	l.output = nil
	return true
}

// MarkTimeout moves a non-terminal record to TIMEOUT (output and error stay as they are).
func (l *Locked) MarkTimeout() bool {
	if !l.guard("markTimeout") {
		return false
	}
	l.state = StateTimeout
	l.finishedAt = l.rec.now()
	return true
}

// ResetForRetry installs task as the current attempt and returns the record to QUEUED,
// clearing per-attempt facts. The set of released dispatch slots is kept.
func (l *Locked) ResetForRetry(task *Task) bool {
	if !l.guard("resetForRetry") {
		return false
	}
	l.task = task
	l.state = StateQueued
	l.startedAt = time.Time{}
	l.finishedAt = time.Time{}
	l.dispatchedAt = time.Time{}
	l.lastError = nil
	l.output = nil
	l.coldStart = false
	l.initDurationMs = nil
	l.cleaned = false
	return true
}

// MarkDispatchedAt records the dispatch time; allowed in any state.
func (l *Locked) MarkDispatchedAt() { l.dispatchedAt = l.rec.now() }

// MarkColdStart records a cold start; allowed in any state, including terminal ones.
func (l *Locked) MarkColdStart(initDurationMs int64) {
	l.coldStart = true
	l.initDurationMs = &initDurationMs
}

// MarkDispatchSlotReleased returns true only the first time it is called for attempt, so a
// dispatch slot is released at most once per attempt.
func (l *Locked) MarkDispatchSlotReleased(attempt int) bool {
	if attempt >= 1 && attempt <= 64 {
		bit := uint64(1) << (attempt - 1)
		if l.releasedMask&bit != 0 {
			return false
		}
		l.releasedMask |= bit
		return true
	}
	if _, seen := l.releasedExtra[attempt]; seen {
		return false
	}
	if l.releasedExtra == nil {
		l.releasedExtra = make(map[int]struct{})
	}
	l.releasedExtra[attempt] = struct{}{}
	return true
}

// Cleanup drops the output and the request payload, keeping every other task field. It is
// idempotent: it returns true only when it dropped them. The task is copied rather than
// mutated because queues may still hold it.
func (l *Locked) Cleanup() bool {
	if l.cleaned {
		return false
	}
	l.cleaned = true
	l.output = nil
	if l.task.Request != nil {
		t := *l.task
		t.Request = nil
		l.task = &t
	}
	return true
}

// Snapshot returns a consistent copy of the observable state.
func (l *Locked) Snapshot() Snapshot {
	return Snapshot{
		ExecutionID:    l.rec.id,
		FunctionName:   l.task.FunctionName,
		Attempt:        l.task.Attempt,
		State:          l.state,
		StartedAt:      l.startedAt,
		FinishedAt:     l.finishedAt,
		DispatchedAt:   l.dispatchedAt,
		Output:         l.output,
		Error:          l.lastError,
		ColdStart:      l.coldStart,
		InitDurationMs: l.initDurationMs,
		Cleaned:        l.cleaned,
	}
}
