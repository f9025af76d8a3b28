package registry

import (
	"maps"
	"slices"

	"github.com/nanofaas/control-plane/internal/failure"
	"github.com/nanofaas/control-plane/internal/function"
)

// Defaults are the nanofaas.defaults.* values applied to absent spec fields. They are plain ints
// without validation, as in the reference.
type Defaults struct {
	TimeoutMs   int
	Concurrency int
	QueueSize   int
	MaxRetries  int
}

// ReferenceDefaults returns the shipped defaults: 30000 ms, 4, 100, 3.
func ReferenceDefaults() Defaults {
	return Defaults{TimeoutMs: 30000, Concurrency: 4, QueueSize: 100, MaxRetries: 3}
}

// Defaults of the scaling block and of per-pod concurrency control (spec-core §4.2).
const (
	defaultMinReplicas         = 1
	defaultMaxReplicas         = 10
	defaultMetricType          = "queue_depth"
	defaultMetricTarget        = "5"
	defaultMinTargetPerPod     = 1
	defaultMaxTargetPerPod     = 8
	defaultTargetPerPod        = 2
	defaultUpscaleCooldownMs   = int64(30000)
	defaultDownscaleCooldownMs = int64(60000)
	defaultHighLoadThreshold   = 0.85
	defaultLowLoadThreshold    = 0.35
)

// internalMetrics are the metric types INTERNAL scaling understands.
var internalMetrics = []string{"queue_depth", "in_flight", "rps"}

// Resolver applies defaults and validates scaling settings (the reference's
// FunctionSpecResolver). It is stateless beyond its defaults and safe for concurrent use.
type Resolver struct {
	defaults Defaults
}

// NewResolver returns a Resolver applying d.
func NewResolver(d Defaults) *Resolver { return &Resolver{defaults: d} }

// Resolve returns the resolved copy of spec (spec itself is not modified and nothing in the
// result aliases it). Invalid scaling settings are failure.InvalidArgument with the
// reference's messages. Bean validation (Spec.Validate) is the caller's job and comes first.
func (r *Resolver) Resolve(spec *function.Spec) (*function.Spec, error) {
	out := cloneSpec(spec)
	if out.ExecutionMode == nil {
		out.ExecutionMode = ptr(function.ModeDeployment)
	}
	if out.Command == nil {
		out.Command = []string{}
	}
	if out.Env == nil {
		out.Env = map[string]string{}
	}
	out.TimeoutMs = orDefault(out.TimeoutMs, r.defaults.TimeoutMs)
	out.Concurrency = orDefault(out.Concurrency, r.defaults.Concurrency)
	out.QueueSize = orDefault(out.QueueSize, r.defaults.QueueSize)
	out.MaxRetries = orDefault(out.MaxRetries, r.defaults.MaxRetries)
	if out.RuntimeMode == nil {
		out.RuntimeMode = ptr(function.RuntimeHTTP)
	}
	if *out.ExecutionMode == function.ModeDeployment {
		sc, err := resolveScaling(out.ScalingConfig)
		if err != nil {
			return nil, err
		}
		out.ScalingConfig = sc
	}
	return out, nil
}

// resolveScaling applies §4.2 step 3 to an already-copied config, in the reference's order.
func resolveScaling(sc *function.ScalingConfig) (*function.ScalingConfig, error) {
	if sc == nil {
		sc = &function.ScalingConfig{}
	}
	if sc.Strategy == nil {
		sc.Strategy = ptr(function.StrategyInternal)
	}
	if len(sc.Metrics) == 0 {
		sc.Metrics = []*function.ScalingMetric{{Type: ptr(defaultMetricType), Target: ptr(defaultMetricTarget)}}
	}
	if *sc.Strategy == function.StrategyInternal {
		for _, m := range sc.Metrics {
			if m == nil || m.Type == nil || !slices.Contains(internalMetrics, *m.Type) {
				typ := "null"
				if m != nil && m.Type != nil {
					typ = *m.Type
				}
				return nil, failure.Invalidf("Unsupported INTERNAL scaling metric: %s", typ)
			}
		}
	}
	sc.MinReplicas = orDefault(sc.MinReplicas, defaultMinReplicas)
	sc.MaxReplicas = orDefault(sc.MaxReplicas, defaultMaxReplicas)
	switch {
	case *sc.MinReplicas < 0:
		return nil, failure.Invalidf("minReplicas must be >= 0")
	case *sc.MaxReplicas < 1:
		return nil, failure.Invalidf("maxReplicas must be >= 1")
	case *sc.MinReplicas > *sc.MaxReplicas:
		return nil, failure.Invalidf("minReplicas must be <= maxReplicas")
	}
	sc.ConcurrencyControl = normalizeConcurrency(sc.ConcurrencyControl)
	return sc, nil
}

