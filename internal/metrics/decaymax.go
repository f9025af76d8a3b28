package metrics

import (
	"sync"
	"sync/atomic"
	"time"
)

// Micrometer's Prometheus registry gives timers an expiry equal to its step (1 min) and its
// TimeWindowMax rotates one of 3 buckets per expiry, so a recorded max stays visible for at least
// 2 and under 3 minutes after the last sample (the spec's "decays over ≈2 min").
const (
	maxRotateInterval = time.Minute
	maxBuckets        = 3
)

// DecayingMax is a port of Micrometer's TimeWindowMax as its Prometheus registry configures it (the
// `_max` gauge of every timer): a ring of buckets that every sample raises, with the current bucket
// cleared and advanced once per rotation interval. Samples and the current index are atomics so
// that recording never takes a lock; only rotation does. Safe for concurrent use; the clock is the
// caller's (every method takes now). Start it with NewDecayingMax, or Init one held by value; do
// not copy it afterwards.
type DecayingMax struct {
	interval   int64 // nanoseconds between rotations
	lastRotate atomic.Int64
	current    atomic.Int32
	buckets    [maxBuckets]atomic.Int64 // durations in nanoseconds
	rotateMu   sync.Mutex
}

// NewDecayingMax returns a DecayingMax whose first window starts at now.
func NewDecayingMax(now time.Time) *DecayingMax {
	m := new(DecayingMax)
	m.Init(now)
	return m
}

// Init starts the first window at now; it must come before any other use.
func (m *DecayingMax) Init(now time.Time) {
	m.interval = int64(maxRotateInterval)
	m.lastRotate.Store(now.UnixNano())
}

// Record raises every bucket to d (a negative d changes nothing). It never blocks: if another
// goroutine is rotating, the sample goes into the buckets as they are, exactly as in Micrometer.
func (m *DecayingMax) Record(d time.Duration, now time.Time) {
	m.rotate(now, false)
	v := int64(d)
	for i := range m.buckets {
		b := &m.buckets[i]
		for {
			cur := b.Load()
			if cur >= v || b.CompareAndSwap(cur, v) {
				break
			}
		}
	}
}

// Poll returns the max visible at now.
func (m *DecayingMax) Poll(now time.Time) time.Duration {
	m.rotate(now, true)
	return time.Duration(m.buckets[m.current.Load()].Load())
}

func (m *DecayingMax) rotate(now time.Time, wait bool) {
	nowNs := now.UnixNano()
	if nowNs-m.lastRotate.Load() < m.interval {
		return
	}
	if wait {
		m.rotateMu.Lock()
	} else if !m.rotateMu.TryLock() {
		return
	}
	defer m.rotateMu.Unlock()

	// Re-read under the lock: another goroutine may have rotated since the check above
	// (Micrometer would rotate twice here).
	last := m.lastRotate.Load()
	elapsed := nowNs - last
	if elapsed < m.interval {
		return
	}
	if elapsed >= m.interval*maxBuckets {
		for i := range m.buckets {
			m.buckets[i].Store(0)
		}
		m.current.Store(0)
		m.lastRotate.Store(nowNs - elapsed%m.interval)
		return
	}
	cur := m.current.Load()
	for elapsed >= m.interval {
		m.buckets[cur].Store(0)
		cur = (cur + 1) % maxBuckets
		elapsed -= m.interval
		last += m.interval
	}
	m.current.Store(cur)
	m.lastRotate.Store(last)
}
