package queue

import (
	"github.com/prometheus/client_golang/prometheus"
)

// collector exposes the five queue gauges (7 series per function) by reading the live state at
// scrape time, so the hot path never touches a gauge: a function's series exist exactly while
// it has state, i.e. from register to remove.
type collector struct {
	m          *Manager
	depth      *prometheus.Desc
	inFlight   *prometheus.Desc
	effective  *prometheus.Desc
	target     *prometheus.Desc
	mode       *prometheus.Desc
	modeLabels [len(modes)]string
}

func newCollector(m *Manager) *collector {
	fn := []string{"function"}
	c := &collector{
		m:         m,
		depth:     prometheus.NewDesc("function_queue_depth", "Invocations waiting in the function's async queue.", fn, nil),
		inFlight:  prometheus.NewDesc("function_inFlight", "Dispatch slots of the function in use.", fn, nil),
		effective: prometheus.NewDesc("function_effective_concurrency", "Current effective concurrency limit of the function.", fn, nil),
		target:    prometheus.NewDesc("function_target_inflight_per_pod", "Concurrency controller target in-flight per pod (0 for FIXED).", fn, nil),
		mode: prometheus.NewDesc("function_concurrency_controller_mode",
			"Concurrency controller mode of the function: 1 for the active mode, 0 otherwise.", []string{"function", "mode"}, nil),
	}
	for i, md := range modes {
		c.modeLabels[i] = string(md)
	}
	return c
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.depth
	ch <- c.inFlight
	ch <- c.effective
	ch <- c.target
	ch <- c.mode
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	c.m.states.Range(func(k, v any) bool {
		fn, st := k.(string), v.(*state)
		ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(st.depth.Load()), fn)
		ch <- prometheus.MustNewConstMetric(c.inFlight, prometheus.GaugeValue, float64(st.inFlight.Load()), fn)
		ch <- prometheus.MustNewConstMetric(c.effective, prometheus.GaugeValue, float64(st.effective.Load()), fn)
		ch <- prometheus.MustNewConstMetric(c.target, prometheus.GaugeValue, float64(st.target.Load()), fn)
		active := st.mode.Load()
		for i, label := range c.modeLabels {
			v := 0.0
			if int32(i) == active {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(c.mode, prometheus.GaugeValue, v, fn, label)
		}
		return true
	})
}
