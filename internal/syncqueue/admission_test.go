package syncqueue

import (
	"math"
	"testing"
	"time"
)

func TestDecide_AppliesDepthAndEstimatedWaitRules(t *testing.T) {
	// Window 10 s throughout: est = depth × 10 / samples seconds.
	base := admissionInput{maxDepth: 5, admissionEnabled: true, maxEstimatedWait: 2 * time.Second, minSamples: 3, windowSeconds: 10}
	with := func(mod func(*admissionInput)) admissionInput {
		in := base
		mod(&in)
		return in
	}
	tests := []struct {
		name string
		in   admissionInput
		want verdict
	}{
		{"empty queue is admitted", with(func(in *admissionInput) {}), admit},
		{"depth one below max is admitted", with(func(in *admissionInput) { in.depth = 4; in.globalSamples = 1000 }), admit},
		{"depth at max is rejected with depth", with(func(in *admissionInput) { in.depth = 5; in.globalSamples = 1000 }), rejectDepth},
		{"depth above max is rejected with depth", with(func(in *admissionInput) { in.depth = 9 }), rejectDepth},
		{"depth wins over est_wait", with(func(in *admissionInput) { in.depth = 5; in.maxEstimatedWait = 0 }), rejectDepth},
		{"max depth 0 rejects everything with depth", with(func(in *admissionInput) { in.maxDepth = 0 }), rejectDepth},
		{"no dispatch history with depth ≥ 1 is +Inf → est_wait", with(func(in *admissionInput) { in.depth = 1 }), rejectEstWait},
		{"admission disabled admits +Inf estimate", with(func(in *admissionInput) { in.depth = 1; in.admissionEnabled = false }), admit},
		{"admission disabled ignores a 0s limit", with(func(in *admissionInput) { in.admissionEnabled = false; in.maxEstimatedWait = 0 }), admit},
		{"0s limit rejects even an empty queue", with(func(in *admissionInput) { in.maxEstimatedWait = 0 }), rejectEstWait},
		{"limit under 1 ms is 0 at ms precision → rejects", with(func(in *admissionInput) { in.maxEstimatedWait = 999 * time.Microsecond }), rejectEstWait},
		{"negative limit rejects", with(func(in *admissionInput) { in.maxEstimatedWait = -time.Second }), rejectEstWait},
		// D11: a sub-second limit is a real limit (the reference truncated it to 0 → reject all).
		{"D11 500ms limit admits an empty queue", with(func(in *admissionInput) { in.maxEstimatedWait = 500 * time.Millisecond }), admit},
		{"D11 500ms limit admits est 400ms", with(func(in *admissionInput) {
			in.maxEstimatedWait = 500 * time.Millisecond
			in.depth, in.globalSamples = 1, 25 // 10/25 = 0.4 s
		}), admit},
		{"D11 500ms limit rejects est 625ms", with(func(in *admissionInput) {
			in.maxEstimatedWait = 500 * time.Millisecond
			in.depth, in.globalSamples = 1, 16 // 10/16 = 0.625 s
		}), rejectEstWait},
		// D11: fractional seconds count (the reference compared 1.2 s against a truncated 1 s).
		{"D11 1500ms limit admits est 1.25s", with(func(in *admissionInput) {
			in.maxEstimatedWait = 1500 * time.Millisecond
			in.depth, in.globalSamples = 1, 8 // 10/8 = 1.25 s
		}), admit},
		{"estimate equal to the limit is admitted", with(func(in *admissionInput) {
			in.maxEstimatedWait = 7500 * time.Millisecond
			in.depth, in.globalSamples = 3, 4 // 7.5 s
		}), admit},
		{"estimate 1 ms over the limit is rejected", with(func(in *admissionInput) {
			in.maxEstimatedWait = 7499 * time.Millisecond
			in.depth, in.globalSamples = 3, 4
		}), rejectEstWait},
		{"sub-millisecond excess is rejected (estimate is exact)", with(func(in *admissionInput) {
			in.maxEstimatedWait = 3333 * time.Millisecond
			in.depth, in.globalSamples = 1, 3 // 3.3333… s
		}), rejectEstWait},
		{"limit precision is milliseconds (sub-ms part truncated)", with(func(in *admissionInput) {
			in.maxEstimatedWait = 7499*time.Millisecond + 999*time.Microsecond
			in.depth, in.globalSamples = 3, 4
		}), rejectEstWait},
		{"per-function rate is used with enough samples", with(func(in *admissionInput) {
			in.depth, in.fnSamples, in.globalSamples = 1, 20, 3 // per-fn 0.5 s; global would be 3.33 s
		}), admit},
		{"per-function rate below min samples falls back to global", with(func(in *admissionInput) {
			in.depth, in.fnSamples, in.globalSamples = 1, 2, 3 // global 3.33 s
		}), rejectEstWait},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := decide(tc.in); got != tc.want {
				t.Fatalf("decide(%+v) = %d, want %d", tc.in, got, tc.want)
			}
		})
	}
}

