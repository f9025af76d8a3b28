package autoscaler

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/nanofaas/control-plane/internal/function"
)

// Hard-coded constants of the reference (spec-modules §3): they come neither from properties
// nor from the spec's concurrencyControl.
const (
	scaleUpCooldownMs   = 30_000
	scaleDownCooldownMs = 60_000
	// defaultMetricTarget replaces a null, blank or unparseable metric target.
	defaultMetricTarget = 50.0
	// Fallbacks for an unresolved scaling config (the resolver always sets both).
	fallbackMinReplicas = 1
	fallbackMaxReplicas = 10
)

// decision is the replica decision of one tick for one function, before cooldowns.
type decision struct {
	current    int     // normCurrent: ready replicas, or max(1, minReplicas) when none are ready
	desired    int     // clamp(ceil(maxRatio × current), minReplicas, maxReplicas)
	maxRatio   float64 // max over metrics of value/target (0 when no metric counts)
	maxReached bool    // current >= maxReplicas (the adaptive controller's atMax)
}

// downSignal reports whether the load asks for fewer replicas than normCurrent.
func (d decision) downSignal() bool { return d.desired < d.current }

// decide computes the replica decision from the ready replica count and one reading per entry
// of sc.Metrics (values[i] belongs to sc.Metrics[i]; missing readings count as 0).
func decide(sc *function.ScalingConfig, ready int, values []float64) decision {
	lo, hi := replicaBounds(sc)
	current := ready
	if current <= 0 {
		current = max(1, lo)
	}
	ratio := maxRatio(sc.Metrics, values)
	desired := max(lo, min(hi, ceilInt32(ratio*float64(current))))
	return decision{current: current, desired: desired, maxRatio: ratio, maxReached: current >= hi}
}

func replicaBounds(sc *function.ScalingConfig) (lo, hi int) {
	lo, hi = fallbackMinReplicas, fallbackMaxReplicas
	if sc.MinReplicas != nil {
		lo = *sc.MinReplicas
	}
	if sc.MaxReplicas != nil {
		hi = *sc.MaxReplicas
	}
	return lo, hi
}

// maxRatio is the largest value/target over the metrics whose parsed target is > 0; it starts
// at 0, so negative or all-ignored metrics yield 0.
func maxRatio(metrics []*function.ScalingMetric, values []float64) float64 {
	best := 0.0
	for i, m := range metrics {
		if m == nil {
			continue
		}
		target := parseMetricTarget(m.Target)
		if !(target > 0) { // also drops NaN
			continue
		}
		v := 0.0
		if i < len(values) {
			v = values[i]
		}
		best = math.Max(best, v/target)
	}
	return best
}

// parseMetricTarget parses a metric target like Java's Double.parseDouble, falling back to 50.0
// for a null, blank or unparseable target.
func parseMetricTarget(target *string) float64 {
	if target == nil {
		return defaultMetricTarget
	}
	if v, ok := parseJavaDouble(*target); ok {
		return v
	}
	return defaultMetricTarget
}

