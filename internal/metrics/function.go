package metrics

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

const functionLabel = "function"

// Counter indexes into Meters.counters, in exposition order.
const (
	cEnqueue = iota
	cDispatch
	cSuccess
	cError
	cRetry
	cTimeout
	cQueueRejected
	cColdStart
	cWarmStart
	numCounters
)

// Timer indexes into Meters.timers.
const (
	tLatency = iota
	tInitDuration
	tQueueWait
	tE2E
	numTimers
)

// Summary settings approximating Micrometer's client-side percentiles (spec-core §9.1).
const (
	summaryMaxAge     = 2 * time.Minute
	summaryAgeBuckets = 3
)

// FunctionMetrics owns the per-function core meters and exposes them through one collector
// registered on the given registry. Meters are created lazily by For, all 13 at once.
type FunctionMetrics struct {
	clock func() time.Time
	noop  *Meters // shared sink for removed functions; also the "removed" mark in the table

	// meters maps name → *Meters. The hot path is a lock-free sync.Map read; writes (a
	// function's first event, register, remove) are rare, touch one entry and are serialised by
	// mu so that a removal and a first event cannot interleave.
	meters sync.Map
	mu     sync.Mutex
}

// NewFunctionMetrics registers the core function meters on reg. clock drives the decaying `_max`
// gauges; nil means time.Now.
func NewFunctionMetrics(reg prometheus.Registerer, clock func() time.Time) (*FunctionMetrics, error) {
	if clock == nil {
		clock = time.Now
	}
	fm := &FunctionMetrics{clock: clock, noop: &Meters{}}
	if err := reg.Register(newCollector(fm)); err != nil {
		return nil, fmt.Errorf("register function metrics: %w", err)
	}
	return fm, nil
}

// For returns the meters of fn, creating all of them on the first call. For a removed function it
// returns a shared no-op Meters until RegisterFunction is called for it again.
func (fm *FunctionMetrics) For(fn string) *Meters {
	if m := fm.lookup(fn); m != nil {
		return m
	}
	fm.mu.Lock()
	defer fm.mu.Unlock()
	if m := fm.lookup(fn); m != nil {
		return m
	}
	m := newMeters(fm.clock)
	fm.meters.Store(fn, m)
	return m
}

func (fm *FunctionMetrics) lookup(fn string) *Meters {
	if v, ok := fm.meters.Load(fn); ok {
		return v.(*Meters)
	}
	return nil
}

// DispatchCount returns the current value of function_dispatch_total for fn (0 when it has no
// live meters). Unlike For it never creates meters: the autoscaler polls it for every function.
func (fm *FunctionMetrics) DispatchCount(fn string) float64 {
	m := fm.lookup(fn)
	if m == nil || !m.live {
		return 0
	}
	return float64(m.counters[cDispatch].Load())
}

// RegisterFunction clears the removed mark of fn so that its next event creates fresh meters.
// It creates no meters itself.
func (fm *FunctionMetrics) RegisterFunction(fn string) {
	fm.mu.Lock()
	defer fm.mu.Unlock()
	if fm.lookup(fn) == fm.noop {
		fm.meters.Delete(fn)
	}
}

// RemoveFunction deletes every meter of fn from the exposition and drops its further events until
// RegisterFunction(fn). A *Meters obtained before the removal keeps working but is no longer
// exported, so a racing caller cannot bring the series back.
func (fm *FunctionMetrics) RemoveFunction(fn string) {
	fm.mu.Lock()
	defer fm.mu.Unlock()
	if fm.lookup(fn) != fm.noop {
		fm.meters.Store(fn, fm.noop)
	}
}

// Meters are the 13 meters of one function, handed to the invocation hot path. Counters are plain
// atomics (one add per event); timer observers are held directly so no label lookup happens per
// event. The zero value is a no-op sink.
type Meters struct {
	live     bool
	clock    func() time.Time
	counters [numCounters]atomic.Uint64
	timers   [numTimers]timer
}

type timer struct {
	summary prometheus.Summary
	max     DecayingMax
}

func newMeters(clock func() time.Time) *Meters {
	m := &Meters{live: true, clock: clock}
	now := clock()
	for i := range m.timers {
		// Name and help are unused: the collector exposes these through its own descriptors.
		m.timers[i].summary = prometheus.NewSummary(prometheus.SummaryOpts{
			Name:       "timer",
			Help:       "timer",
			Objectives: map[float64]float64{0.5: 0.05, 0.95: 0.01, 0.99: 0.001},
			MaxAge:     summaryMaxAge,
			AgeBuckets: summaryAgeBuckets,
		})
		m.timers[i].max.Init(now)
	}
	return m
}

func (m *Meters) inc(i int) {
	if m.live {
		m.counters[i].Add(1)
	}
}

// observe records d like a Micrometer Timer: negative durations are ignored.
func (m *Meters) observe(i int, d time.Duration) {
	if !m.live || d < 0 {
		return
	}
	t := &m.timers[i]
	t.summary.Observe(d.Seconds())
	t.max.Record(d, m.clock())
}

// Enqueue counts a successful admission into the async queue (function_enqueue_total).
func (m *Meters) Enqueue() { m.inc(cEnqueue) }

// Dispatch counts a dispatch attempt (function_dispatch_total).
func (m *Meters) Dispatch() { m.inc(cDispatch) }

// Success counts a final successful completion (function_success_total).
func (m *Meters) Success() { m.inc(cSuccess) }

