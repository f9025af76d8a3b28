// Package metrics owns the control plane's Prometheus registry and the core per-function meters
// of spec-core §9: nine counters and four timers labelled `function`, created lazily on the first
// event for a function, deleted when the function is removed, and exposed with the same names and
// shapes as the Java reference's Micrometer output.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// NewRegistry returns the registry served on the management listener, with the Go runtime and
// process collectors already registered (the Go counterparts of the reference's jvm_*/process_*).
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}
