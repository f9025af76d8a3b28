// Package autoscaler is the autoscaler module (spec-modules §3): the internal replica scaler
// for managed deployments with scalingConfig.strategy INTERNAL, the per-pod concurrency
// controllers (FIXED, STATIC_PER_POD, ADAPTIVE_PER_POD) that steer the async queue's effective
// concurrency, and the OpenFaaS-style gateway_service_target_load gauges.
//
// The decisions are pure functions of their inputs and a clock (decide.go, concurrency.go);
// Scaler only reads the metrics, calls the replica seam and keeps the per-function state.
// Scaler implements registry.Listener; the lead adds it to the registry listeners and runs
// Scaler.Run.
package autoscaler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nanofaas/control-plane/internal/function"
	"github.com/nanofaas/control-plane/internal/registry"
)

var _ registry.Listener = (*Scaler)(nil)

// DefaultPollInterval is nanofaas.scaling.poll-interval-ms's default, also used when the
// configured interval is ≤ 0.
const DefaultPollInterval = 5 * time.Second

// ErrAlreadyRunning is returned by Run while another Run of the same Scaler is active.
var ErrAlreadyRunning = errors.New("autoscaler: already running")

// ScalingMetricsSource is where the scaler reads queue signals and pushes concurrency
// decisions (the async-queue module's *queue.Manager implements it).
type ScalingMetricsSource interface {
	QueueDepth(fn string) int
	InFlight(fn string) int
	SetEffectiveConcurrency(fn string, n int)
	UpdateConcurrencyController(fn string, mode function.ConcurrencyControlMode, targetPerPod int)
}

// Replicas reads and sets the replica count of a managed deployment by function name
// (*registry.Service implements it).
type Replicas interface {
	ReadyReplicas(ctx context.Context, name string) (int, error)
	SetReplicas(ctx context.Context, name string, replicas int) (int, error)
}

// FunctionLister lists the registered functions (*registry.Registry and *registry.Service).
type FunctionLister interface {
	List() []*registry.Registered
}

// DispatchCounter reads the core counter function_dispatch_total{function=fn} (0 when absent);
// the rps metric is its rate between two ticks.
type DispatchCounter interface {
	DispatchCount(fn string) float64
}

// Deps are the collaborators of a Scaler.
type Deps struct {
	Functions  FunctionLister  // required
	Replicas   Replicas        // required
	Dispatches DispatchCounter // required (rps)
	// Metrics is the async queue's metrics source; nil = the core no-op (queue_depth and
	// in_flight read 0, pushes are dropped), as when async-queue is not loaded.
	Metrics ScalingMetricsSource
	// PollInterval is nanofaas.scaling.poll-interval-ms; ≤ 0 means DefaultPollInterval.
	PollInterval time.Duration
	// Registerer receives the gateway_service_target_load collector; nil registers nothing.
	Registerer prometheus.Registerer
	Logger     *slog.Logger     // nil = slog.Default()
	Now        func() time.Time // nil = time.Now
	// NewTicker starts the loop's ticker (nil = time.NewTicker); it returns the tick channel
	// and a stop function.
	NewTicker func(d time.Duration) (<-chan time.Time, func())
}

// Scaler is the autoscaler module: the reference's InternalScaler, its metrics reader,
// cooldown tracker, concurrency controllers and TargetLoadMetrics in one value.
type Scaler struct {
	fns        FunctionLister
	replicas   Replicas
	dispatches DispatchCounter
	metrics    ScalingMetricsSource
	interval   time.Duration
	log        *slog.Logger
	now        func() time.Time
	newTicker  func(time.Duration) (<-chan time.Time, func())

	mu      sync.Mutex
	entries map[string]*entry // guarded by mu; one per registered function

	running atomic.Bool // one Run at a time, which makes the loop the only writer of entry state
	values  []float64   // metric readings of the function being evaluated; loop-owned scratch
}

// entry is what the Scaler keeps per registered function. targets never changes after
// OnRegister; state and rps are read and written only by the loop goroutine, and OnRemove
// drops the whole entry, so a tick racing a removal only updates an orphan.
type entry struct {
	targets []targetLoad
	state   fnState
	rps     rpsSample
}

// New returns a Scaler and registers its gauges on d.Registerer.
func New(d Deps) (*Scaler, error) {
	if d.Functions == nil || d.Replicas == nil || d.Dispatches == nil {
		return nil, errors.New("autoscaler: Functions, Replicas and Dispatches are required")
	}
	s := &Scaler{
		fns:        d.Functions,
		replicas:   d.Replicas,
		dispatches: d.Dispatches,
		metrics:    d.Metrics,
		interval:   d.PollInterval,
		log:        d.Logger,
		now:        d.Now,
		newTicker:  d.NewTicker,
		entries:    map[string]*entry{},
	}
	if s.metrics == nil {
		s.metrics = noopSource{}
	}
	if s.interval <= 0 {
		s.interval = DefaultPollInterval
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.newTicker == nil {
		s.newTicker = func(d time.Duration) (<-chan time.Time, func()) {
			t := time.NewTicker(d)
			return t.C, t.Stop
		}
	}
	if d.Registerer != nil {
		if err := d.Registerer.Register(newCollector(s)); err != nil {
			return nil, fmt.Errorf("register target-load gauges: %w", err)
		}
	}
	return s, nil
}

// --- registry.Listener ---

// OnRegister (re)creates the function's state and its gateway_service_target_load series.
// Every function gets an entry, scaled or not; only functions with an entry are evaluated.
func (s *Scaler) OnRegister(_ context.Context, spec *function.Spec) error {
	e := &entry{targets: targetLoadsOf(spec)}
	s.mu.Lock()
	s.entries[spec.Name] = e
	s.mu.Unlock()
	return nil
}

// OnRemove drops the function's gauges, rps sample, cooldowns and adaptive state.
func (s *Scaler) OnRemove(_ context.Context, name string) error {
	s.mu.Lock()
	delete(s.entries, name)
	s.mu.Unlock()
	return nil
}

func (s *Scaler) lookup(name string) *entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.entries[name]
}

