package autoscaler

import (
	"math"
	"testing"
	"time"

	"github.com/nanofaas/control-plane/internal/function"
)

func TestParseMetricTarget_FollowsJavaParseDoubleWithFallback50(t *testing.T) {
	rows := []struct {
		name   string
		target *string
		want   float64
	}{
		{"null", nil, 50},
		{"empty", ptr(""), 50},
		{"blank", ptr("   "), 50},
		{"garbage", ptr("abc"), 50},
		{"integer", ptr("5"), 5},
		{"surrounding whitespace is trimmed", ptr(" 5\t"), 5},
		{"plus sign", ptr("+5"), 5},
		{"negative", ptr("-1"), -1},
		{"zero", ptr("0"), 0},
		{"decimal", ptr("2.5"), 2.5},
		{"leading dot", ptr(".5"), 0.5},
		{"trailing dot", ptr("5."), 5},
		{"double suffix", ptr("5d"), 5},
		{"float suffix", ptr("5F"), 5},
		{"exponent", ptr("1e1"), 10},
		{"hex float", ptr("0x1p3"), 8},
		{"hex float with suffix", ptr("0x1p3d"), 8},
		{"hex without exponent is invalid", ptr("0x10"), 50},
		{"overflow is infinity", ptr("1e400"), math.Inf(1)},
		{"Infinity", ptr("Infinity"), math.Inf(1)},
		{"-Infinity", ptr("-Infinity"), math.Inf(-1)},
		{"lowercase inf is invalid in Java", ptr("inf"), 50},
		{"lowercase nan is invalid in Java", ptr("nan"), 50},
		{"underscores are invalid", ptr("1_0"), 50},
		{"two signs", ptr("+-5"), 50},
		{"lone sign", ptr("-"), 50},
		{"suffix alone", ptr("d"), 50},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			if got := parseMetricTarget(r.target); got != r.want {
				t.Fatalf("parseMetricTarget(%v) = %v, want %v", deref(r.target), got, r.want)
			}
		})
	}
	if got := parseMetricTarget(ptr("NaN")); !math.IsNaN(got) {
		t.Fatalf("parseMetricTarget(NaN) = %v, want NaN", got)
	}
}

func deref(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

func TestMaxRatio_TakesLargestValueOverTargetIgnoringNonPositiveTargets(t *testing.T) {
	rows := []struct {
		name    string
		metrics []*function.ScalingMetric
		values  []float64
		want    float64
	}{
		{"single metric", []*function.ScalingMetric{metric("queue_depth", "5")}, []float64{15}, 3},
		{"blank target means 50", []*function.ScalingMetric{metric("queue_depth", " ")}, []float64{100}, 2},
		{"null target means 50", []*function.ScalingMetric{{Type: ptr("queue_depth")}}, []float64{25}, 0.5},
		{"invalid target means 50", []*function.ScalingMetric{metric("in_flight", "lots")}, []float64{50}, 1},
		{"zero target ignored", []*function.ScalingMetric{metric("queue_depth", "0")}, []float64{100}, 0},
		{"negative target ignored", []*function.ScalingMetric{metric("queue_depth", "-5")}, []float64{100}, 0},
		{"NaN target ignored", []*function.ScalingMetric{metric("queue_depth", "NaN")}, []float64{100}, 0},
		{"max across metrics", []*function.ScalingMetric{metric("queue_depth", "5"), metric("in_flight", "3")}, []float64{10, 9}, 3},
		{"max across metrics, first wins", []*function.ScalingMetric{metric("queue_depth", "5"), metric("in_flight", "3")}, []float64{20, 3}, 4},
		{"null metric skipped", []*function.ScalingMetric{nil, metric("in_flight", "2")}, []float64{99, 3}, 1.5},
		{"no metrics", nil, nil, 0},
		{"idle", []*function.ScalingMetric{metric("queue_depth", "5")}, []float64{0}, 0},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			if got := maxRatio(r.metrics, r.values); got != r.want {
				t.Fatalf("maxRatio = %v, want %v", got, r.want)
			}
		})
	}
}