func TestEstimateWait_PinnedExamples(t *testing.T) {
	tests := []struct {
		name                                 string
		depth, fnSamples, globalSamples, min int
		window                               time.Duration
		want                                 float64
	}{
		{"depth 0 is 0 even without history", 0, 0, 0, 3, 10 * time.Second, 0},
		{"per-function 0.3/s, depth 6 → 20 s", 6, 3, 3, 3, 10 * time.Second, 20},
		{"per-function 1 sample < 3 → global 0.4/s, depth 3 → 7.5 s", 3, 1, 4, 3, 10 * time.Second, 7.5},
		{"uses the global depth with the per-function rate", 10, 5, 100, 5, 10 * time.Second, 20},
		{"no samples with depth → +Inf", 1, 0, 0, 3, 10 * time.Second, math.Inf(1)},
		{"window under 1 s counts as 1 s", 2, 0, 4, 3, 500 * time.Millisecond, 0.5},
		{"window truncated to whole seconds", 2, 0, 4, 3, 2900 * time.Millisecond, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := estimateWait(tc.depth, tc.fnSamples, tc.globalSamples, tc.min, windowSeconds(tc.window)).Seconds()
			if got != tc.want {
				t.Fatalf("estimate = %v s, want %v s", got, tc.want)
			}
		})
	}
}

func TestWaitEstimate_ExceedsNeverOverflows(t *testing.T) {
	huge := waitEstimate{num: math.MaxUint64 / 2, den: 1}
	if !huge.exceedsMillis(math.MaxUint64) {
		t.Fatal("an estimate of 9e18 s must exceed a limit of 1.8e16 s")
	}
	small := waitEstimate{num: 1, den: math.MaxUint64}
	if small.exceedsMillis(1) {
		t.Fatal("a tiny estimate must not exceed 1 ms")
	}
}

func TestDecide_DoesNotAllocate(t *testing.T) {
	in := admissionInput{depth: 3, maxDepth: 200, admissionEnabled: true, maxEstimatedWait: 2 * time.Second,
		fnSamples: 10, globalSamples: 40, minSamples: 50, windowSeconds: 30}
	if n := testing.AllocsPerRun(1000, func() { _ = decide(in) }); n != 0 {
		t.Fatalf("decide allocates %v times per call", n)
	}
}

func BenchmarkDecide(b *testing.B) {
	in := admissionInput{depth: 3, maxDepth: 200, admissionEnabled: true, maxEstimatedWait: 2 * time.Second,
		fnSamples: 10, globalSamples: 40, minSamples: 50, windowSeconds: 30}
	b.ReportAllocs()
	var v verdict
	for b.Loop() {
		v |= decide(in)
		in.depth = (in.depth + 1) & 127
	}
	_ = v
}