// parseJavaDouble accepts what Java's Double.parseDouble accepts (for the reference's targets
// the differences with strconv matter: surrounding whitespace, "5d"/"5f" suffixes, "Infinity";
// but no "inf", "nan" or '_').
func parseJavaDouble(s string) (float64, bool) {
	s = strings.TrimFunc(s, func(r rune) bool { return r <= ' ' })
	body := strings.TrimLeft(s, "+-")
	if len(s)-len(body) > 1 {
		return 0, false
	}
	switch body {
	case "":
		return 0, false
	case "NaN":
		return math.NaN(), true
	case "Infinity":
		if s[0] == '-' {
			return math.Inf(-1), true
		}
		return math.Inf(1), true
	}
	// A trailing f/F/d/D is Java's type suffix; in a hex float it can only follow the
	// (decimal) binary exponent, so it is never mistaken for a hex digit there.
	if last := s[len(s)-1]; strings.IndexByte("fFdD", last) >= 0 && (!isHex(body) || strings.ContainsAny(body, "pP")) {
		s = s[:len(s)-1]
	}
	// Refuse what strconv accepts but Java does not ("inf", "nan", '_' separators).
	for i := 0; i < len(s); i++ {
		if strings.IndexByte("0123456789.eE+-xXpPabcdefABCDEF", s[i]) < 0 {
			return 0, false
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) { // out of range → ±Inf/0, as in Java
		return 0, false
	}
	return v, true
}

func isHex(s string) bool { return strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") }

// ceilInt32 is Java's (int) Math.ceil(x): NaN → 0, saturating at the int32 range.
func ceilInt32(x float64) int {
	c := math.Ceil(x)
	switch {
	case math.IsNaN(c):
		return 0
	case c >= math.MaxInt32:
		return math.MaxInt32
	case c <= math.MinInt32:
		return math.MinInt32
	}
	return int(c)
}

// action is what a tick does to the replica count.
type action uint8

const (
	actNone action = iota
	actScaleUp
	actScaleDown
)

func (a action) String() string {
	switch a {
	case actScaleUp:
		return "up"
	case actScaleDown:
		return "down"
	}
	return "none"
}

// cooldowns remembers the last scale action per direction of one function (zero = never).
type cooldowns struct {
	lastUp, lastDown time.Time
}

// gate applies the per-direction cooldowns to d at now: a scale-up is skipped when the last
// one is less than 30 000 ms old, a scale-down when the last one is less than 60 000 ms old
// (compared in whole epoch milliseconds, as the reference does).
func (c cooldowns) gate(d decision, now time.Time) action {
	switch {
	case d.desired > d.current:
		if !c.lastUp.IsZero() && now.UnixMilli()-c.lastUp.UnixMilli() < scaleUpCooldownMs {
			return actNone
		}
		return actScaleUp
	case d.downSignal():
		if !c.lastDown.IsZero() && now.UnixMilli()-c.lastDown.UnixMilli() < scaleDownCooldownMs {
			return actNone
		}
		return actScaleDown
	}
	return actNone
}

// record returns c after performing a at now.
func (c cooldowns) record(a action, now time.Time) cooldowns {
	switch a {
	case actScaleUp:
		c.lastUp = now
	case actScaleDown:
		c.lastDown = now
	}
	return c
}

// effectiveReplicas is the replica count concurrency control works with: the new count when
// the tick scales, normCurrent otherwise.
func effectiveReplicas(d decision, a action) int {
	if a == actNone {
		return d.current
	}
	return d.desired
}

// fnState is the per-function scaler state carried from tick to tick.
type fnState struct {
	cool     cooldowns
	adaptive *adaptiveState // nil until the first ADAPTIVE_PER_POD tick; never mutated in place
}

// outcome is one function's tick: the decision, the action to take on the replicas and, for
// when that action succeeds (or there is none), the next state and the concurrency to push.
type outcome struct {
	decision decision
	action   action
	next     fnState
	conc     concurrency
}

// evaluate is a whole tick for one function as a pure function of the ready replicas, the
// metric readings (values[i] for spec.ScalingConfig.Metrics[i]), the previous state and now.
// spec must have a ScalingConfig.
func evaluate(spec *function.Spec, ready int, values []float64, st fnState, now time.Time) outcome {
	sc := spec.ScalingConfig
	d := decide(sc, ready, values)
	a := st.cool.gate(d, now)
	conc, adaptive := controlConcurrency(sc.ConcurrencyControl, controlInput{
		configured: spec.ConcurrencyLimit(),
		replicas:   effectiveReplicas(d, a),
		loadRatio:  d.maxRatio,
		downSignal: d.downSignal(),
		atMax:      d.maxReached,
		nowMs:      now.UnixMilli(),
	}, st.adaptive)
	return outcome{
		decision: d,
		action:   a,
		next:     fnState{cool: st.cool.record(a, now), adaptive: adaptive},
		conc:     conc,
	}
}

// rpsSample is the last function_dispatch_total reading of a function.
type rpsSample struct {
	count float64
	atMs  int64
	ok    bool
}

// rpsRate returns the dispatch rate since prev and the sample to keep: 0 on the first read,
// else Δcount/(Δms/1000), or 0 when Δcount ≤ 0 or Δms ≤ 0. Every read replaces the sample.
func rpsRate(prev rpsSample, count float64, nowMs int64) (float64, rpsSample) {
	cur := rpsSample{count: count, atMs: nowMs, ok: true}
	if !prev.ok {
		return 0, cur
	}
	dc, dms := count-prev.count, nowMs-prev.atMs
	if dc <= 0 || dms <= 0 {
		return 0, cur
	}
	return dc / (float64(dms) / 1000), cur
}