func TestDecide_ClampsCeilOfRatioTimesNormalizedCurrent(t *testing.T) {
	rows := []struct {
		name         string
		minR, maxR   int
		ready        int
		target       string
		value        float64
		wantCurrent  int
		wantDesired  int
		wantDown     bool
		wantAtMax    bool
		wantMaxRatio float64
	}{
		{"15/5 from 1 → 3", 1, 10, 1, "5", 15, 1, 3, false, false, 3},
		{"ratio 1 keeps the count", 1, 10, 1, "5", 5, 1, 1, false, false, 1},
		{"fraction rounds up", 1, 10, 3, "10", 11, 3, 4, false, false, 1.1},
		{"clamped to max", 1, 5, 3, "1", 100, 3, 5, false, false, 100},
		{"ready at max is at max", 1, 5, 5, "5", 5, 5, 5, false, true, 1},
		{"ready above max is at max and scales down", 1, 5, 7, "5", 5, 7, 5, true, true, 1},
		{"clamped to min", 2, 10, 4, "5", 0, 4, 2, true, false, 0},
		{"idle with min 0 goes to zero", 0, 5, 2, "2", 0, 2, 0, true, false, 0},
		{"zero ready counts as one when min is 0", 0, 5, 0, "2", 4, 1, 2, false, false, 2},
		{"from zero needs a ratio above one", 0, 5, 0, "2", 2, 1, 1, false, false, 1},
		{"from zero with a small load stays at one", 0, 5, 0, "2", 1, 1, 1, false, false, 0.5},
		{"zero ready and idle asks for zero", 0, 5, 0, "2", 0, 1, 0, true, false, 0},
		{"zero ready counts as min", 3, 10, 0, "5", 5, 3, 3, false, false, 1},
		{"negative ready counts as min", 3, 10, -1, "5", 10, 3, 6, false, false, 2},
		{"infinite ratio saturates to max", 1, 7, 2, "1e-310", 1, 2, 7, false, false, math.Inf(1)},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			sc := internalScaling(r.minR, r.maxR, metric("queue_depth", r.target))
			d := decide(sc, r.ready, []float64{r.value})
			if d.current != r.wantCurrent || d.desired != r.wantDesired || d.downSignal() != r.wantDown ||
				d.maxReached != r.wantAtMax || !sameRatio(d.maxRatio, r.wantMaxRatio) {
				t.Fatalf("decide = %+v (down=%v), want current=%d desired=%d down=%v atMax=%v ratio=%v",
					d, d.downSignal(), r.wantCurrent, r.wantDesired, r.wantDown, r.wantAtMax, r.wantMaxRatio)
			}
		})
	}
}

func sameRatio(got, want float64) bool {
	return got == want || math.Abs(got-want) < 1e-9
}

func TestCooldownsGate_PerDirectionInWholeMilliseconds(t *testing.T) {
	up := decision{current: 1, desired: 3}
	down := decision{current: 3, desired: 1}
	steady := decision{current: 2, desired: 2}
	ms := time.Millisecond
	rows := []struct {
		name string
		cool cooldowns
		d    decision
		now  time.Time
		want action
	}{
		{"up, never scaled", cooldowns{}, up, t0, actScaleUp},
		{"up, 29 999 ms after the last up", cooldowns{lastUp: t0}, up, t0.Add(29_999 * ms), actNone},
		{"up, exactly 30 000 ms after the last up", cooldowns{lastUp: t0}, up, t0.Add(30_000 * ms), actScaleUp},
		{"up, millisecond truncation allows it", cooldowns{lastUp: t0.Add(900 * time.Microsecond)}, up,
			t0.Add(30_000*ms + 100*time.Microsecond), actScaleUp},
		{"up, a recent down does not block", cooldowns{lastDown: t0}, up, t0.Add(ms), actScaleUp},
		{"down, never scaled", cooldowns{}, down, t0, actScaleDown},
		{"down, 59 999 ms after the last down", cooldowns{lastDown: t0}, down, t0.Add(59_999 * ms), actNone},
		{"down, exactly 60 000 ms after the last down", cooldowns{lastDown: t0}, down, t0.Add(60_000 * ms), actScaleDown},
		{"down, a recent up does not block", cooldowns{lastUp: t0}, down, t0.Add(ms), actScaleDown},
		{"steady", cooldowns{}, steady, t0, actNone},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			if got := r.cool.gate(r.d, r.now); got != r.want {
				t.Fatalf("gate = %v, want %v", got, r.want)
			}
		})
	}
}

