// Package localbackend owns what the deployment backends that run replicas on this machine
// (container-local and process) share: the table of provisioned functions, with a context-aware
// lock per function, the provision-once protocol and shutdown, and the GET /health probe of a
// replica. How replicas are started, routed and stopped stays with each backend.
package localbackend

import (
	"context"
	"sync"

	"github.com/nanofaas/control-plane/internal/failure"
	"github.com/nanofaas/control-plane/internal/function"
)

// Entry is the part of a function's state that a Table manages. A backend's state type embeds it
// by value; the Table initializes it.
type Entry struct {
	name string
	// lock serializes provision, scaling, readiness counting and deprovision of the function;
	// a channel so that waiting for it honours ctx.
	lock chan struct{}
	gone bool // guarded by lock: deprovisioned or failed; a new state replaces it
}

func (e *Entry) entry() *Entry { return e }

// Name is the function's name.
func (e *Entry) Name() string { return e.name }

// Acquire takes the function's lock, or fails with failure.Unavailable when ctx ends first.
func (e *Entry) Acquire(ctx context.Context) error {
	select {
	case e.lock <- struct{}{}:
		return nil
	default:
	}
	select {
	case e.lock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return failure.Unavailablef("Function '%s': %v", e.name, ctx.Err())
	}
}

// Release gives the lock back.
func (e *Entry) Release() { <-e.lock }

// Gone reports whether the function was deprovisioned or failed to provision; the caller holds
// the lock.
func (e *Entry) Gone() bool { return e.gone }

// State is a backend's per-function state: a pointer to a struct that embeds Entry.
type State interface{ entry() *Entry }

// Table holds the provisioned functions of one backend. Operations on one function are
// serialized by its Entry's lock; different functions proceed in parallel.
type Table[S State] struct {
	backend  string
	newState func() S

	// base is cancelled by Close so that in-flight operations give up promptly.
	base       context.Context
	cancelBase context.CancelFunc

	mu     sync.Mutex
	fns    map[string]S
	closed bool
}

// NewTable returns an empty table of backend (its id, for messages); newState returns a fresh
// zero state.
func NewTable[S State](backend string, newState func() S) *Table[S] {
	base, cancel := context.WithCancel(context.Background())
	return &Table[S]{backend: backend, newState: newState, base: base, cancelBase: cancel, fns: make(map[string]S)}
}

// Context is cancelled by Close.
func (t *Table[S]) Context() context.Context { return t.base }

// OpContext merges ctx with the table's lifetime, so that Close cancels the operation.
func (t *Table[S]) OpContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(t.base, cancel)
	return ctx, func() { stop(); cancel() }
}

// Unsupported is the error of provisioning a spec the backend does not support.
func Unsupported(backend string, spec *function.Spec) error {
	name := ""
	if spec != nil {
		name = spec.Name
	}
	return failure.Unavailablef("Provider '%s' does not support function '%s'", backend, name)
}

func (t *Table[S]) errClosed() error {
	return failure.Unavailablef("Provider '%s' is shut down", t.backend)
}

// Provision returns name's state, running provision on a fresh one, under its lock, when there is
// none. Concurrent callers for one name share one provisioning: they wait for it and get its
// state, or provision afresh when it failed or was deprovisioned while they waited. A failed
// state is gone and dropped from the table; its error is returned. What provision writes is
// visible to every caller that gets the state.
func (t *Table[S]) Provision(ctx context.Context, name string, provision func(S) error) (S, error) {
	var zero S
	for {
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			return zero, t.errClosed()
		}
		st, exists := t.fns[name]
		if !exists {
			st = t.newState()
			*st.entry() = Entry{name: name, lock: make(chan struct{}, 1)}
			st.entry().lock <- struct{}{} // held until provisioning is over; nobody else can see it yet
			t.fns[name] = st
		}
		t.mu.Unlock()

		e := st.entry()
		if !exists {
			err := provision(st)
			if err != nil {
				e.gone = true
				t.forget(st)
			}
			e.Release()
			if err != nil {
				return zero, err
			}
			return st, nil
		}
		if err := e.Acquire(ctx); err != nil {
			return zero, err
		}
		gone := e.gone
		e.Release()
		if !gone {
			return st, nil
		}
		// It failed or was deprovisioned while we waited: provision afresh.
	}
}

// Lookup returns name's state, or the zero S when there is none.
func (t *Table[S]) Lookup(name string) S {
	st, _ := t.lookup(name)
	return st
}

func (t *Table[S]) lookup(name string) (S, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st, ok := t.fns[name]
	return st, ok
}

// forget drops st from the table if it is still its function's state.
func (t *Table[S]) forget(st S) {
	e := st.entry()
	t.mu.Lock()
	if cur, ok := t.fns[e.name]; ok && cur.entry() == e {
		delete(t.fns, e.name)
	}
	t.mu.Unlock()
}

// Locked runs fn on name's state under its lock. An unknown or gone function is not an error:
// fn does not run and ran is false. err is fn's, or the lock wait's when ctx ends first.
func (t *Table[S]) Locked(ctx context.Context, name string, fn func(S) error) (ran bool, err error) {
	st, ok := t.lookup(name)
	if !ok {
		return false, nil
	}
	e := st.entry()
	if err := e.Acquire(ctx); err != nil {
		return false, err
	}
	defer e.Release()
	if e.gone {
		return false, nil
	}
	return true, fn(st)
}

// retireLocked drops st from the table, marks it gone and runs teardown on it; the caller holds
// its lock. A state already gone is left alone.
func (t *Table[S]) retireLocked(st S, teardown func(S)) {
	if st.entry().gone {
		return
	}
	t.forget(st)
	st.entry().gone = true
	teardown(st)
}

// Deprovision retires name's state, running teardown on it under its lock. An unknown or gone
// function succeeds without teardown; the only error is ctx ending while waiting for the lock.
func (t *Table[S]) Deprovision(ctx context.Context, name string, teardown func(S)) error {
	_, err := t.Locked(ctx, name, func(st S) error {
		t.retireLocked(st, teardown)
		return nil
	})
	return err
}

// Close refuses further provisioning, cancels Context and every OpContext, then retires every
// function in parallel, running teardown on each under its lock, and returns how many it
// retired. It waits for each lock however long that takes: the holder was cancelled and
// finishes promptly, and giving up would leave its replicas running. Close may be called again.
func (t *Table[S]) Close(teardown func(S)) int {
	t.mu.Lock()
	t.closed = true
	states := make([]S, 0, len(t.fns))
	for _, st := range t.fns {
		states = append(states, st)
	}
	t.mu.Unlock()
	t.cancelBase()

	var wg sync.WaitGroup
	for _, st := range states {
		wg.Go(func() {
			e := st.entry()
			e.lock <- struct{}{}
			defer e.Release()
			t.retireLocked(st, teardown)
		})
	}
	wg.Wait()
	return len(states)
}
