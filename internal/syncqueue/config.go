package syncqueue

import (
	"time"

	"github.com/nanofaas/control-plane/internal/config"
)

// ConfigSource supplies the five hot-reloadable sync-queue knobs (the reference's
// SyncQueueConfigSource). The module reads them on every admission and scheduler tick, so an
// implementation must be cheap and safe for concurrent use. runtime-config provides a
// reloadable one; StaticConfig is the fixed view over the start-up properties.
type ConfigSource interface {
	SyncQueueEnabled() bool
	SyncQueueAdmissionEnabled() bool
	SyncQueueMaxEstimatedWait() time.Duration
	SyncQueueMaxQueueWait() time.Duration
	SyncQueueRetryAfterSeconds() int
}

// StaticConfig is a ConfigSource that never changes (the reference's SyncQueueRuntimeDefaults).
type StaticConfig struct {
	Enabled           bool
	AdmissionEnabled  bool
	MaxEstimatedWait  time.Duration
	MaxQueueWait      time.Duration
	RetryAfterSeconds int
}

// NewStaticConfig returns the live knobs' start-up values from sync-queue.* properties.
func NewStaticConfig(c config.SyncQueue) StaticConfig {
	return StaticConfig{
		Enabled:           c.Enabled,
		AdmissionEnabled:  c.AdmissionEnabled,
		MaxEstimatedWait:  c.MaxEstimatedWait,
		MaxQueueWait:      c.MaxQueueWait,
		RetryAfterSeconds: c.RetryAfterSeconds,
	}
}

// SyncQueueEnabled reports sync-queue.enabled.
func (c StaticConfig) SyncQueueEnabled() bool { return c.Enabled }

// SyncQueueAdmissionEnabled reports sync-queue.admission-enabled.
func (c StaticConfig) SyncQueueAdmissionEnabled() bool { return c.AdmissionEnabled }

// SyncQueueMaxEstimatedWait reports sync-queue.max-estimated-wait.
func (c StaticConfig) SyncQueueMaxEstimatedWait() time.Duration { return c.MaxEstimatedWait }

// SyncQueueMaxQueueWait reports sync-queue.max-queue-wait.
func (c StaticConfig) SyncQueueMaxQueueWait() time.Duration { return c.MaxQueueWait }

// SyncQueueRetryAfterSeconds reports sync-queue.retry-after-seconds.
func (c StaticConfig) SyncQueueRetryAfterSeconds() int { return c.RetryAfterSeconds }

// Slots is the per-function dispatch-slot accounting shared with the async queue (the async-queue
// Manager, or invocation.NoopEnqueuer when there is no concurrency limit). The scheduler acquires a
// slot when it dispatches an item; the core's completion releases it (DECISIONS D12).
type Slots interface {
	HasAvailableSlot(fn string) bool
	TryAcquireSlot(fn string) bool
	ReleaseDispatchSlot(fn string)
}
