package registry

import (
	"context"
	"sync"
)

// lockTable serializes lifecycle operations per function name (D17). Entries are
// reference-counted and deleted when the last holder or waiter leaves; the count changes only
// under mu, so an entry cannot be deleted while someone is about to wait on it.
type lockTable struct {
	mu      sync.Mutex
	entries map[string]*lockEntry
}

// lockEntry is a mutex that can be waited on with a context: a one-slot channel, full = held.
type lockEntry struct {
	held chan struct{}
	refs int // holders + waiters; guarded by lockTable.mu
}

func newLockTable() *lockTable {
	return &lockTable{entries: map[string]*lockEntry{}}
}

// lock acquires name's lock, waiting until it is free or ctx is done. On success the returned
// function releases it (call exactly once).
func (t *lockTable) lock(ctx context.Context, name string) (func(), error) {
	t.mu.Lock()
	e, ok := t.entries[name]
	if !ok {
		e = &lockEntry{held: make(chan struct{}, 1)}
		t.entries[name] = e
	}
	e.refs++
	t.mu.Unlock()

	select {
	case e.held <- struct{}{}:
		return func() {
			<-e.held
			t.release(name, e)
		}, nil
	case <-ctx.Done():
		t.release(name, e)
		return nil, ctx.Err()
	}
}

func (t *lockTable) release(name string, e *lockEntry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e.refs--
	if e.refs == 0 {
		delete(t.entries, name)
	}
}

// size returns the number of live entries (for tests: 0 when no operation is in progress).
func (t *lockTable) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries)
}
