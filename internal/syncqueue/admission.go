package syncqueue

import (
	"math"
	"math/bits"
	"time"
)

// verdict is the outcome of one admission decision.
type verdict uint8

const (
	admit verdict = iota
	rejectDepth
	rejectEstWait
)

// admissionInput is everything one admission decision depends on, read as of one instant: the
// sample counts are those inside the throughput window ending at that instant.
type admissionInput struct {
	depth            int // items in the global queue before this one
	maxDepth         int
	admissionEnabled bool
	maxEstimatedWait time.Duration
	fnSamples        int // this function's dispatch events in the window
	globalSamples    int // all dispatch events in the window
	minSamples       int // sync-queue.per-function-min-samples
	windowSeconds    uint64
}

// decide applies spec-modules §2 admission steps 3–4 with DECISIONS D11: the estimated-wait limit
// is compared as a duration with millisecond precision, and a limit that is 0 at that precision
// rejects every request. It is pure and allocation-free: it runs under the queue lock on every
// sync invocation.
func decide(in admissionInput) verdict {
	if in.depth >= in.maxDepth {
		return rejectDepth
	}
	if !in.admissionEnabled {
		return admit
	}
	limitMs := in.maxEstimatedWait.Milliseconds()
	if limitMs <= 0 {
		return rejectEstWait
	}
	est := estimateWait(in.depth, in.fnSamples, in.globalSamples, in.minSamples, in.windowSeconds)
	if est.exceedsMillis(uint64(limitMs)) {
		return rejectEstWait
	}
	return admit
}

// waitEstimate is an estimated queue wait kept as the exact fraction num/den seconds, so that the
// comparison with a millisecond limit has no rounding. den == 0 with num > 0 means +Inf.
type waitEstimate struct {
	num uint64 // depth × window seconds (×1000 is applied when comparing)
	den uint64 // samples in the window
}

// estimateWait is the reference's WaitEstimator.estimate: depth ÷ throughput, where throughput =
// samples ÷ window seconds, per function once it has minSamples samples, else global; depth 0 → 0;
// no global samples → +Inf. depth is the global depth even with the per-function rate (as the
// reference does).
func estimateWait(depth, fnSamples, globalSamples, minSamples int, windowSeconds uint64) waitEstimate {
	if depth <= 0 {
		return waitEstimate{num: 0, den: 1}
	}
	num := uint64(depth) * windowSeconds
	if fnSamples > 0 && fnSamples >= minSamples {
		return waitEstimate{num: num, den: uint64(fnSamples)}
	}
	if globalSamples <= 0 {
		return waitEstimate{num: 1, den: 0}
	}
	return waitEstimate{num: num, den: uint64(globalSamples)}
}

// Seconds returns the estimate as float seconds (+Inf when there is no throughput).
func (e waitEstimate) Seconds() float64 {
	if e.den == 0 {
		if e.num == 0 {
			return 0
		}
		return math.Inf(1)
	}
	return float64(e.num) / float64(e.den)
}

// exceedsMillis reports whether the estimate is strictly greater than limitMs milliseconds, i.e.
// num×1000 > limitMs×den, in 128-bit arithmetic so that no configuration can overflow it.
func (e waitEstimate) exceedsMillis(limitMs uint64) bool {
	if e.den == 0 {
		return e.num > 0
	}
	lh, ll := bits.Mul64(e.num, 1000)
	rh, rl := bits.Mul64(limitMs, e.den)
	return lh > rh || (lh == rh && ll > rl)
}