func TestCooldownsRecord_RemembersOnlyTheDirectionTaken(t *testing.T) {
	c := cooldowns{}.record(actScaleUp, t0)
	if !c.lastUp.Equal(t0) || !c.lastDown.IsZero() {
		t.Fatalf("after up: %+v", c)
	}
	c = c.record(actScaleDown, t0.Add(time.Second))
	if !c.lastUp.Equal(t0) || !c.lastDown.Equal(t0.Add(time.Second)) {
		t.Fatalf("after down: %+v", c)
	}
	if c.record(actNone, t0.Add(time.Hour)) != c {
		t.Fatal("actNone changed the cooldowns")
	}
}

func TestEffectiveReplicas_IsDesiredOnlyWhenScaling(t *testing.T) {
	d := decision{current: 2, desired: 5}
	rows := []struct {
		a    action
		want int
	}{{actNone, 2}, {actScaleUp, 5}, {actScaleDown, 5}}
	for _, r := range rows {
		if got := effectiveReplicas(d, r.a); got != r.want {
			t.Errorf("effectiveReplicas(%v) = %d, want %d", r.a, got, r.want)
		}
	}
}

func TestEvaluate_CooldownSkipKeepsNormCurrentForConcurrency(t *testing.T) {
	cc := &function.ConcurrencyControlConfig{Mode: ptr(function.ConcurrencyStaticPerPod), TargetInFlightPerPod: ptr(2)}
	sc := internalScaling(1, 10, metric("queue_depth", "5"))
	sc.ConcurrencyControl = cc
	spec := &function.Spec{Name: "fn", Concurrency: ptr(100), ScalingConfig: sc}

	// Scaling up: concurrency follows the new count (3 × 2).
	out := evaluate(spec, 1, []float64{15}, fnState{}, t0)
	if out.action != actScaleUp || out.conc.effective != 6 || !out.next.cool.lastUp.Equal(t0) {
		t.Fatalf("first evaluation: %+v", out)
	}
	// In cooldown: concurrency stays on the ready count (2 × 2).
	out = evaluate(spec, 2, []float64{15}, out.next, t0.Add(10*time.Second))
	if out.action != actNone || out.decision.desired != 6 || out.conc.effective != 4 || !out.next.cool.lastUp.Equal(t0) {
		t.Fatalf("evaluation in cooldown: %+v", out)
	}
}

func TestRpsRate_IsDeltaCountOverDeltaSeconds(t *testing.T) {
	first := rpsSample{}
	rows := []struct {
		name     string
		prev     rpsSample
		count    float64
		nowMs    int64
		wantRate float64
	}{
		{"first read is 0", first, 100, 1000, 0},
		{"rate over the elapsed time", rpsSample{count: 100, atMs: 1000, ok: true}, 200, 6000, 20},
		{"sub-second interval", rpsSample{count: 0, atMs: 1000, ok: true}, 5, 1500, 10},
		{"no dispatches", rpsSample{count: 100, atMs: 1000, ok: true}, 100, 6000, 0},
		{"counter went back (re-created)", rpsSample{count: 100, atMs: 1000, ok: true}, 3, 6000, 0},
		{"no time elapsed", rpsSample{count: 100, atMs: 1000, ok: true}, 200, 1000, 0},
		{"clock went back", rpsSample{count: 100, atMs: 1000, ok: true}, 200, 900, 0},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			rate, next := rpsRate(r.prev, r.count, r.nowMs)
			if rate != r.wantRate {
				t.Fatalf("rate = %v, want %v", rate, r.wantRate)
			}
			if next != (rpsSample{count: r.count, atMs: r.nowMs, ok: true}) {
				t.Fatalf("next sample = %+v, want the current reading", next)
			}
		})
	}
}
