// Package invocation owns the invocation lifecycle: the sync and async flows (rate limit, lookup,
// idempotent execution creation, admission through the module seams, waiting), dispatch of an
// attempt, and completion (stale attempts, slot release, retries, finalization, metrics, waking
// waiters). It declares the seams the optional queue modules plug into.
package invocation

import (
	"errors"
	"strings"

	"github.com/nanofaas/control-plane/internal/execution"
)

// Enqueuer is the reference's InvocationEnqueuer, implemented by the async-queue module.
// Enqueue must not block; it returns false when the function's queue is full or closed. On
// the retry path it is called with the execution's lock held, so it must not call back into
// the Service (Dispatch, Complete) synchronously: a scheduler goroutine does that.
type Enqueuer interface {
	Enabled() bool
	Enqueue(task *execution.Task) bool
	HasAvailableSlot(fn string) bool
	TryAcquireSlot(fn string) bool
	ReleaseDispatchSlot(fn string)
}

// NoopEnqueuer is the core default: disabled, unlimited slots.
type NoopEnqueuer struct{}

// Enabled reports false: there is no async queue.
func (NoopEnqueuer) Enabled() bool { return false }

// Enqueue always refuses; the service never calls it while Enabled is false.
func (NoopEnqueuer) Enqueue(*execution.Task) bool { return false }

// HasAvailableSlot reports true: without a queue there is no concurrency limit.
func (NoopEnqueuer) HasAvailableSlot(string) bool { return true }

// TryAcquireSlot reports true: without a queue there is no concurrency limit.
func (NoopEnqueuer) TryAcquireSlot(string) bool { return true }

// ReleaseDispatchSlot does nothing.
func (NoopEnqueuer) ReleaseDispatchSlot(string) {}

// SyncQueueGateway is the reference's SyncQueueGateway, implemented by the sync-queue module.
// Enqueue admits the task or returns a *SyncQueueRejectedError.
type SyncQueueGateway interface {
	Enabled() bool
	Enqueue(task *execution.Task) error
	RetryAfterSeconds() int
}

// NoopSyncQueue is the core default: disabled, Retry-After 2.
type NoopSyncQueue struct{}

// Enabled reports false.
func (NoopSyncQueue) Enabled() bool { return false }

// Enqueue refuses: the module is not loaded.
func (NoopSyncQueue) Enqueue(*execution.Task) error {
	//lint:ignore ST1005 the reference's exact message
	return errors.New("Sync queue module not loaded")
}

// RetryAfterSeconds is the reference default, 2.
func (NoopSyncQueue) RetryAfterSeconds() int { return 2 }

// RejectReason is why the sync queue refused a request (header X-Queue-Reject-Reason).
type RejectReason string

// Sync-queue reject reasons, as the header spells them.
const (
	RejectDepth   RejectReason = "depth"
	RejectEstWait RejectReason = "est_wait"
	RejectTimeout RejectReason = "timeout"
)

// SyncQueueRejectedError is a sync-queue rejection: 429 with Retry-After and the reason header.
type SyncQueueRejectedError struct {
	Reason            RejectReason
	RetryAfterSeconds int
}

func (e *SyncQueueRejectedError) Error() string {
	return "sync queue rejected the request: " + strings.ToLower(string(e.Reason))
}

// Errors of the invocation flows, mapped by the HTTP layer.
var (
	// ErrRateLimited: the global rate limit refused the request (429, empty body).
	ErrRateLimited = errors.New("rate limit exceeded")
	// ErrFunctionNotFound: no such function (404, empty body).
	ErrFunctionNotFound = errors.New("function not found")
	// ErrQueueFull: the function's async queue is full (429, empty body).
	ErrQueueFull = errors.New("queue full")
	// ErrAsyncQueueUnavailable: :enqueue without the async-queue module (501, empty body).
	//lint:ignore ST1005 the reference's exact message
	ErrAsyncQueueUnavailable = errors.New("Async queue module not loaded")
)

// QueueTimeoutCode is the completion error code the sync queue uses for a queue-wait timeout.
const QueueTimeoutCode = "QUEUE_TIMEOUT"