// Error counts a final failed completion (function_error_total).
func (m *Meters) Error() { m.inc(cError) }

// Retry counts a retry decision (function_retry_total).
func (m *Meters) Retry() { m.inc(cRetry) }

// Timeout counts a sync waiter that timed out (function_timeout_total).
func (m *Meters) Timeout() { m.inc(cTimeout) }

// QueueRejected counts an enqueue refused by a full queue (function_queue_rejected_total).
func (m *Meters) QueueRejected() { m.inc(cQueueRejected) }

// ColdStart counts a final completion served by a cold start (function_cold_start_total).
func (m *Meters) ColdStart() { m.inc(cColdStart) }

// WarmStart counts a final completion served warm (function_warm_start_total).
func (m *Meters) WarmStart() { m.inc(cWarmStart) }

// Latency records finishedAt − startedAt (function_latency_ms timer).
func (m *Meters) Latency(d time.Duration) { m.observe(tLatency, d) }

// InitDuration records a cold start's init duration (function_init_duration_ms timer).
func (m *Meters) InitDuration(d time.Duration) { m.observe(tInitDuration, d) }

// QueueWait records startedAt − enqueuedAt (function_queue_wait_ms timer).
func (m *Meters) QueueWait(d time.Duration) { m.observe(tQueueWait, d) }

// E2E records finishedAt − enqueuedAt (function_e2e_latency_ms timer).
func (m *Meters) E2E(d time.Duration) { m.observe(tE2E, d) }

// collector exposes every live Meters of a FunctionMetrics with the reference's names: counters
// as-is, each timer as summary `<name>_seconds` plus gauge `<name>_seconds_max`, values in seconds.
type collector struct {
	fm        *FunctionMetrics
	counters  [numCounters]*prometheus.Desc
	summaries [numTimers]*prometheus.Desc
	maxes     [numTimers]*prometheus.Desc
}

func newCollector(fm *FunctionMetrics) *collector {
	c := &collector{fm: fm}
	counters := [numCounters][2]string{
		cEnqueue:       {"function_enqueue_total", "Invocations admitted into the async queue, including retry re-enqueues."},
		cDispatch:      {"function_dispatch_total", "Dispatch attempts."},
		cSuccess:       {"function_success_total", "Executions completed successfully."},
		cError:         {"function_error_total", "Executions completed with an error."},
		cRetry:         {"function_retry_total", "Retries decided after a failed attempt."},
		cTimeout:       {"function_timeout_total", "Synchronous waiters that timed out."},
		cQueueRejected: {"function_queue_rejected_total", "Enqueues refused because the queue was full."},
		cColdStart:     {"function_cold_start_total", "Completions served by a cold start."},
		cWarmStart:     {"function_warm_start_total", "Completions served warm."},
	}
	timers := [numTimers][2]string{
		tLatency:      {"function_latency_ms", "Execution latency from dispatch start to finish"},
		tInitDuration: {"function_init_duration_ms", "Cold-start init duration"},
		tQueueWait:    {"function_queue_wait_ms", "Wait between enqueue and dispatch start"},
		tE2E:          {"function_e2e_latency_ms", "End-to-end latency from enqueue to finish"},
	}
	labels := []string{functionLabel}
	for i, n := range counters {
		c.counters[i] = prometheus.NewDesc(n[0], n[1], labels, nil)
	}
	for i, n := range timers {
		c.summaries[i] = prometheus.NewDesc(n[0]+"_seconds", n[1]+", in seconds.", labels, nil)
		c.maxes[i] = prometheus.NewDesc(n[0]+"_seconds_max", n[1]+": decaying maximum, in seconds.", labels, nil)
	}
	return c
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.counters {
		ch <- d
	}
	for i := range c.summaries {
		ch <- c.summaries[i]
		ch <- c.maxes[i]
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	now := c.fm.clock()
	c.fm.meters.Range(func(k, v any) bool {
		fn, m := k.(string), v.(*Meters)
		if !m.live {
			return true
		}
		for i := range m.counters {
			ch <- prometheus.MustNewConstMetric(c.counters[i], prometheus.CounterValue, float64(m.counters[i].Load()), fn)
		}
		for i := range m.timers {
			t := &m.timers[i]
			ch <- c.summary(c.summaries[i], t.summary, fn)
			ch <- prometheus.MustNewConstMetric(c.maxes[i], prometheus.GaugeValue, t.max.Poll(now).Seconds(), fn)
		}
		return true
	})
}

// summary re-labels a per-function Summary under desc. Quantiles of an empty window are NaN in
// client_golang but 0 in Micrometer; the reference's 0 is kept.
func (c *collector) summary(desc *prometheus.Desc, s prometheus.Summary, fn string) prometheus.Metric {
	var pb dto.Metric
	if err := s.Write(&pb); err != nil {
		return prometheus.NewInvalidMetric(desc, err)
	}
	qs := pb.GetSummary().GetQuantile()
	quantiles := make(map[float64]float64, len(qs))
	for _, q := range qs {
		v := q.GetValue()
		if math.IsNaN(v) {
			v = 0
		}
		quantiles[q.GetQuantile()] = v
	}
	m, err := prometheus.NewConstSummary(desc, pb.GetSummary().GetSampleCount(), pb.GetSummary().GetSampleSum(), quantiles, fn)
	if err != nil {
		return prometheus.NewInvalidMetric(desc, err)
	}
	return m
}
