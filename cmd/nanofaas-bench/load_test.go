package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestRunLoad_SendsEveryScheduledRequestAndMeasuresOnlyAfterWarmup(t *testing.T) {
	defer goleak.VerifyNone(t)
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { served.Add(1) }))
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()

	plan := loadPlan{rate: 400, warmup: 50 * time.Millisecond, duration: 250 * time.Millisecond, workers: 8}
	measured := false
	start := time.Now()
	run, err := runLoad(context.Background(), plan, func(ctx context.Context, _ int) error {
		resp, err := client.Get(srv.URL)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}, func() { measured = true })
	if err != nil {
		t.Fatal(err)
	}
	if got := served.Load(); got != 120 {
		t.Errorf("served %d requests, want 120 (20 warm-up + 100 measured)", got)
	}
	if run.ok != 100 || run.errors != 0 || len(run.latencies) != 100 {
		t.Errorf("ok=%d errors=%d latencies=%d, want 100/0/100", run.ok, run.errors, len(run.latencies))
	}
	if !measured {
		t.Error("atMeasure was not called")
	}
	if el := time.Since(start); el < 290*time.Millisecond {
		t.Errorf("run took %v: requests were not paced over the schedule", el)
	}
	if a := run.achieved(); a < 300 || a > 410 {
		t.Errorf("achieved %v req/s, want about 400", a)
	}
	for i := 1; i < len(run.latencies); i++ {
		if run.latencies[i] < run.latencies[i-1] || run.latencies[0] < 0 {
			t.Fatal("latencies are not sorted and non-negative")
		}
	}
}

func TestRunLoad_LatencyIncludesQueueingBehindAStalledRequest(t *testing.T) {
	defer goleak.VerifyNone(t)
	// One worker, and request 0 stalls for 100 ms: the requests due meanwhile must show the wait
	// (latency from their scheduled time), not just their own short service time.
	plan := loadPlan{rate: 200, duration: 200 * time.Millisecond, workers: 1}
	run, err := runLoad(context.Background(), plan, func(ctx context.Context, seq int) error {
		if seq == 0 {
			time.Sleep(100 * time.Millisecond)
		}
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := run.percentile(1); got < 95*time.Millisecond {
		t.Errorf("max latency %v, want ≥ 95ms (the stalled request)", got)
	}
	if got := run.percentile(0.75); got < 40*time.Millisecond {
		t.Errorf("p75 %v, want ≥ 40ms: queued requests must count their wait", got)
	}
}

func TestRunLoad_CountsFailuresApartFromLatencies(t *testing.T) {
	plan := loadPlan{rate: 1000, duration: 20 * time.Millisecond, workers: 4}
	run, err := runLoad(context.Background(), plan, func(_ context.Context, seq int) error {
		if seq%2 == 1 {
			return errors.New("boom")
		}
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if run.ok != 10 || run.errors != 10 || len(run.latencies) != 10 {
		t.Errorf("ok=%d errors=%d latencies=%d, want 10/10/10", run.ok, run.errors, len(run.latencies))
	}
	if run.firstErr != "boom" || run.errorRatio() != 0.5 {
		t.Errorf("firstErr=%q ratio=%v", run.firstErr, run.errorRatio())
	}
}

func TestRunLoad_RejectsPlansThatMeasureNothing(t *testing.T) {
	noop := func(context.Context, int) error { return nil }
	for name, plan := range map[string]loadPlan{
		"zero rate":            {rate: 0, duration: time.Second, workers: 1},
		"zero duration":        {rate: 10, workers: 1},
		"no workers":           {rate: 10, duration: time.Second},
		"no measured requests": {rate: 1, duration: 100 * time.Millisecond, workers: 1},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := runLoad(context.Background(), plan, noop, nil); err == nil {
				t.Error("want an error")
			}
		})
	}
}

func TestRunLoad_StopsPromptlyWhenTheContextEnds(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := runLoad(ctx, loadPlan{rate: 100, duration: 10 * time.Second, workers: 2}, func(ctx context.Context, _ int) error {
		<-ctx.Done() // a request that only ends when cancelled
		return ctx.Err()
	}, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the context's", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("returned after %v", el)
	}
}

func TestPercentile_NearestRank(t *testing.T) {
	ten := make([]time.Duration, 10)
	for i := range ten {
		ten[i] = time.Duration(i+1) * time.Millisecond
	}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		q      float64
		want   time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"single", []time.Duration{7}, 0.99, 7},
		{"median of ten", ten, 0.5, 5 * time.Millisecond},
		{"p90 of ten", ten, 0.9, 9 * time.Millisecond},
		{"p99 of ten is the max", ten, 0.99, 10 * time.Millisecond},
		{"p100", ten, 1, 10 * time.Millisecond},
		{"tiny q is the min", ten, 0.0001, time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentile(tc.sorted, tc.q); got != tc.want {
				t.Errorf("percentile(%v) = %v, want %v", tc.q, got, tc.want)
			}
		})
	}
}
