package syncqueue

import (
	"time"

	"github.com/nanofaas/control-plane/internal/execution"
)

// item is one admitted sync invocation waiting for dispatch.
type item struct {
	task *execution.Task
	fn   *fnState // the function's state at admission (replaced only after a removal drained it)
	at   time.Time
}

// ring is the global FIFO: a growable ring buffer of items stored by value, so that admission
// and dispatch allocate nothing once it has grown to its working size. The scheduler only ever
// removes from the first scanWindow positions, where removeAt shifts at most that many items.
// Not safe for concurrent use (the queue lock guards it).
type ring struct {
	buf  []item // len is 0 or a power of two
	head int
	n    int
}

func (r *ring) len() int { return r.n }

// at returns the i-th item from the head (0 ≤ i < len).
func (r *ring) at(i int) *item { return &r.buf[(r.head+i)&(len(r.buf)-1)] }

func (r *ring) pushBack(it item) {
	if r.n == len(r.buf) {
		r.grow()
	}
	*r.at(r.n) = it
	r.n++
}

func (r *ring) grow() {
	size := 2 * len(r.buf)
	if size == 0 {
		size = 16
	}
	next := make([]item, size)
	for i := 0; i < r.n; i++ {
		next[i] = *r.at(i)
	}
	r.buf, r.head = next, 0
}

func (r *ring) popFront() item {
	s := r.at(0)
	it := *s
	*s = item{} // drop the task pointer for the GC
	r.head = (r.head + 1) & (len(r.buf) - 1)
	r.n--
	return it
}

// removeAt removes and returns the i-th item, shifting the items before it one place back.
func (r *ring) removeAt(i int) item {
	it := *r.at(i)
	for j := i; j > 0; j-- {
		*r.at(j) = *r.at(j - 1)
	}
	r.popFront()
	return it
}

// removeFn removes every item of fn, keeping the order of the others, and appends the removed
// items to out.
func (r *ring) removeFn(fn *fnState, out []item) []item {
	kept := 0
	for i := 0; i < r.n; i++ {
		it := *r.at(i)
		if it.fn == fn {
			out = append(out, it)
			continue
		}
		*r.at(kept) = it
		kept++
	}
	for i := kept; i < r.n; i++ {
		*r.at(i) = item{}
	}
	r.n = kept
	return out
}
