package queue

import (
	"sync"
	"sync/atomic"

	"github.com/nanofaas/control-plane/internal/execution"
	"github.com/nanofaas/control-plane/internal/function"
)

// modes are the concurrency-controller modes in gauge order; state.mode indexes into it.
var modes = [...]function.ConcurrencyControlMode{
	function.ConcurrencyFixed,
	function.ConcurrencyStaticPerPod,
	function.ConcurrencyAdaptivePerPod,
}

// modeIndex maps a mode to its index in modes; "" and unknown values count as FIXED, the
// reference's default when a spec sets none.
func modeIndex(m function.ConcurrencyControlMode) int32 {
	for i, v := range modes {
		if v == m {
			return int32(i)
		}
	}
	return 0
}

// state is one function's FunctionQueueState (spec-modules §1): a bounded FIFO, the dispatch
// slot counter and the concurrency limits, plus the controller facts shown by the gauges.
//
// The counters are atomics rather than fields under mu because they sit on every dispatch and
// completion (tryAcquire/release) and are read at scrape time and by the autoscaler; only the
// queue itself needs a lock.
type state struct {
	name     string
	capacity int

	mu     sync.Mutex
	tasks  ring[*execution.Task] // guarded by mu
	closed atomic.Bool           // written under mu so offer and closeAndDrain agree

	depth      atomic.Int64 // mirror of tasks.n for lock-free readers
	inFlight   atomic.Int64
	effective  atomic.Int64
	configured atomic.Int64
	limitsMu   sync.Mutex // serializes changes of configured+effective (reads stay atomic)

	mode   atomic.Int32 // index into modes
	target atomic.Int64

	signalled atomic.Bool // true while the state sits in the scheduler's work list
}

// initialQueueBuf bounds the up-front queue allocation; larger queues grow on demand so an
// idle function with queueSize 100000 does not pin 800 KB.
const initialQueueBuf = 16

func newState(spec *function.Spec) *state {
	capacity := spec.QueueCapacity()
	st := &state{name: spec.Name, capacity: capacity}
	st.tasks.buf = make([]*execution.Task, min(max(capacity, 0), initialQueueBuf))
	c := int64(max(1, spec.ConcurrencyLimit()))
	st.configured.Store(c)
	st.effective.Store(c)
	mode, target := controllerOf(spec)
	st.mode.Store(modeIndex(mode))
	st.target.Store(int64(target))
	return st
}

// controllerOf returns the spec's initial controller mode (FIXED if unset) and target per pod
// (0 if unset, never negative).
func controllerOf(spec *function.Spec) (function.ConcurrencyControlMode, int) {
	if spec.ScalingConfig == nil || spec.ScalingConfig.ConcurrencyControl == nil {
		return function.ConcurrencyFixed, 0
	}
	cc := spec.ScalingConfig.ConcurrencyControl
	mode := function.ConcurrencyFixed
	if cc.Mode != nil {
		mode = *cc.Mode
	}
	target := 0
	if cc.TargetInFlightPerPod != nil {
		target = max(0, *cc.TargetInFlightPerPod)
	}
	return mode, target
}

// offer appends task unless the queue is closed or full.
func (s *state) offer(task *execution.Task) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() || s.tasks.n >= s.capacity {
		return false
	}
	s.tasks.push(task, s.capacity)
	s.depth.Store(int64(s.tasks.n))
	return true
}

// poll removes the oldest task, if any.
func (s *state) poll() (*execution.Task, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tasks.pop()
	if ok {
		s.depth.Store(int64(s.tasks.n))
	}
	return t, ok
}

// closeAndDrain rejects every later offer and returns the queued tasks in FIFO order.
func (s *state) closeAndDrain() []*execution.Task {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed.Store(true)
	drained := s.tasks.drain()
	s.depth.Store(0)
	return drained
}

// tryAcquire takes a dispatch slot if inFlight < effective, atomically.
func (s *state) tryAcquire() bool {
	for {
		cur := s.inFlight.Load()
		if cur >= s.effective.Load() {
			return false
		}
		if s.inFlight.CompareAndSwap(cur, cur+1) {
			return true
		}
	}
}

// release frees a dispatch slot; releases below zero are ignored.
func (s *state) release() {
	for {
		cur := s.inFlight.Load()
		if cur <= 0 {
			return
		}
		if s.inFlight.CompareAndSwap(cur, cur-1) {
			return
		}
	}
}

// hasAvailableSlot reports inFlight < effective without taking a slot.
func (s *state) hasAvailableSlot() bool { return s.inFlight.Load() < s.effective.Load() }

// setEffective sets the effective limit to clamp(n, 1, configured).
func (s *state) setEffective(n int) {
	s.limitsMu.Lock()
	defer s.limitsMu.Unlock()
	s.effective.Store(min(max(1, int64(n)), s.configured.Load()))
}

// setConfigured applies a new configured concurrency (max(1, n)): an effective limit that
// followed the old configured one follows the new one; otherwise it is only ever lowered to it.
func (s *state) setConfigured(n int) {
	s.limitsMu.Lock()
	defer s.limitsMu.Unlock()
	prev := s.configured.Load()
	next := max(1, int64(n))
	s.configured.Store(next)
	if eff := s.effective.Load(); eff == prev || eff > next {
		s.effective.Store(next)
	}
}

// ring is a growable FIFO ring buffer; it allocates only when it has to grow.
type ring[T any] struct {
	buf  []T
	head int
	n    int
}

// push appends v, growing the buffer (doubling, at most to limit when limit > 0). Callers check
// the bound themselves; limit only caps how much is allocated.
func (r *ring[T]) push(v T, limit int) {
	if r.n == len(r.buf) {
		r.grow(limit)
	}
	r.buf[(r.head+r.n)%len(r.buf)] = v
	r.n++
}

func (r *ring[T]) grow(limit int) {
	size := max(2*len(r.buf), 8)
	if limit > 0 {
		size = max(min(size, limit), r.n+1)
	}
	buf := make([]T, size)
	for i := range r.n {
		buf[i] = r.buf[(r.head+i)%len(r.buf)]
	}
	r.buf, r.head = buf, 0
}

// pop removes the oldest element, clearing its slot so the buffer does not retain it.
func (r *ring[T]) pop() (T, bool) {
	var zero T
	if r.n == 0 {
		return zero, false
	}
	v := r.buf[r.head]
	r.buf[r.head] = zero
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	return v, true
}

// drain removes and returns every element in FIFO order and drops the buffer.
func (r *ring[T]) drain() []T {
	out := make([]T, 0, r.n)
	for i := range r.n {
		out = append(out, r.buf[(r.head+i)%len(r.buf)])
	}
	r.buf, r.head, r.n = nil, 0, 0
	return out
}
