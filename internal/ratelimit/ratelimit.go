// Package ratelimit owns the global invocation rate limiter: a fixed window aligned to
// wall-clock epoch seconds shared by all functions' invoke and enqueue calls (spec-core §6.5,
// DECISIONS D8).
package ratelimit

import (
	"sync/atomic"
	"time"
)

// DefaultMaxPerSecond is nanofaas.rate.maxPerSecond's default.
const DefaultMaxPerSecond = 1_000_000

// Limiter allows at most MaxPerSecond calls per epoch second. It is safe for concurrent use
// and allocation-free.
//
// The window's second and its counter share one atomic word (second in the high 32 bits,
// count in the low 32 bits). Keeping them in separate atomics, as the reference does, lets a
// call counted just before another call's window reset be lost, admitting one extra call in
// the new window; with a single word every increment lands in exactly one window.
type Limiter struct {
	now   func() time.Time
	max   atomic.Int64
	state atomic.Uint64 // second<<32 | count
}

// New returns a limiter allowing maxPerSecond calls per second (≤ 0 rejects everything),
// using clock now (nil = time.Now).
func New(maxPerSecond int, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	l := &Limiter{now: now}
	l.max.Store(int64(maxPerSecond))
	return l
}

// Allow counts one call in the current window (rejected calls count too) and reports whether
// it is within the limit.
func (l *Limiter) Allow() bool {
	sec := l.now().Unix()
	if sec < 0 {
		sec = 0
	}
	// Epoch seconds fit in 32 bits until 2106; the count would need 2^32 calls in one second
	// to overflow into them.
	window := uint64(sec) & 0xffffffff
	for {
		old := l.state.Load()
		if window > old>>32 {
			if l.state.CompareAndSwap(old, window<<32|1) {
				return 1 <= l.max.Load()
			}
			continue // someone else moved or counted; re-read
		}
		n := l.state.Add(1)
		return int64(n&0xffffffff) <= l.max.Load()
	}
}

// SetMaxPerSecond changes the limit; it applies to the current window immediately.
func (l *Limiter) SetMaxPerSecond(n int) { l.max.Store(int64(n)) }

// MaxPerSecond returns the current limit.
func (l *Limiter) MaxPerSecond() int { return int(l.max.Load()) }
