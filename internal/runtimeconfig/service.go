package runtimeconfig

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
)

// RateLimiter is the global limiter the service reconfigures (ratelimit.Limiter).
type RateLimiter interface {
	SetMaxPerSecond(n int)
	MaxPerSecond() int
}

// Applier pushes a newly installed snapshot into a further live component. An error rolls the
// whole update back.
type Applier interface {
	Apply(next Snapshot) error
}

// ApplierFunc adapts a function to Applier.
type ApplierFunc func(next Snapshot) error

// Apply calls f.
func (f ApplierFunc) Apply(next Snapshot) error { return f(next) }

// Deps are what a Service needs.
type Deps struct {
	// Limiter is the global rate limiter; its current limit is the initial rateMaxPerSecond.
	Limiter RateLimiter
	// SyncQueue are the initial sync-queue knobs (SyncQueueDefaultsFromConfig when the sync-queue
	// module is loaded, else CoreSyncQueueDefaults).
	SyncQueue SyncQueueDefaults
	// Registerer receives the module's metrics (the shared registry of /actuator/prometheus).
	Registerer prometheus.Registerer
	// Appliers run after the limiter is updated, in order; optional.
	Appliers []Applier
	// Clock stamps appliedAt and times applies; nil = time.Now.
	Clock func() time.Time
	// NewChangeID returns the changeId of a response; nil = random UUID.
	NewChangeID func() string
	// Logger logs updates; nil = slog.Default().
	Logger *slog.Logger
}

// Applied describes a successful update.
type Applied struct {
	Snapshot  Snapshot
	AppliedAt time.Time
	ChangeID  string
	Warnings  []string
}

// ValidationError: the merged snapshot breaks at least one rule (422).
type ValidationError struct {
	Errors []string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("invalid runtime config: %q", e.Errors)
}

// RevisionMismatchError: the expected revision is not the current one (409).
type RevisionMismatchError struct {
	Expected int64
	Current  int64
}

func (e *RevisionMismatchError) Error() string {
	return "Revision mismatch: expected " + strconv.FormatInt(e.Expected, 10) +
		" but current is " + strconv.FormatInt(e.Current, 10)
}

// ErrApplyFailed is wrapped by the error Patch returns when applying a snapshot failed and the
// update was rolled back (503).
var ErrApplyFailed = errors.New("failed to apply runtime config")

// Service holds the current snapshot and updates it. It is also the live sync-queue
// configuration source (syncqueue.ConfigSource). Reads (Get and the SyncQueue* methods) are one
// atomic load and never block; updates are serialised.
type Service struct {
	limiter  RateLimiter
	appliers []Applier
	clock    func() time.Time
	newID    func() string
	log      *slog.Logger
	metrics  *serviceMetrics

	current atomic.Pointer[Snapshot]
	// updateMu serialises Patch. The reference installs with a compare-and-set; holding a lock
	// across install, apply and rollback additionally keeps a rollback from overwriting a
	// concurrent update that was installed in between.
	updateMu sync.Mutex
}

