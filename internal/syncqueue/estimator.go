package syncqueue

import "time"

// eventResolution is how close dispatch events must be to share a bucket. The reference keeps one
// timestamp per dispatch; at tens of thousands of dispatches per second over a 30 s window that is
// megabytes per deque, so events within 1 ms of a bucket's first event are counted together. A
// bucket is pruned by its first event, so an event may leave the window up to 1 ms early.
const eventResolution = time.Millisecond

type eventBucket struct {
	first time.Time // time of the bucket's first event
	count int
}

// eventWindow is the WaitEstimator's deque of dispatch timestamps (one global, one per function):
// a growable ring of buckets in time order. Not safe for concurrent use (the queue lock guards it).
type eventWindow struct {
	buf   []eventBucket // len is 0 or a power of two
	head  int
	n     int // buckets in use
	total int // events in those buckets
}

// record adds one event at t. Events arrive in time order (the scheduler records them).
func (w *eventWindow) record(t time.Time) {
	if w.n > 0 {
		last := &w.buf[(w.head+w.n-1)&(len(w.buf)-1)]
		if d := t.Sub(last.first); d >= 0 && d < eventResolution {
			last.count++
			w.total++
			return
		}
	}
	if w.n == len(w.buf) {
		w.grow()
	}
	w.buf[(w.head+w.n)&(len(w.buf)-1)] = eventBucket{first: t, count: 1}
	w.n++
	w.total++
}

func (w *eventWindow) grow() {
	size := 2 * len(w.buf)
	if size == 0 {
		size = 8
	}
	next := make([]eventBucket, size)
	for i := 0; i < w.n; i++ {
		next[i] = w.buf[(w.head+i)&(len(w.buf)-1)]
	}
	w.buf, w.head = next, 0
}

// prune drops events strictly older than cutoff (an event exactly at the cutoff is kept) and
// returns how many remain. Amortized O(1): each bucket is dropped once.
func (w *eventWindow) prune(cutoff time.Time) int {
	for w.n > 0 {
		b := &w.buf[w.head]
		if !b.first.Before(cutoff) {
			break
		}
		w.total -= b.count
		*b = eventBucket{}
		w.head = (w.head + 1) & (len(w.buf) - 1)
		w.n--
	}
	return w.total
}

// windowSeconds is max(1, window truncated to whole seconds), the estimator's divisor.
func windowSeconds(window time.Duration) uint64 {
	if s := int64(window / time.Second); s > 1 {
		return uint64(s)
	}
	return 1
}
