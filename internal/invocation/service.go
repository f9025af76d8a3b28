package invocation

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nanofaas/control-plane/internal/dispatch"
	"github.com/nanofaas/control-plane/internal/execution"
	"github.com/nanofaas/control-plane/internal/function"
	"github.com/nanofaas/control-plane/internal/metrics"
	"github.com/nanofaas/control-plane/internal/registry"
)

// RateLimiter is the global admission limiter (internal/ratelimit).
type RateLimiter interface {
	Allow() bool
}

// Functions looks up registered functions; it is read on every invocation without locking.
type Functions interface {
	Get(name string) (*registry.Registered, bool)
}

// Deps are the collaborators of a Service. Enqueuer and SyncQueue default to the no-op seams.
type Deps struct {
	Limiter    RateLimiter
	Functions  Functions
	Store      *execution.Store
	Factory    *execution.Factory
	Dispatcher dispatch.Dispatcher
	Metrics    *metrics.FunctionMetrics
	Enqueuer   Enqueuer
	SyncQueue  SyncQueueGateway
	Now        func() time.Time
	Logger     *slog.Logger
}

// Service runs the invocation flows of spec-core §6.6–§6.10. Its dispatch goroutines are owned
// by the Service and stopped by Close.
type Service struct {
	limiter    RateLimiter
	functions  Functions
	store      *execution.Store
	factory    *execution.Factory
	dispatcher dispatch.Dispatcher
	metrics    *metrics.FunctionMetrics
	enqueuer   Enqueuer
	syncQueue  SyncQueueGateway
	now        func() time.Time
	log        *slog.Logger

	// base bounds every dispatch; Close cancels it once in-flight work had its grace. Attempts
	// take their context from one of bases, children of base, round robin: each attempt derives a
	// deadline context, which registers with its parent under the parent's lock, and with one
	// shared parent that lock is taken by every dispatch of the process.
	base        context.Context
	cancel      context.CancelFunc
	bases       [baseShards]context.Context
	cancelBases [baseShards]context.CancelFunc
	nextBase    atomic.Uint32
	inflight    *inflight
	timers      sync.Pool // *time.Timer, see startTimer
}

