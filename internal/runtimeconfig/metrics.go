package runtimeconfig

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nanofaas/control-plane/internal/metrics"
)

// Metric names, exactly as the reference exposes them (spec-modules §4 "Metrics").
const (
	metricRevision      = "controlplane_runtime_config_revision"
	metricUpdates       = "controlplane_runtime_config_updates_total"
	metricApplyDuration = "controlplane_runtime_config_apply_duration_seconds"
)

// serviceMetrics are the module's meters. Updates are rare (one per admin PATCH), so plain
// client_golang meters are simple enough; the `_max` gauge is Micrometer's decaying max.
type serviceMetrics struct {
	clock         func() time.Time
	revision      prometheus.Gauge
	success       prometheus.Counter
	failure       prometheus.Counter
	applyDuration prometheus.Summary
	applyMax      *metrics.DecayingMax
}

func newServiceMetrics(reg prometheus.Registerer, clock func() time.Time) (*serviceMetrics, error) {
	updates := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricUpdates,
		Help: "Runtime configuration updates by outcome.",
	}, []string{"status"})
	m := &serviceMetrics{
		clock: clock,
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
		applyMax: metrics.NewDecayingMax(clock()),
	}
	maxGauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: metricApplyDuration + "_max",
		Help: "Time to apply a runtime configuration update: decaying maximum, in seconds.",
	}, func() float64 { return m.applyMax.Poll(m.clock()).Seconds() })
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
	m.applyMax.Record(d, m.clock())
}
