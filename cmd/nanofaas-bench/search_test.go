package main

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestSearchMaxRate_FindsTheCapacityWithinThePrecision(t *testing.T) {
	for _, tc := range []struct {
		name      string
		capacity  float64 // highest rate the fake target sustains
		lim       searchLimits
		wantLow   float64 // result must be in [wantLow, wantHigh]
		wantHigh  float64
		wantSteps int // 0 = do not check
	}{
		{"doubles then bisects", 3700, searchLimits{start: 1000, min: 10, max: 1e6, maxSteps: 20, precision: 0.1}, 3330, 3700, 0},
		{"halves when the first step fails", 300, searchLimits{start: 1000, min: 10, max: 1e6, maxSteps: 20, precision: 0.1}, 270, 300, 0},
		{"stops at max", 1e9, searchLimits{start: 1000, min: 10, max: 5000, maxSteps: 20, precision: 0.1}, 5000, 5000, 4},
		{"gives up below min", 5, searchLimits{start: 1000, min: 100, max: 1e6, maxSteps: 20, precision: 0.1}, 0, 0, 0},
		{"step budget bounds the search", 3700, searchLimits{start: 1000, min: 10, max: 1e6, maxSteps: 3, precision: 0.01}, 2000, 2000, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, steps, err := searchMaxRate(context.Background(), tc.lim, func(_ context.Context, rate float64) (Step, error) {
				return Step{Rate: rate, Sustained: rate <= tc.capacity}, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if got < tc.wantLow || got > tc.wantHigh {
				t.Errorf("max = %v, want in [%v, %v] (steps %+v)", got, tc.wantLow, tc.wantHigh, steps)
			}
			if tc.wantSteps > 0 && len(steps) != tc.wantSteps {
				t.Errorf("%d steps, want %d", len(steps), tc.wantSteps)
			}
			for _, s := range steps {
				if s.Rate > tc.lim.max {
					t.Errorf("tried %v above max %v", s.Rate, tc.lim.max)
				}
			}
		})
	}
}

func TestSearchMaxRate_AFailureCountsOnlyWhenTheReRunsFailToo(t *testing.T) {
	// The target sustains 3000 but the first try of 2000 hits a stall.
	tries := map[float64]int{}
	measure := func(_ context.Context, rate float64) (Step, error) {
		tries[rate]++
		stalled := rate == 2000 && tries[rate] == 1
		return Step{Rate: rate, Sustained: rate <= 3000 && !stalled}, nil
	}
	lim := searchLimits{start: 1000, min: 10, max: 1e6, maxSteps: 20, precision: 0.1, confirm: 1}
	got, steps, err := searchMaxRate(context.Background(), lim, measure)
	if err != nil {
		t.Fatal(err)
	}
	if got < 2700 || got > 3000 {
		t.Errorf("max = %v, want in [2700, 3000] (steps %+v)", got, steps)
	}
	if tries[2000] != 2 || tries[4000] != 2 || tries[1000] != 1 {
		t.Errorf("tries = %v: want a re-run of each failed rate and none of a passed one", tries)
	}
	if len(steps) != sumTries(tries) {
		t.Errorf("%d steps reported for %d tries", len(steps), sumTries(tries))
	}

	// Without confirmation the stall caps the result below 2000.
	clear(tries)
	lim.confirm = 0
	if got, _, _ := searchMaxRate(context.Background(), lim, measure); got >= 2000 {
		t.Errorf("confirm 0: max = %v, want < 2000", got)
	}
}

func sumTries(m map[float64]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func TestSearchMaxRate_ReturnsTheMeasureError(t *testing.T) {
	boom := errors.New("boom")
	_, _, err := searchMaxRate(context.Background(), searchLimits{start: 100, min: 1, max: 1000, maxSteps: 5, precision: 0.1},
		func(context.Context, float64) (Step, error) { return Step{}, boom })
	if !errors.Is(err, boom) {
		t.Errorf("err = %v", err)
	}
}

func TestSustainCriteria_RequireLowP99FewErrorsAndTheOfferedRate(t *testing.T) {
	c := sustainCriteria{p99Limit: 10 * time.Millisecond, maxErrors: 0.01, minAchieved: 0.95}
	mk := func(p99 time.Duration, ok, errs int, elapsed time.Duration) *loadRun {
		lat := make([]time.Duration, ok)
		for i := range lat {
			lat[i] = p99
		}
		return &loadRun{latencies: lat, ok: ok, errors: errs, elapsed: elapsed}
	}
	for _, tc := range []struct {
		name string
		run  *loadRun
		want bool
	}{
		{"fast and complete", mk(time.Millisecond, 1000, 0, time.Second), true},
		{"p99 at the limit", mk(10*time.Millisecond, 1000, 0, time.Second), false},
		{"2% errors", mk(time.Millisecond, 980, 20, time.Second), false},
		{"fell behind the schedule", mk(time.Millisecond, 1000, 0, 1200*time.Millisecond), false},
		{"nothing succeeded", mk(0, 0, 5, time.Second), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := c.step(1000, tc.run).Sustained; got != tc.want {
				t.Errorf("sustained = %v, want %v", got, tc.want)
			}
		})
	}
}
