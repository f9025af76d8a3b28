package main

import (
	"context"
	"math"
	"time"
)

// Step is one fixed-rate run of a throughput search.
type Step struct {
	Rate       float64 `json:"rate"`
	Achieved   float64 `json:"achieved"`
	P99Ms      float64 `json:"p99Ms"`
	ErrorRatio float64 `json:"errorRatio"`
	Sustained  bool    `json:"sustained"`
}

// sustainCriteria decide whether a target kept up with a rate.
type sustainCriteria struct {
	p99Limit    time.Duration // p99 must stay below this
	maxErrors   float64       // share of failed requests tolerated
	minAchieved float64       // share of the offered rate that must be served
}

var defaultSustain = sustainCriteria{p99Limit: 10 * time.Millisecond, maxErrors: 0.01, minAchieved: 0.95}

func (c sustainCriteria) step(rate float64, r *loadRun) Step {
	p99 := r.percentile(0.99)
	s := Step{Rate: rate, Achieved: r.achieved(), P99Ms: ms(p99), ErrorRatio: r.errorRatio()}
	s.Sustained = r.ok > 0 && p99 < c.p99Limit && s.ErrorRatio <= c.maxErrors && s.Achieved >= c.minAchieved*rate
	return s
}

// searchLimits bound a throughput search.
type searchLimits struct {
	start, min, max float64 // first rate tried; give up below min; never try above max
	maxSteps        int
	precision       float64 // stop once the bracket is narrower than this share of the best rate
	// confirm re-measures a failed rate up to this many times; it fails only if every try does.
	// On a shared machine one stall of a few tens of ms fails a p99, so a single unlucky step
	// would otherwise cut the search (for every path alike).
	confirm int
}

// measureFunc runs one step at rate.
type measureFunc func(ctx context.Context, rate float64) (Step, error)

// searchMaxRate finds the highest sustained rate: it doubles from start until a rate fails (or
// halves until one succeeds), then bisects the bracket. It returns 0 when even min fails. At most
// maxSteps rates are tried; the returned steps include the confirming re-runs.
func searchMaxRate(ctx context.Context, lim searchLimits, measure measureFunc) (float64, []Step, error) {
	var steps []Step
	good, bad := 0.0, 0.0
	rate := math.Round(lim.start)
	for tried := 0; tried < lim.maxSteps; tried++ {
		var s Step
		for try := 0; try <= lim.confirm && !s.Sustained; try++ {
			var err error
			if s, err = measure(ctx, rate); err != nil {
				return good, steps, err
			}
			steps = append(steps, s)
		}
		if s.Sustained {
			good = rate
			if bad == 0 {
				if rate >= lim.max {
					break
				}
				rate = math.Min(rate*2, lim.max)
				continue
			}
		} else {
			bad = rate
			if good == 0 {
				rate = math.Round(rate / 2)
				if rate < lim.min {
					break
				}
				continue
			}
		}
		if bad-good <= lim.precision*good {
			break
		}
		rate = math.Round((good + bad) / 2)
	}
	return good, steps, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
