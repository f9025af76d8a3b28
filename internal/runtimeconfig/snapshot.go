// Package runtimeconfig owns the runtime-config module (spec-modules §4): the hot-reloadable
// knobs (global rate limit and the sync-queue knobs) as an immutable, revisioned snapshot, their
// validation, revision-checked patching that applies a new snapshot to the live rate limiter
// (rolling back when applying fails), the live sync-queue configuration source, and the module's
// three metrics. The HTTP admin API lives in package api.
package runtimeconfig

import (
	"strconv"
	"time"

	"github.com/nanofaas/control-plane/internal/config"
)

// Snapshot is one revision of the runtime knobs. Snapshots are values: a Service never changes
// one after installing it, it installs a new one.
type Snapshot struct {
	Revision                   int64
	RateMaxPerSecond           int
	SyncQueueEnabled           bool
	SyncQueueAdmissionEnabled  bool
	SyncQueueMaxEstimatedWait  time.Duration
	SyncQueueMaxQueueWait      time.Duration
	SyncQueueRetryAfterSeconds int
}

// Patch is a partial update: nil fields keep the current value.
type Patch struct {
	RateMaxPerSecond           *int
	SyncQueueEnabled           *bool
	SyncQueueAdmissionEnabled  *bool
	SyncQueueMaxEstimatedWait  *time.Duration
	SyncQueueMaxQueueWait      *time.Duration
	SyncQueueRetryAfterSeconds *int
}

// Merge returns s with p's non-nil fields applied. The revision is left unchanged.
func (s Snapshot) Merge(p Patch) Snapshot {
	if p.RateMaxPerSecond != nil {
		s.RateMaxPerSecond = *p.RateMaxPerSecond
	}
	if p.SyncQueueEnabled != nil {
		s.SyncQueueEnabled = *p.SyncQueueEnabled
	}
	if p.SyncQueueAdmissionEnabled != nil {
		s.SyncQueueAdmissionEnabled = *p.SyncQueueAdmissionEnabled
	}
	if p.SyncQueueMaxEstimatedWait != nil {
		s.SyncQueueMaxEstimatedWait = *p.SyncQueueMaxEstimatedWait
	}
	if p.SyncQueueMaxQueueWait != nil {
		s.SyncQueueMaxQueueWait = *p.SyncQueueMaxQueueWait
	}
	if p.SyncQueueRetryAfterSeconds != nil {
		s.SyncQueueRetryAfterSeconds = *p.SyncQueueRetryAfterSeconds
	}
	return s
}

// Validate returns every rule s breaks, with the reference's exact messages and in its order
// (spec-modules §4 "Validation"); nil when s is valid.
func (s Snapshot) Validate() []string {
	var errs []string
	if s.RateMaxPerSecond <= 0 {
		errs = append(errs, "rateMaxPerSecond must be > 0, got "+strconv.Itoa(s.RateMaxPerSecond))
	}
	if s.SyncQueueMaxEstimatedWait <= 0 {
		errs = append(errs, "syncQueueMaxEstimatedWait must be > 0")
	}
	if s.SyncQueueMaxQueueWait <= 0 {
		errs = append(errs, "syncQueueMaxQueueWait must be > 0")
	}
	if s.SyncQueueMaxEstimatedWait > 0 && s.SyncQueueMaxQueueWait > 0 &&
		s.SyncQueueMaxEstimatedWait > s.SyncQueueMaxQueueWait {
		errs = append(errs, "syncQueueMaxEstimatedWait must be <= syncQueueMaxQueueWait")
	}
	if s.SyncQueueRetryAfterSeconds < 1 {
		errs = append(errs, "syncQueueRetryAfterSeconds must be >= 1, got "+strconv.Itoa(s.SyncQueueRetryAfterSeconds))
	}
	return errs
}

// SyncQueueDefaults are the sync-queue knobs a Service starts from (the reference's
// SyncQueueRuntimeDefaults).
type SyncQueueDefaults struct {
	Enabled           bool
	AdmissionEnabled  bool
	MaxEstimatedWait  time.Duration
	MaxQueueWait      time.Duration
	RetryAfterSeconds int
}

// CoreSyncQueueDefaults are the defaults without the sync-queue module: false, false, 2s, 2s, 2.
func CoreSyncQueueDefaults() SyncQueueDefaults {
	return SyncQueueDefaults{MaxEstimatedWait: 2 * time.Second, MaxQueueWait: 2 * time.Second, RetryAfterSeconds: 2}
}

// SyncQueueDefaultsFromConfig takes the defaults from the sync-queue.* properties (used when the
// sync-queue module is loaded).
func SyncQueueDefaultsFromConfig(c config.SyncQueue) SyncQueueDefaults {
	return SyncQueueDefaults{
		Enabled:           c.Enabled,
		AdmissionEnabled:  c.AdmissionEnabled,
		MaxEstimatedWait:  c.MaxEstimatedWait,
		MaxQueueWait:      c.MaxQueueWait,
		RetryAfterSeconds: c.RetryAfterSeconds,
	}
}