// NewService wires a Service.
func NewService(d Deps) *Service {
	if d.Enqueuer == nil {
		d.Enqueuer = NoopEnqueuer{}
	}
	if d.SyncQueue == nil {
		d.SyncQueue = NoopSyncQueue{}
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	base, cancel := context.WithCancel(context.Background())
	s := &Service{
		limiter: d.Limiter, functions: d.Functions, store: d.Store, factory: d.Factory,
		dispatcher: d.Dispatcher, metrics: d.Metrics, enqueuer: d.Enqueuer, syncQueue: d.SyncQueue,
		now: d.Now, log: d.Logger, base: base, cancel: cancel, inflight: newInflight(),
	}
	for i := range s.bases {
		s.bases[i], s.cancelBases[i] = context.WithCancel(base)
	}
	return s
}

// baseShards is how many parent contexts the attempts are spread over.
const baseShards = 16

// SetEnqueuer plugs in the async-queue module (before serving traffic).
func (s *Service) SetEnqueuer(e Enqueuer) { s.enqueuer = e }

// SetSyncQueue plugs in the sync-queue module (before serving traffic).
func (s *Service) SetSyncQueue(g SyncQueueGateway) { s.syncQueue = g }

// Close waits for in-flight dispatches until ctx ends, then cancels the rest and waits for
// their goroutines to return. From the start of Close the Service starts no goroutine: a
// dispatch requested meanwhile (a retry, a module scheduler) runs on the caller's goroutine,
// and fails fast once the grace period is over.
func (s *Service) Close(ctx context.Context) {
	idle := s.inflight.close()
	select {
	case <-idle:
	case <-ctx.Done():
	}
	s.cancel()
	for _, cancel := range s.cancelBases {
		cancel() // a no-op after s.cancel(), but every CancelFunc gets called
	}
	<-idle
}

// Response is the InvocationResponse JSON of spec-core §2.4.
type Response struct {
	ExecutionID string               `json:"executionId"`
	Status      string               `json:"status"`
	Output      json.RawMessage      `json:"output"`
	Error       *execution.ErrorInfo `json:"error"`
}

// Sync/async response statuses.
const (
	StatusSuccess = "success"
	StatusError   = "error"
	StatusTimeout = "timeout"
	StatusQueued  = "queued"
)

// Options are the per-request headers of an invocation.
type Options struct {
	IdempotencyKey string  // blank = none
	TraceID        *string // nil = header absent
	TimeoutMs      *int    // X-Timeout-Ms (sync only); nil = the function's timeoutMs
}

func resultResponse(id string, r execution.Result) Response {
	if r.Success {
		return Response{ExecutionID: id, Status: StatusSuccess, Output: r.Output}
	}
	return Response{ExecutionID: id, Status: StatusError, Error: r.Error}
}

// InvokeSync runs POST /v1/functions/{name}:invoke after body validation (§3.6, §6.6). It
// returns the response for every completed outcome (success, error, timeout, replay) and an
// error for rejections (ErrRateLimited, ErrFunctionNotFound, ErrQueueFull,
// *SyncQueueRejectedError) or when ctx ends while the request waits.
func (s *Service) InvokeSync(ctx context.Context, name string, req *execution.Request, opt Options) (Response, error) {
	if !s.limiter.Allow() {
		return Response{}, ErrRateLimited
	}
	fn, ok := s.functions.Get(name)
	if !ok {
		return Response{}, ErrFunctionNotFound
	}
	lookup, err := s.factory.CreateOrReuse(ctx, name, fn.Spec, req, opt.IdempotencyKey, opt.TraceID)
	if err != nil {
		return Response{}, err
	}
	rec := lookup.Record
	if r, timedOut, terminal := rec.TerminalResult(); terminal {
		if timedOut {
			return Response{ExecutionID: rec.ID(), Status: StatusTimeout}, nil
		}
		return resultResponse(rec.ID(), r), nil
	}
	timeoutMs := fn.Spec.Timeout()
	if opt.TimeoutMs != nil {
		timeoutMs = *opt.TimeoutMs
	}
	offered := callerMayRun(fn.Spec, timeoutMs) && rec.OfferCaller()
	err = s.factory.AdmitIfNew(lookup, func() error { return s.admitSync(rec) })
	if offered {
		if task := rec.TakeHandedOver(); task != nil {
			// Admission dispatched at once (an uncontended request): run the attempt here
			// instead of in a new goroutine, then wait only for what is left of the timeout.
			started := time.Now()
			s.runOnCaller(rec, task)
			timeoutMs -= int(time.Since(started) / time.Millisecond)
			if timeoutMs <= 0 {
				timeoutMs = 1 // the outcome is normally there already; if not, time out now
			}
		}
	}
	if err != nil {
		return Response{}, err
	}
	return s.await(ctx, rec, name, timeoutMs)
}

// callerMayRun reports whether a sync caller waiting timeoutMs may run an attempt of spec on its
// own goroutine: only when the attempt is bounded by the spec's timeout and the caller would wait
// at least that long anyway, so running it never delays the caller's own timeout answer. LOCAL
// attempts always run inline.
func callerMayRun(spec *function.Spec, timeoutMs int) bool {
	specMs := spec.Timeout()
	return spec.Mode() != function.ModeLocal && specMs > 0 && timeoutMs >= specMs && timeoutMs <= maxTimeoutMs
}

// runOnCaller runs an attempt handed over to a waiting caller; it counts as in flight for Close.
func (s *Service) runOnCaller(rec *execution.Record, task *execution.Task) {
	if s.inflight.start() {
		defer s.inflight.done()
	}
	s.runAttempt(rec, task)
}

// admitSync hands a new sync execution to the first enabled admission path.
func (s *Service) admitSync(rec *execution.Record) error {
	task := rec.Task()
	switch {
	case s.syncQueue.Enabled():
		return s.syncQueue.Enqueue(task)
	case s.enqueuer.Enabled():
		return s.enqueue(task)
	default:
		s.Dispatch(task)
		return nil
	}
}

// enqueue is the reference's enqueueOrThrow with its metrics.
func (s *Service) enqueue(task *execution.Task) error {
	m := s.metrics.For(task.FunctionName)
	if !s.enqueuer.Enqueue(task) {
		m.QueueRejected()
		return ErrQueueFull
	}
	m.Enqueue()
	return nil
}

// maxTimeoutMs is the largest X-Timeout-Ms a time.Duration can hold (~292 years); larger
// values would overflow into a negative, immediately expiring timer.
const maxTimeoutMs = int(math.MaxInt64 / int64(time.Millisecond))

// await waits for the shared completion. A waiter that gives up never cancels it: a timeout
// marks the execution TIMEOUT (terminal and sticky), a disconnect changes nothing.
func (s *Service) await(ctx context.Context, rec *execution.Record, fn string, timeoutMs int) (Response, error) {
	if r, done := rec.Outcome(); done {
		return s.completedResponse(rec, r)
	}
	if timeoutMs > 0 {
		var expired <-chan time.Time // nil (never) when the timeout exceeds time.Duration
		if timeoutMs <= maxTimeoutMs {
			timer := s.startTimer(time.Duration(timeoutMs) * time.Millisecond)
			defer s.stopTimer(timer)
			expired = timer.C
		}
		select {
		case <-rec.Done():
			r, _ := rec.Outcome()
			return s.completedResponse(rec, r)
		case <-ctx.Done():
			return Response{}, ctx.Err()
		case <-expired:
		}
	}
	rec.MarkTimeout()
	s.metrics.For(fn).Timeout()
	return Response{ExecutionID: rec.ID(), Status: StatusTimeout}, nil
}

// startTimer returns a running timer from the Service's pool: every waiting sync request needs
// one, and reusing them saves two allocations per request. Since Go 1.23 a stopped timer's
// channel never delivers a stale value, so a stopped timer can be reset and reused safely.
func (s *Service) startTimer(d time.Duration) *time.Timer {
	if t, ok := s.timers.Get().(*time.Timer); ok {
		t.Reset(d)
		return t
	}
	return time.NewTimer(d)
}

func (s *Service) stopTimer(t *time.Timer) {
	t.Stop()
	s.timers.Put(t)
}

func (s *Service) completedResponse(rec *execution.Record, r execution.Result) (Response, error) {
	if !r.Success && r.Error != nil && r.Error.Code == QueueTimeoutCode {
		return Response{}, &SyncQueueRejectedError{Reason: RejectTimeout, RetryAfterSeconds: s.syncQueue.RetryAfterSeconds()}
	}
	return resultResponse(rec.ID(), r), nil
}

// InvokeAsync runs POST /v1/functions/{name}:enqueue after body validation (§3.7, §6.7) and
// returns the execution id (new, or the idempotent replay's).
func (s *Service) InvokeAsync(ctx context.Context, name string, req *execution.Request, opt Options) (string, error) {
	if !s.limiter.Allow() {
		return "", ErrRateLimited
	}
	fn, ok := s.functions.Get(name)
	if !ok {
		return "", ErrFunctionNotFound
	}
	if !s.enqueuer.Enabled() {
		return "", ErrAsyncQueueUnavailable
	}
	lookup, err := s.factory.CreateOrReuse(ctx, name, fn.Spec, req, opt.IdempotencyKey, opt.TraceID)
	if err != nil {
		return "", err
	}
	rec := lookup.Record
	if err := s.factory.AdmitIfNew(lookup, func() error { return s.enqueue(rec.Task()) }); err != nil {
		return "", err
	}
	return rec.ID(), nil
}

// Execution returns the status of an execution (GET /v1/executions/{id}).
func (s *Service) Execution(id string) (execution.Status, bool) {
	rec, ok := s.store.Get(id)
	if !ok {
		return execution.Status{}, false
	}
	return rec.Snapshot().Status(), true
}

// Dispatch runs one attempt (§6.8); module schedulers call it for queued tasks. It never
// blocks on the function: LOCAL completes inline, other modes run in an owned goroutine.
func (s *Service) Dispatch(task *execution.Task) {
	rec, ok := s.store.Get(task.ExecutionID)
	if !ok {
		s.enqueuer.ReleaseDispatchSlot(task.FunctionName)
		return
	}
	rec.WithLock(func(l *execution.Locked) {
		l.MarkRunning() // ignored when terminal (e.g. TIMEOUT): the dispatch still proceeds
		l.MarkDispatchedAt()
	})
	s.metrics.For(task.FunctionName).Dispatch()
	if task.Spec.Mode() != function.ModeLocal && rec.HandToCaller(task) {
		return // a waiting sync caller runs it (see InvokeSync)
	}
	if task.Spec.Mode() == function.ModeLocal || !s.inflight.start() {
		s.runAttempt(rec, task)
		return
	}
	go func() {
		defer s.inflight.done()
		s.runAttempt(rec, task)
	}()
}

// runAttempt calls the dispatcher and completes the attempt with whatever happened. It
// completes the record it dispatched rather than looking the id up again, so the attempt's
// dispatch slot is released even if the record was evicted meanwhile (D12).
func (s *Service) runAttempt(rec *execution.Record, task *execution.Task) {
	dr, err := s.callDispatcher(task)
	if err != nil {
		dr = execution.Warm(execution.ErrorResult(string(task.Spec.Mode())+"_ERROR", err.Error()))
	}
	s.complete(rec, dr, task.Attempt)
}

// callDispatcher turns a dispatcher panic into an error so an attempt always completes.
func (s *Service) callDispatcher(task *execution.Task) (dr execution.DispatchResult, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%v", v)
		}
	}()
	return s.dispatcher.Dispatch(s.bases[s.nextBase.Add(1)%baseShards], task)
}

// AppendJSON appends r as InvocationResponse JSON. It is the hot-path encoder: the output is
// already valid JSON (decoded from the runtime or the request), so it is copied as is instead of
// being re-scanned and compacted by encoding/json.
func (r Response) AppendJSON(b []byte) []byte {
	b = append(b, `{"executionId":`...)
	b = execution.AppendJSONString(b, r.ExecutionID)
	b = append(b, `,"status":`...)
	b = execution.AppendJSONString(b, r.Status)
	b = append(b, `,"output":`...)
	if len(r.Output) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, r.Output...)
	}
	b = append(b, `,"error":`...)
	if r.Error == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"code":`...)
		b = execution.AppendJSONString(b, r.Error.Code)
		b = append(b, `,"message":`...)
		b = execution.AppendJSONString(b, r.Error.Message)
		b = append(b, '}')
	}
	return append(b, '}')
}
