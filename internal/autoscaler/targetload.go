package autoscaler

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nanofaas/control-plane/internal/function"
)

// targetLoad is one gateway_service_target_load series of a function.
type targetLoad struct {
	scalingType string
	value       int
}

// scalingTypeOf maps a metric type to its OpenFaaS-style scaling_type ("" = not exported).
func scalingTypeOf(metricType string) string {
	switch metricType {
	case "queue_depth":
		return "queue"
	case "in_flight":
		return "capacity"
	case "rps":
		return "rps"
	case "cpu":
		return "cpu"
	}
	return ""
}

// parseTargetLoad parses a target like Java's Integer.parseInt: null, non-integer ("2.5",
// "abc", " 5") or out-of-int32 strings give 0.
func parseTargetLoad(target *string) int {
	if target == nil {
		return 0
	}
	v, err := strconv.ParseInt(*target, 10, 32)
	if err != nil {
		return 0
	}
	return int(v)
}

// targetLoadsOf returns the series of spec: one per exported scaling_type, in first-seen order,
// a later metric of the same type overwriting the value. Any execution mode and strategy counts.
func targetLoadsOf(spec *function.Spec) []targetLoad {
	if spec.ScalingConfig == nil {
		return nil
	}
	var out []targetLoad
next:
	for _, m := range spec.ScalingConfig.Metrics {
		if m == nil || m.Type == nil {
			continue
		}
		st := scalingTypeOf(*m.Type)
		if st == "" {
			continue
		}
		v := parseTargetLoad(m.Target)
		for i := range out {
			if out[i].scalingType == st {
				out[i].value = v
				continue next
			}
		}
		out = append(out, targetLoad{scalingType: st, value: v})
	}
	return out
}

// collector exposes gateway_service_target_load from the Scaler's function table at scrape
// time, so a function's series exist exactly from OnRegister to OnRemove.
type collector struct {
	s    *Scaler
	desc *prometheus.Desc
}

func newCollector(s *Scaler) *collector {
	return &collector{s: s, desc: prometheus.NewDesc("gateway_service_target_load",
		"Scaling target of the function per scaling type (OpenFaaS-compatible).",
		[]string{"function", "scaling_type"}, nil)}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect copies the table under the lock and sends after releasing it, so a slow scrape
// never delays a registration.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	type series struct {
		fn string
		targetLoad
	}
	c.s.mu.Lock()
	all := make([]series, 0, len(c.s.entries))
	for fn, e := range c.s.entries {
		for _, t := range e.targets {
			all = append(all, series{fn, t})
		}
	}
	c.s.mu.Unlock()
	for _, x := range all {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(x.value), x.fn, x.scalingType)
	}
}
