package runtimeconfig

import (
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names, exactly as the reference exposes them (spec-modules §4 "Metrics").
const (
	metricRevision      = "controlplane_runtime_config_revision"
	metricUpdates       = "controlplane_runtime_config_updates_total"
	metricApplyDuration = "controlplane_runtime_config_apply_duration_seconds"
)

// serviceMetrics are the module's meters. Updates are rare (one per admin PATCH), so plain
// client_golang meters and a mutex-guarded max are simple enough.
type serviceMetrics struct {
	revision      prometheus.Gauge
	success       prometheus.Counter
	failure       prometheus.Counter
	applyDuration prometheus.Summary
	applyMax      *windowMax
}

func newServiceMetrics(reg prometheus.Registerer, clock func() time.Time) (*serviceMetrics, error) {
	updates := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricUpdates,
		Help: "Runtime configuration updates by outcome.",
	}, []string{"status"})
	m := &serviceMetrics{
		revision: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: metricRevision,
			Help: "Revision of the runtime configuration last applied successfully.",
		}),
		// Both series exist from the start (at 0), as in the reference.
		success: updates.WithLabelValues("success"),
		failure: updates.WithLabelValues("failure"),
		// No objectives: Micrometer timers without percentiles expose only _count and _sum.
		applyDuration: prometheus.NewSummary(prometheus.SummaryOpts{
			Name: metricApplyDuration,
			Help: "Time to apply a runtime configuration update to live components, in seconds.",
		}),
		applyMax: newWindowMax(clock),
	}
	maxGauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: metricApplyDuration + "_max",
		Help: "Time to apply a runtime configuration update: decaying maximum, in seconds.",
	}, func() float64 { return m.applyMax.poll().Seconds() })
	for _, c := range []prometheus.Collector{m.revision, updates, m.applyDuration, maxGauge} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register runtime-config metrics: %w", err)
		}
	}
	return m, nil
}

func (m *serviceMetrics) recordApply(d time.Duration) {
	if d < 0 {
		d = 0
	}
	m.applyDuration.Observe(d.Seconds())
	m.applyMax.record(d)
}

// Micrometer's TimeWindowMax settings for a Prometheus registry: 3 buckets rotated every minute,
// so a max stays visible for 2 to 3 minutes after the last sample.
const (
	maxRotateInterval = time.Minute
	maxBuckets        = 3
)

// windowMax is Micrometer's TimeWindowMax: a ring of buckets that every sample raises, the
// current one cleared and advanced once per rotation interval.
type windowMax struct {
	clock func() time.Time

	mu         sync.Mutex
	lastRotate time.Time
	current    int
	buckets    [maxBuckets]time.Duration
}

func newWindowMax(clock func() time.Time) *windowMax {
	return &windowMax{clock: clock, lastRotate: clock()}
}

func (w *windowMax) record(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rotate(w.clock())
	for i := range w.buckets {
		w.buckets[i] = max(w.buckets[i], d)
	}
}

func (w *windowMax) poll() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rotate(w.clock())
	return w.buckets[w.current]
}

func (w *windowMax) rotate(now time.Time) {
	elapsed := now.Sub(w.lastRotate)
	if elapsed < maxRotateInterval {
		return
	}
	if elapsed >= maxRotateInterval*maxBuckets {
		w.buckets = [maxBuckets]time.Duration{}
		w.current = 0
		w.lastRotate = now.Add(-(elapsed % maxRotateInterval))
		return
	}
	for elapsed >= maxRotateInterval {
		w.buckets[w.current] = 0
		w.current = (w.current + 1) % maxBuckets
		elapsed -= maxRotateInterval
		w.lastRotate = w.lastRotate.Add(maxRotateInterval)
	}
}