// --- loop ---

// Run is the scaler loop (the reference's nanofaas-internal-scaler thread): one tick per poll
// interval, the first one interval after the start. It returns nil when ctx ends, after the
// current tick (whose provider calls see the cancelled ctx). Concurrent calls return
// ErrAlreadyRunning.
func (s *Scaler) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	defer s.running.Store(false)
	ticks, stop := s.newTicker(s.interval)
	defer stop()
	s.log.Info("internal scaler started", "pollInterval", s.interval.String())
	defer s.log.Info("internal scaler stopped")
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticks:
			s.tick(ctx)
		}
	}
}

// tick evaluates every registered managed DEPLOYMENT function with strategy INTERNAL. A
// failing function is logged and does not stop the others.
func (s *Scaler) tick(ctx context.Context) {
	for _, reg := range s.fns.List() {
		if ctx.Err() != nil {
			return
		}
		if !scaledInternally(reg) {
			continue
		}
		e := s.lookup(reg.Spec.Name)
		if e == nil {
			continue // removed since List, or never announced to this listener
		}
		if err := s.evaluate(ctx, reg.Spec, e); err != nil {
			s.log.Error("autoscaler: scaling function failed", "function", reg.Spec.Name, "err", err)
		}
	}
}

// scaledInternally: a managed deployment (effective DEPLOYMENT with a backend) whose strategy
// is INTERNAL (HPA and NONE are left alone).
func scaledInternally(reg *registry.Registered) bool {
	sc := reg.Spec.ScalingConfig
	return reg.Target().Managed() && sc != nil && sc.Strategy != nil && *sc.Strategy == function.StrategyInternal
}

// evaluate runs one function's tick: ready replicas → metrics → decision → SetReplicas when
// the decision (after cooldowns) says so → concurrency push. If a provider call fails nothing
// else happens: no cooldown is recorded and no concurrency is pushed.
func (s *Scaler) evaluate(ctx context.Context, spec *function.Spec, e *entry) error {
	name := spec.Name
	ready, err := s.replicas.ReadyReplicas(ctx, name)
	if err != nil {
		return fmt.Errorf("read ready replicas: %w", err)
	}
	now := s.now()
	s.values = s.values[:0]
	for _, m := range spec.ScalingConfig.Metrics {
		s.values = append(s.values, s.readMetric(name, m, e, now))
	}
	out := evaluate(spec, ready, s.values, e.state, now)
	d := out.decision
	switch out.action {
	case actScaleUp, actScaleDown:
		s.log.Info("autoscaler: scaling function", "function", name, "direction", out.action.String(),
			"from", d.current, "to", d.desired, "maxRatio", d.maxRatio)
		if _, err := s.replicas.SetReplicas(ctx, name, d.desired); err != nil {
			return fmt.Errorf("set replicas to %d: %w", d.desired, err)
		}
	default:
		if d.desired != d.current {
			s.log.Debug("autoscaler: scaling skipped (cooldown)", "function", name, "from", d.current, "to", d.desired)
		}
	}
	e.state = out.next
	s.metrics.SetEffectiveConcurrency(name, out.conc.effective)
	s.metrics.UpdateConcurrencyController(name, out.conc.mode, out.conc.target)
	return nil
}

// readMetric reads one scaling signal of fn (spec-modules §3 "Metric sources").
func (s *Scaler) readMetric(fn string, m *function.ScalingMetric, e *entry, now time.Time) float64 {
	if m == nil || m.Type == nil {
		return 0
	}
	switch *m.Type {
	case "queue_depth":
		return float64(s.metrics.QueueDepth(fn))
	case "in_flight":
		return float64(s.metrics.InFlight(fn))
	case "rps":
		var rate float64
		rate, e.rps = rpsRate(e.rps, s.dispatches.DispatchCount(fn), now.UnixMilli())
		return rate
	}
	s.log.Warn("autoscaler: unknown metric type, reading 0", "function", fn, "type", *m.Type)
	return 0
}

// noopSource is the core ScalingMetricsSource used without the async queue.
type noopSource struct{}

func (noopSource) QueueDepth(string) int                                                    { return 0 }
func (noopSource) InFlight(string) int                                                      { return 0 }
func (noopSource) SetEffectiveConcurrency(string, int)                                      {}
func (noopSource) UpdateConcurrencyController(string, function.ConcurrencyControlMode, int) {}
