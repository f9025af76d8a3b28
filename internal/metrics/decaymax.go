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

// decayingMax is a port of Micrometer's TimeWindowMax: a ring of buckets that every sample raises,
// with the current bucket cleared and advanced once per rotation interval. Samples and the current
// index are atomics so that recording never takes a lock; only rotation does.
type decayingMax struct {
	interval   int64 // nanoseconds between rotations
	lastRotate atomic.Int64
	current    atomic.Int32
	buckets    [maxBuckets]atomic.Int64 // durations in nanoseconds
	rotateMu   sync.Mutex
}

func (m *decayingMax) init(now time.Time, interval time.Duration) {
	m.interval = int64(interval)
	m.lastRotate.Store(now.UnixNano())
}

// record raises every bucket to d. It never blocks: if another goroutine is rotating, the sample
// goes into the buckets as they are, exactly as in Micrometer.
func (m *decayingMax) record(d time.Duration, now time.Time) {
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

// poll returns the max visible at now.
func (m *decayingMax) poll(now time.Time) time.Duration {
	m.rotate(now, true)
	return time.Duration(m.buckets[m.current.Load()].Load())
}

func (m *decayingMax) rotate(now time.Time, wait bool) {
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
