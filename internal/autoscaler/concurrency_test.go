package autoscaler

import (
	"testing"
	"time"

	"github.com/nanofaas/control-plane/internal/function"
)

func staticCC(target *int) *function.ConcurrencyControlConfig {
	return &function.ConcurrencyControlConfig{Mode: ptr(function.ConcurrencyStaticPerPod), TargetInFlightPerPod: target}
}

func TestControlConcurrency_FixedAndStaticPerPod(t *testing.T) {
	rows := []struct {
		name       string
		cc         *function.ConcurrencyControlConfig
		configured int
		replicas   int
		want       concurrency
	}{
		{"no concurrencyControl is FIXED at the spec concurrency", nil, 4, 3,
			concurrency{effective: 4, mode: function.ConcurrencyFixed}},
		{"FIXED ignores replicas", &function.ConcurrencyControlConfig{Mode: ptr(function.ConcurrencyFixed)}, 7, 9,
			concurrency{effective: 7, mode: function.ConcurrencyFixed}},
		{"FIXED passes the spec value through unclamped", &function.ConcurrencyControlConfig{Mode: ptr(function.ConcurrencyFixed)}, 0, 1,
			concurrency{effective: 0, mode: function.ConcurrencyFixed}},
		{"mode absent is FIXED", &function.ConcurrencyControlConfig{TargetInFlightPerPod: ptr(3)}, 5, 2,
			concurrency{effective: 5, mode: function.ConcurrencyFixed}},
		{"STATIC replicas × target", staticCC(ptr(3)), 20, 4,
			concurrency{effective: 12, mode: function.ConcurrencyStaticPerPod, target: 3}},
		{"STATIC capped at the configured concurrency", staticCC(ptr(3)), 10, 4,
			concurrency{effective: 10, mode: function.ConcurrencyStaticPerPod, target: 3}},
		{"STATIC zero replicas count as one", staticCC(ptr(3)), 20, 0,
			concurrency{effective: 3, mode: function.ConcurrencyStaticPerPod, target: 3}},
		{"STATIC null target is one per pod and reported as 0", staticCC(nil), 20, 4,
			concurrency{effective: 4, mode: function.ConcurrencyStaticPerPod, target: 0}},
		{"STATIC zero target is one per pod", staticCC(ptr(0)), 20, 4,
			concurrency{effective: 4, mode: function.ConcurrencyStaticPerPod, target: 0}},
		{"STATIC at least one when configured is 0", staticCC(ptr(3)), 0, 4,
			concurrency{effective: 1, mode: function.ConcurrencyStaticPerPod, target: 3}},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			got, st := controlConcurrency(r.cc, controlInput{configured: r.configured, replicas: r.replicas, nowMs: t0.UnixMilli()}, nil)
			if got != r.want {
				t.Fatalf("controlConcurrency = %+v, want %+v", got, r.want)
			}
			if st != nil {
				t.Fatalf("non-adaptive mode produced adaptive state %+v", st)
			}
		})
	}
}

// adaptiveCC is the resolver's normalized ADAPTIVE_PER_POD config with target 4 and the
// default bounds, cooldowns and thresholds.
func adaptiveCC() *function.ConcurrencyControlConfig {
	return &function.ConcurrencyControlConfig{
		Mode:                    ptr(function.ConcurrencyAdaptivePerPod),
		TargetInFlightPerPod:    ptr(4),
		MinTargetInFlightPerPod: ptr(1),
		MaxTargetInFlightPerPod: ptr(8),
		UpscaleCooldownMs:       ptr(int64(30_000)),
		DownscaleCooldownMs:     ptr(int64(60_000)),
		HighLoadThreshold:       ptr(0.85),
		LowLoadThreshold:        ptr(0.35),
	}
}