// normalizeConcurrency applies §4.2 step 4: FIXED keeps only the mode; per-pod modes get
// bounded, clamped targets and the cooldown/threshold defaults.
func normalizeConcurrency(cc *function.ConcurrencyControlConfig) *function.ConcurrencyControlConfig {
	if cc == nil || cc.Mode == nil || *cc.Mode == function.ConcurrencyFixed {
		return &function.ConcurrencyControlConfig{Mode: ptr(function.ConcurrencyFixed)}
	}
	lo := defaultMinTargetPerPod
	if cc.MinTargetInFlightPerPod != nil {
		lo = max(1, *cc.MinTargetInFlightPerPod)
	}
	hi := defaultMaxTargetPerPod
	if cc.MaxTargetInFlightPerPod != nil {
		hi = max(1, *cc.MaxTargetInFlightPerPod)
	}
	lo = min(lo, hi)
	target := defaultTargetPerPod
	if cc.TargetInFlightPerPod != nil {
		target = *cc.TargetInFlightPerPod
	}
	target = min(max(target, lo), hi)
	return &function.ConcurrencyControlConfig{
		Mode:                    ptr(*cc.Mode),
		TargetInFlightPerPod:    ptr(target),
		MinTargetInFlightPerPod: ptr(lo),
		MaxTargetInFlightPerPod: ptr(hi),
		UpscaleCooldownMs:       orDefault(cc.UpscaleCooldownMs, defaultUpscaleCooldownMs),
		DownscaleCooldownMs:     orDefault(cc.DownscaleCooldownMs, defaultDownscaleCooldownMs),
		HighLoadThreshold:       orDefault(cc.HighLoadThreshold, defaultHighLoadThreshold),
		LowLoadThreshold:        orDefault(cc.LowLoadThreshold, defaultLowLoadThreshold),
	}
}

func ptr[T any](v T) *T { return &v }

// orDefault returns a fresh pointer to *p, or to def when p is nil, so results never alias input.
func orDefault[T any](p *T, def T) *T {
	if p != nil {
		return ptr(*p)
	}
	return ptr(def)
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	return ptr(*p)
}

// cloneSpec deep-copies spec so the resolved spec is immutable whatever the caller does later.
func cloneSpec(s *function.Spec) *function.Spec {
	out := &function.Spec{
		Name:             s.Name,
		Image:            s.Image,
		Command:          slices.Clone(s.Command),
		Env:              maps.Clone(s.Env),
		TimeoutMs:        clonePtr(s.TimeoutMs),
		Concurrency:      clonePtr(s.Concurrency),
		QueueSize:        clonePtr(s.QueueSize),
		MaxRetries:       clonePtr(s.MaxRetries),
		EndpointURL:      clonePtr(s.EndpointURL),
		ExecutionMode:    clonePtr(s.ExecutionMode),
		RuntimeMode:      clonePtr(s.RuntimeMode),
		RuntimeCommand:   clonePtr(s.RuntimeCommand),
		ImagePullSecrets: slices.Clone(s.ImagePullSecrets),
	}
	if s.Resources != nil {
		out.Resources = &function.ResourceSpec{CPU: clonePtr(s.Resources.CPU), Memory: clonePtr(s.Resources.Memory)}
	}
	if sc := s.ScalingConfig; sc != nil {
		c := &function.ScalingConfig{
			Strategy:    clonePtr(sc.Strategy),
			MinReplicas: clonePtr(sc.MinReplicas),
			MaxReplicas: clonePtr(sc.MaxReplicas),
		}
		if sc.Metrics != nil {
			c.Metrics = make([]*function.ScalingMetric, len(sc.Metrics))
			for i, m := range sc.Metrics {
				if m != nil {
					c.Metrics[i] = &function.ScalingMetric{Type: clonePtr(m.Type), Target: clonePtr(m.Target), Query: clonePtr(m.Query)}
				}
			}
		}
		if cc := sc.ConcurrencyControl; cc != nil {
			c.ConcurrencyControl = &function.ConcurrencyControlConfig{
				Mode:                    clonePtr(cc.Mode),
				TargetInFlightPerPod:    clonePtr(cc.TargetInFlightPerPod),
				MinTargetInFlightPerPod: clonePtr(cc.MinTargetInFlightPerPod),
				MaxTargetInFlightPerPod: clonePtr(cc.MaxTargetInFlightPerPod),
				UpscaleCooldownMs:       clonePtr(cc.UpscaleCooldownMs),
				DownscaleCooldownMs:     clonePtr(cc.DownscaleCooldownMs),
				HighLoadThreshold:       clonePtr(cc.HighLoadThreshold),
				LowLoadThreshold:        clonePtr(cc.LowLoadThreshold),
			}
		}
		out.ScalingConfig = c
	}
	return out
}