// New returns a Service at revision 0 with the limiter's current rate and the given sync-queue
// knobs, and registers its metrics.
func New(d Deps) (*Service, error) {
	if d.Limiter == nil {
		return nil, errors.New("runtimeconfig: a rate limiter is required")
	}
	if d.Registerer == nil {
		return nil, errors.New("runtimeconfig: a metrics registerer is required")
	}
	s := &Service{
		limiter:  d.Limiter,
		appliers: d.Appliers,
		clock:    d.Clock,
		newID:    d.NewChangeID,
		log:      d.Logger,
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.newID == nil {
		s.newID = uuid.NewString
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	m, err := newServiceMetrics(d.Registerer, s.clock)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	s.current.Store(&Snapshot{
		RateMaxPerSecond:           d.Limiter.MaxPerSecond(),
		SyncQueueEnabled:           d.SyncQueue.Enabled,
		SyncQueueAdmissionEnabled:  d.SyncQueue.AdmissionEnabled,
		SyncQueueMaxEstimatedWait:  d.SyncQueue.MaxEstimatedWait,
		SyncQueueMaxQueueWait:      d.SyncQueue.MaxQueueWait,
		SyncQueueRetryAfterSeconds: d.SyncQueue.RetryAfterSeconds,
	})
	return s, nil
}

// Get returns the current snapshot.
func (s *Service) Get() Snapshot { return *s.current.Load() }

// Validate checks the current snapshot merged with p, changing nothing; nil means valid.
func (s *Service) Validate(p Patch) []string {
	return s.current.Load().Merge(p).Validate()
}

// Patch merges p into the current snapshot and installs it as the next revision, then applies it
// to the rate limiter and the appliers. Checks run in the reference's order: an invalid merged
// snapshot is a *ValidationError (even with a stale revision), then a stale expectedRevision is a
// *RevisionMismatchError. If applying fails the previous snapshot and rate are restored and the
// error wraps ErrApplyFailed. Every successful patch bumps the revision, even one that changes
// nothing.
func (s *Service) Patch(expectedRevision int64, p Patch) (Applied, error) {
	s.updateMu.Lock()
	defer s.updateMu.Unlock()

	prev := s.current.Load()
	next := prev.Merge(p)
	if errs := next.Validate(); len(errs) > 0 {
		return Applied{}, &ValidationError{Errors: errs}
	}
	if prev.Revision != expectedRevision {
		return Applied{}, &RevisionMismatchError{Expected: expectedRevision, Current: prev.Revision}
	}
	next.Revision = prev.Revision + 1
	s.current.Store(&next)

	start := s.clock()
	prevRate := s.limiter.MaxPerSecond()
	applied, err := s.apply(next)
	if err != nil {
		s.rollback(prev, prevRate, applied)
		s.metrics.failure.Inc()
		s.log.Error("runtime config update failed, rolled back",
			"event", "runtime_config_update", "change_id", next.Revision,
			"from_revision", prev.Revision, "to_revision", next.Revision, "outcome", "failure", "error", err)
		return Applied{}, fmt.Errorf("%w: %w", ErrApplyFailed, err)
	}
	s.metrics.revision.Set(float64(next.Revision))
	s.metrics.success.Inc()
	appliedAt := s.clock()
	s.metrics.recordApply(appliedAt.Sub(start))
	s.log.Info("runtime config updated",
		"event", "runtime_config_update", "change_id", next.Revision,
		"from_revision", prev.Revision, "to_revision", next.Revision, "outcome", "success")
	return Applied{Snapshot: next, AppliedAt: appliedAt, ChangeID: s.newID(), Warnings: []string{}}, nil
}

// apply pushes next to the limiter and then to each applier. It returns how many appliers
// succeeded, so a rollback can revert exactly those. A panic counts as a failure, like the
// reference's catch of any exception.
func (s *Service) apply(next Snapshot) (applied int, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v", v)
		}
	}()
	s.limiter.SetMaxPerSecond(next.RateMaxPerSecond)
	for _, a := range s.appliers {
		if err := a.Apply(next); err != nil {
			return applied, err
		}
		applied++
	}
	return applied, nil
}

// rollback reinstalls prev, restores the limiter's previous rate and re-applies prev to the
// appliers that had taken the failed snapshot (best effort: their errors are only logged).
func (s *Service) rollback(prev *Snapshot, prevRate, applied int) {
	s.current.Store(prev)
	s.limiter.SetMaxPerSecond(prevRate)
	for i := applied - 1; i >= 0; i-- {
		if err := safeApply(s.appliers[i], *prev); err != nil {
			s.log.Error("runtime config rollback: re-applying the previous revision failed",
				"revision", prev.Revision, "error", err)
		}
	}
}

func safeApply(a Applier, snap Snapshot) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v", v)
		}
	}()
	return a.Apply(snap)
}

// SyncQueueEnabled reports the live sync-queue enabled flag.
func (s *Service) SyncQueueEnabled() bool { return s.current.Load().SyncQueueEnabled }

// SyncQueueAdmissionEnabled reports the live estimated-wait admission flag.
func (s *Service) SyncQueueAdmissionEnabled() bool {
	return s.current.Load().SyncQueueAdmissionEnabled
}

// SyncQueueMaxEstimatedWait reports the live estimated-wait limit.
func (s *Service) SyncQueueMaxEstimatedWait() time.Duration {
	return s.current.Load().SyncQueueMaxEstimatedWait
}

// SyncQueueMaxQueueWait reports the live queue-wait limit.
func (s *Service) SyncQueueMaxQueueWait() time.Duration {
	return s.current.Load().SyncQueueMaxQueueWait
}

// SyncQueueRetryAfterSeconds reports the live Retry-After value.
func (s *Service) SyncQueueRetryAfterSeconds() int {
	return s.current.Load().SyncQueueRetryAfterSeconds
}