func TestAdaptivePerPod_StepsTheTargetPerTick(t *testing.T) {
	now := t0.UnixMilli()
	const never = int64(0)
	rows := []struct {
		name          string
		cc            *function.ConcurrencyControlConfig
		prev          *adaptiveState
		in            controlInput
		wantState     adaptiveState
		wantEffective int
	}{
		{"at max and hot: one step down",
			adaptiveCC(), nil, controlInput{configured: 20, replicas: 4, loadRatio: 1, atMax: true, nowMs: now},
			adaptiveState{target: 3, lastDecreaseMs: now}, 12},
		{"exactly at the high threshold counts as hot",
			adaptiveCC(), nil, controlInput{configured: 20, replicas: 4, loadRatio: 0.85, atMax: true, nowMs: now},
			adaptiveState{target: 3, lastDecreaseMs: now}, 12},
		{"hot but below max replicas: unchanged",
			adaptiveCC(), nil, controlInput{configured: 20, replicas: 4, loadRatio: 2, nowMs: now},
			adaptiveState{target: 4}, 16},
		{"decrease 59 999 ms after the last one: in cooldown",
			adaptiveCC(), &adaptiveState{target: 3, lastDecreaseMs: now - 59_999},
			controlInput{configured: 20, replicas: 4, loadRatio: 1, atMax: true, nowMs: now},
			adaptiveState{target: 3, lastDecreaseMs: now - 59_999}, 12},
		{"decrease exactly 60 000 ms after the last one",
			adaptiveCC(), &adaptiveState{target: 3, lastDecreaseMs: now - 60_000},
			controlInput{configured: 20, replicas: 4, loadRatio: 1, atMax: true, nowMs: now},
			adaptiveState{target: 2, lastDecreaseMs: now}, 8},
		{"decrease floors at the min target but still records the time",
			adaptiveCC(), &adaptiveState{target: 1, lastDecreaseMs: never},
			controlInput{configured: 20, replicas: 4, loadRatio: 1, atMax: true, nowMs: now},
			adaptiveState{target: 1, lastDecreaseMs: now}, 4},
		{"cold: one step up",
			adaptiveCC(), nil, controlInput{configured: 40, replicas: 4, loadRatio: 0.35, nowMs: now},
			adaptiveState{target: 5, lastIncreaseMs: now}, 20},
		{"cold but replicas are going down this tick: no increase",
			adaptiveCC(), nil, controlInput{configured: 40, replicas: 4, loadRatio: 0, downSignal: true, nowMs: now},
			adaptiveState{target: 4, lastReplicaDown: now}, 16},
		{"cold 59 999 ms after a replica down: no increase",
			adaptiveCC(), &adaptiveState{target: 4, lastReplicaDown: now - 59_999},
			controlInput{configured: 40, replicas: 4, loadRatio: 0, nowMs: now},
			adaptiveState{target: 4, lastReplicaDown: now - 59_999}, 16},
		{"cold 60 000 ms after a replica down: increase",
			adaptiveCC(), &adaptiveState{target: 4, lastReplicaDown: now - 60_000},
			controlInput{configured: 40, replicas: 4, loadRatio: 0, nowMs: now},
			adaptiveState{target: 5, lastReplicaDown: now - 60_000, lastIncreaseMs: now}, 20},
		{"cold 29 999 ms after the last increase: in cooldown",
			adaptiveCC(), &adaptiveState{target: 5, lastIncreaseMs: now - 29_999},
			controlInput{configured: 40, replicas: 4, loadRatio: 0, nowMs: now},
			adaptiveState{target: 5, lastIncreaseMs: now - 29_999}, 20},
		{"cold exactly 30 000 ms after the last increase",
			adaptiveCC(), &adaptiveState{target: 5, lastIncreaseMs: now - 30_000},
			controlInput{configured: 40, replicas: 4, loadRatio: 0, nowMs: now},
			adaptiveState{target: 6, lastIncreaseMs: now}, 24},
		{"increase caps at the max target but still records the time",
			adaptiveCC(), &adaptiveState{target: 8},
			controlInput{configured: 40, replicas: 4, loadRatio: 0, nowMs: now},
			adaptiveState{target: 8, lastIncreaseMs: now}, 32},
		{"between thresholds: unchanged, replica down still recorded",
			adaptiveCC(), nil, controlInput{configured: 40, replicas: 4, loadRatio: 0.5, downSignal: true, nowMs: now},
			adaptiveState{target: 4, lastReplicaDown: now}, 16},
		{"a stored target outside the bounds is clamped",
			adaptiveCC(), &adaptiveState{target: 20},
			controlInput{configured: 100, replicas: 2, loadRatio: 0.5, nowMs: now},
			adaptiveState{target: 8}, 16},
		{"effective capped at the configured concurrency",
			adaptiveCC(), nil, controlInput{configured: 6, replicas: 4, loadRatio: 0.5, nowMs: now},
			adaptiveState{target: 4}, 6},
		{"zero replicas count as one",
			adaptiveCC(), nil, controlInput{configured: 20, replicas: 0, loadRatio: 0.5, nowMs: now},
			adaptiveState{target: 4}, 4},
		{"reference test: target 4, bounds 1..6, no cooldowns, 0.8/0.3, at max with ratio 6",
			&function.ConcurrencyControlConfig{
				Mode: ptr(function.ConcurrencyAdaptivePerPod), TargetInFlightPerPod: ptr(4),
				MinTargetInFlightPerPod: ptr(1), MaxTargetInFlightPerPod: ptr(6),
				UpscaleCooldownMs: ptr(int64(0)), DownscaleCooldownMs: ptr(int64(0)),
				HighLoadThreshold: ptr(0.8), LowLoadThreshold: ptr(0.3),
			}, nil, controlInput{configured: 20, replicas: 4, loadRatio: 6, atMax: true, nowMs: now},
			adaptiveState{target: 3, lastDecreaseMs: now}, 12},
		{"unset fields fall back to 2 within 1..8",
			&function.ConcurrencyControlConfig{Mode: ptr(function.ConcurrencyAdaptivePerPod)}, nil,
			controlInput{configured: 20, replicas: 3, loadRatio: 0.5, nowMs: now},
			adaptiveState{target: 2}, 6},
		{"initial target clamped into the spec bounds",
			&function.ConcurrencyControlConfig{Mode: ptr(function.ConcurrencyAdaptivePerPod),
				TargetInFlightPerPod: ptr(1), MinTargetInFlightPerPod: ptr(3), MaxTargetInFlightPerPod: ptr(5)}, nil,
			controlInput{configured: 20, replicas: 2, loadRatio: 0.5, nowMs: now},
			adaptiveState{target: 3}, 6},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			var before adaptiveState
			if r.prev != nil {
				before = *r.prev
			}
			got, st := controlConcurrency(r.cc, r.in, r.prev)
			if st == nil || *st != r.wantState {
				t.Fatalf("state = %+v, want %+v", st, r.wantState)
			}
			want := concurrency{effective: r.wantEffective, mode: function.ConcurrencyAdaptivePerPod, target: r.wantState.target}
			if got != want {
				t.Fatalf("concurrency = %+v, want %+v", got, want)
			}
			if r.prev != nil && *r.prev != before {
				t.Fatalf("previous state mutated in place: %+v", *r.prev)
			}
		})
	}
}

func TestAdaptivePerPod_ClimbsOncePerUpCooldownWhileCold(t *testing.T) {
	var st *adaptiveState
	var targets []int
	now := t0
	for range 5 {
		var c concurrency
		c, st = controlConcurrency(adaptiveCC(), controlInput{configured: 100, replicas: 1, loadRatio: 0, nowMs: now.UnixMilli()}, st)
		targets = append(targets, c.target)
		now = now.Add(15 * time.Second)
	}
	want := []int{5, 5, 6, 6, 7}
	for i := range want {
		if targets[i] != want[i] {
			t.Fatalf("targets = %v, want %v", targets, want)
		}
	}
}
