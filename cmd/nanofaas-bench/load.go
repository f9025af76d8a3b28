package main

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// hitFunc sends request number seq and reports whether it succeeded. It is called from several
// workers at once; seq is unique per run, so a hitter may store per-request data at index seq of
// a slice it sized with plan.total() without locking.
type hitFunc func(ctx context.Context, seq int) error

// loadPlan is one open-loop, constant-arrival-rate run: request i is due at start+i/rate, whether
// or not earlier requests have finished. The first warmup's worth of requests is sent but not
// measured.
type loadPlan struct {
	rate     float64 // requests per second
	warmup   time.Duration
	duration time.Duration // measured part
	workers  int           // concurrent senders (like k6's maxVUs); queued requests wait for one
}

func (p loadPlan) warmupCount() int { return int(p.rate * p.warmup.Seconds()) }
func (p loadPlan) total() int       { return p.warmupCount() + int(p.rate*p.duration.Seconds()) }

// due is when request i is scheduled, relative to the run's start.
func (p loadPlan) due(i int) time.Duration {
	return time.Duration(float64(i) * float64(time.Second) / p.rate)
}

// loadRun is what a run measured. Latencies are measured from each request's scheduled time, not
// from when a worker got to send it, so a stalled target cannot hide its queueing delay
// (coordinated omission).
type loadRun struct {
	plan      loadPlan
	start     time.Time       // wall+monotonic time of request 0's schedule
	latencies []time.Duration // measured requests, successful ones only, sorted
	ok        int
	errors    int
	firstErr  string
	elapsed   time.Duration // from the first measured schedule to the last measured completion
}

// achieved is the measured successful throughput in requests per second.
func (r *loadRun) achieved() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.ok) / r.elapsed.Seconds()
}

// errorRatio is the share of measured requests that failed.
func (r *loadRun) errorRatio() float64 {
	n := r.ok + r.errors
	if n == 0 {
		return 0
	}
	return float64(r.errors) / float64(n)
}

// percentile is the nearest-rank percentile q (0 < q ≤ 1) of the successful latencies, 0 when
// there are none.
func (r *loadRun) percentile(q float64) time.Duration { return percentile(r.latencies, q) }

func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

type job struct {
	seq int
	due time.Time
}

// runLoad executes plan with hit. atMeasure, if not nil, is called when the first measured
// request is due (the caller samples CPU counters there). It returns after every sent request has
// finished; cancelling ctx stops scheduling and cancels requests in flight.
//
// It runs on the real clock on purpose: the generator's whole job is real time.
func runLoad(ctx context.Context, plan loadPlan, hit hitFunc, atMeasure func()) (*loadRun, error) {
	if plan.rate <= 0 || plan.duration <= 0 || plan.workers <= 0 {
		return nil, fmt.Errorf("load: rate, duration and workers must be positive (rate %v, duration %v, workers %d)",
			plan.rate, plan.duration, plan.workers)
	}
	total, warm := plan.total(), plan.warmupCount()
	if total == warm {
		return nil, fmt.Errorf("load: %v at %v req/s sends no measured request", plan.duration, plan.rate)
	}
	lat := make([]time.Duration, total)
	failed := make([]bool, total)
	done := make([]time.Time, total)
	var errOnce sync.Once
	var firstErr string

	// The queue holds every request of the run, so the scheduler never blocks on slow workers:
	// their backlog shows up as latency instead.
	jobs := make(chan job, total)
	var wg sync.WaitGroup
	for range min(plan.workers, total) {
		wg.Go(func() {
			for j := range jobs {
				err := ctx.Err()
				if err == nil {
					err = hit(ctx, j.seq)
				}
				now := time.Now()
				done[j.seq] = now
				lat[j.seq] = now.Sub(j.due)
				if err != nil {
					failed[j.seq] = true
					errOnce.Do(func() { firstErr = err.Error() })
				}
			}
		})
	}

	start := time.Now()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	scheduled := total
	for i := range total {
		due := start.Add(plan.due(i))
		if d := time.Until(due); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				timer.Stop()
			case <-timer.C:
			}
		}
		if ctx.Err() != nil {
			scheduled = i
			break
		}
		if i == warm && atMeasure != nil {
			atMeasure()
		}
		jobs <- job{seq: i, due: due}
	}
	close(jobs)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	run := &loadRun{plan: plan, start: start}
	measureStart := start.Add(plan.due(warm))
	var last time.Time
	run.latencies = make([]time.Duration, 0, scheduled-warm)
	for i := warm; i < scheduled; i++ {
		if done[i].After(last) {
			last = done[i]
		}
		if failed[i] {
			run.errors++
			continue
		}
		run.ok++
		run.latencies = append(run.latencies, lat[i])
	}
	slices.Sort(run.latencies)
	run.elapsed = last.Sub(measureStart)
	// A run shorter than its schedule (all requests done early) still spans the schedule.
	if sched := plan.due(total-1) - plan.due(warm) + time.Duration(float64(time.Second)/plan.rate); run.elapsed < sched {
		run.elapsed = sched
	}
	run.firstErr = firstErr
	return run, nil
}
