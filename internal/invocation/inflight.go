package invocation

import "sync/atomic"

// inflight counts the Service's dispatch goroutines and refuses new ones once closed.
//
// A sync.WaitGroup cannot do this safely: module schedulers may call Dispatch while Close is
// waiting, and an Add from zero concurrent with Wait is a misuse. A mutex would fix that but
// put a shared lock on every POOL dispatch; one atomic word holding the count and a closed
// bit needs a single CAS per start and one add per finish.
type inflight struct {
	state atomic.Int64 // count | closedBit
	idle  chan struct{}
}

const closedBit = int64(1) << 62

func newInflight() *inflight { return &inflight{idle: make(chan struct{})} }

// start registers one goroutine; it returns false (registering nothing) once close was called.
func (g *inflight) start() bool {
	for {
		v := g.state.Load()
		if v&closedBit != 0 {
			return false
		}
		if g.state.CompareAndSwap(v, v+1) {
			return true
		}
	}
}

// done unregisters a goroutine registered by start.
func (g *inflight) done() {
	// Only the last goroutine to finish after close sees exactly closedBit.
	if g.state.Add(-1) == closedBit {
		close(g.idle)
	}
}

// close refuses further starts and returns a channel closed once none is running. It may be
// called more than once.
func (g *inflight) close() <-chan struct{} {
	if old := g.state.Or(closedBit); old == 0 {
		close(g.idle) // nothing was running, and nothing can start any more
	}
	return g.idle
}
