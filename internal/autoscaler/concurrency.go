package autoscaler

import (
	"github.com/nanofaas/control-plane/internal/function"
)

// Defaults of the per-pod controllers for fields a resolved spec leaves unset.
const (
	defaultStaticTargetPerPod   = 1
	defaultAdaptiveTargetPerPod = 2
	defaultAdaptiveMinTarget    = 1
	defaultAdaptiveMaxTarget    = 8
	defaultUpCooldownMs         = 30_000
	defaultDownCooldownMs       = 60_000
	defaultHighLoadThreshold    = 0.85
	defaultLowLoadThreshold     = 0.35
)

// concurrency is what a tick pushes to the ScalingMetricsSource.
type concurrency struct {
	effective int
	mode      function.ConcurrencyControlMode
	target    int // reported target in-flight per pod (0 for FIXED)
}

// adaptiveState is the per-function state of ADAPTIVE_PER_POD. The times are epoch
// milliseconds and start at 0, as in the reference (so the first tick is never in cooldown).
type adaptiveState struct {
	target          int
	lastIncreaseMs  int64
	lastDecreaseMs  int64
	lastReplicaDown int64
}

// controlInput is what the concurrency controllers see of one tick.
type controlInput struct {
	configured int     // spec concurrency
	replicas   int     // effectiveReplicas
	loadRatio  float64 // maxRatio
	downSignal bool
	atMax      bool // normCurrent >= maxReplicas
	nowMs      int64
}

// controlConcurrency applies the spec's concurrency-control mode. For ADAPTIVE_PER_POD it
// takes the function's state (nil = none yet) and returns the next one; other modes return
// prev unchanged.
func controlConcurrency(cc *function.ConcurrencyControlConfig, in controlInput, prev *adaptiveState) (concurrency, *adaptiveState) {
	mode := function.ConcurrencyFixed
	if cc != nil && cc.Mode != nil {
		mode = *cc.Mode
	}
	switch mode {
	case function.ConcurrencyStaticPerPod:
		return concurrency{
			effective: staticPerPod(cc, in.configured, in.replicas),
			mode:      mode,
			target:    derefOr(cc.TargetInFlightPerPod, 0),
		}, prev
	case function.ConcurrencyAdaptivePerPod:
		// The reported target is the state's; the reference's fallback to the spec target or
		// nanofaas.scaling.default-target-in-flight-per-pod applies only when no state exists,
		// which cannot happen right after adaptivePerPod created it.
		next, effective := adaptivePerPod(cc, in, prev)
		return concurrency{effective: effective, mode: mode, target: next.target}, &next
	}
	// FIXED, absent or unknown: the spec's concurrency as is (the queue clamps it to ≥ 1).
	return concurrency{effective: in.configured, mode: function.ConcurrencyFixed}, prev
}

// staticPerPod is min(configured, max(1, replicas) × max(1, target|1)), at least 1.
func staticPerPod(cc *function.ConcurrencyControlConfig, configured, replicas int) int {
	configured = max(1, configured)
	perPod := max(1, derefOr(cc.TargetInFlightPerPod, defaultStaticTargetPerPod))
	return perPodLimit(configured, replicas, perPod)
}

// perPodLimit is max(1, min(configured, max(1, replicas) × perPod)); the product is taken in
// 64 bits like the reference's long arithmetic.
func perPodLimit(configured, replicas, perPod int) int {
	desired := int64(max(1, replicas)) * int64(perPod)
	if desired > int64(configured) {
		return configured
	}
	return max(1, int(desired))
}

// adaptiveParams are the ADAPTIVE_PER_POD knobs of a spec with the reference's fallbacks.
type adaptiveParams struct {
	minTarget, maxTarget, initial int
	upCooldownMs, downCooldownMs  int64
	high, low                     float64
}

func adaptiveParamsOf(cc *function.ConcurrencyControlConfig) adaptiveParams {
	lo := max(1, derefOr(cc.MinTargetInFlightPerPod, defaultAdaptiveMinTarget))
	hi := max(lo, derefOr(cc.MaxTargetInFlightPerPod, defaultAdaptiveMaxTarget))
	return adaptiveParams{
		minTarget:      lo,
		maxTarget:      hi,
		initial:        clamp(derefOr(cc.TargetInFlightPerPod, defaultAdaptiveTargetPerPod), lo, hi),
		upCooldownMs:   derefOr(cc.UpscaleCooldownMs, defaultUpCooldownMs),
		downCooldownMs: derefOr(cc.DownscaleCooldownMs, defaultDownCooldownMs),
		high:           derefOr(cc.HighLoadThreshold, defaultHighLoadThreshold),
		low:            derefOr(cc.LowLoadThreshold, defaultLowLoadThreshold),
	}
}

// adaptivePerPod moves the per-pod target one step per tick: down when the function is at
// max replicas and hot (at most once per down-cooldown), up when it is cold, has not lost
// replicas within the down-cooldown, and was not raised within the up-cooldown. It returns the
// next state and the effective concurrency.
func adaptivePerPod(cc *function.ConcurrencyControlConfig, in controlInput, prev *adaptiveState) (adaptiveState, int) {
	p := adaptiveParamsOf(cc)
	st := adaptiveState{target: p.initial}
	if prev != nil {
		st = *prev
	}
	target := clamp(st.target, p.minTarget, p.maxTarget)
	if in.downSignal {
		st.lastReplicaDown = in.nowMs
	}
	switch {
	case in.atMax && in.loadRatio >= p.high:
		if in.nowMs-st.lastDecreaseMs >= p.downCooldownMs {
			target = max(p.minTarget, target-1)
			st.lastDecreaseMs = in.nowMs
		}
	case in.loadRatio <= p.low:
		recentlyScaledDown := in.nowMs-st.lastReplicaDown < p.downCooldownMs
		if !recentlyScaledDown && in.nowMs-st.lastIncreaseMs >= p.upCooldownMs {
			target = min(p.maxTarget, target+1)
			st.lastIncreaseMs = in.nowMs
		}
	}
	st.target = target
	return st, perPodLimit(max(1, in.configured), in.replicas, target)
}

func clamp(v, lo, hi int) int { return max(lo, min(hi, v)) }

func derefOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}
