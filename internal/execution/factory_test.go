package execution

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nanofaas/control-plane/internal/function"
)

type factoryFixture struct {
	clock *fakeClock
	puts  atomic.Int64 // Store.Put calls (the store reads its clock once per Put)
	store *Store
	idem  *IdempotencyStore
	f     *Factory
	spec  *function.Spec
}

func newFactoryFixture() *factoryFixture {
	fx := &factoryFixture{clock: newFakeClock()}
	fx.store = NewStore(StoreConfig{}, func() time.Time {
		fx.puts.Add(1)
		return fx.clock.Now()
	})
	fx.idem = NewIdempotencyStore(IdempotencyConfig{}, fx.clock.Now)
	fx.f = NewFactory(fx.store, fx.idem, fx.clock.Now, discardLogger())
	mode := function.ModeLocal
	fx.spec = &function.Spec{Name: "echo", ExecutionMode: &mode}
	return fx
}

func (fx *factoryFixture) invoke(ctx context.Context, key string) (Lookup, error) {
	return fx.f.CreateOrReuse(ctx, "echo", fx.spec, &Request{Input: json.RawMessage(`"hi"`)}, key, nil)
}

func admitOK() error { return nil }

// waitFor polls cond (the observable state of other goroutines) until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

func TestFactory_UnkeyedRequestCreatesNewQueuedRecordInStore(t *testing.T) {
	fx := newFactoryFixture()
	trace := "t-1"
	req := &Request{Input: json.RawMessage(`{"a":1}`)}
	l, err := fx.f.CreateOrReuse(context.Background(), "echo", fx.spec, req, "", &trace)
	if err != nil || !l.IsNew() {
		t.Fatalf("lookup = %+v, %v", l, err)
	}
	task := l.Record.Task()
	if !uuidV4.MatchString(task.ExecutionID) || task.ExecutionID != l.Record.ID() {
		t.Fatalf("bad execution id %q", task.ExecutionID)
	}
	if task.FunctionName != "echo" || task.Spec != fx.spec || task.Request != req || task.TraceID != &trace ||
		task.IdempotencyKey != "" || task.Attempt != 1 || !task.EnqueuedAt.Equal(fx.clock.Now()) {
		t.Fatalf("unexpected task %+v", task)
	}
	if l.Record.State() != StateQueued {
		t.Fatalf("state %s", l.Record.State())
	}
	if got, ok := fx.store.Get(task.ExecutionID); !ok || got != l.Record {
		t.Fatal("new record not visible in the store before admission")
	}
}

func TestFactory_BlankKeysMeanNoKey(t *testing.T) {
	for _, key := range []string{"", " ", "\t\n "} {
		fx := newFactoryFixture()
		a, _ := fx.invoke(context.Background(), key)
		b, _ := fx.invoke(context.Background(), key)
		if !a.IsNew() || !b.IsNew() || a.Record == b.Record {
			t.Fatalf("key %q: requests were deduplicated", key)
		}
		if a.Record.Task().IdempotencyKey != "" || fx.idem.Len() != 0 {
			t.Fatalf("key %q: blank key was recorded", key)
		}
		if err := fx.f.AdmitIfNew(a, admitOK); err != nil || fx.idem.Len() != 0 {
			t.Fatalf("key %q: admission published a claim (err %v)", key, err)
		}
	}
}

func TestFactory_SameKeyReplaysPublishedExecutionWithoutTouchingStore(t *testing.T) {
	fx := newFactoryFixture()
	first, err := fx.invoke(context.Background(), "k")
	if err != nil || !first.IsNew() || first.Record.Task().IdempotencyKey != "k" {
		t.Fatalf("first = %+v, %v", first, err)
	}
	if err := fx.f.AdmitIfNew(first, admitOK); err != nil {
		t.Fatal(err)
	}
	if id, _ := fx.idem.Get("echo", "k"); id != first.Record.ID() {
		t.Fatalf("key maps to %q, want %q", id, first.Record.ID())
	}
	puts, size := fx.puts.Load(), fx.store.Len()
	for range 3 {
		again, err := fx.invoke(context.Background(), "k")
		if err != nil || again.IsNew() || again.Record != first.Record {
			t.Fatalf("replay = %+v, %v", again, err)
		}
		admitted := false
		if err := fx.f.AdmitIfNew(again, func() error { admitted = true; return nil }); err != nil || admitted {
			t.Fatalf("replay was admitted (err %v)", err)
		}
	}
	if fx.puts.Load() != puts || fx.store.Len() != size {
		t.Fatalf("replays put/removed records: puts %d→%d, len %d→%d", puts, fx.puts.Load(), size, fx.store.Len())
	}
}

func TestFactory_SameKeyOnOtherFunctionIsIndependent(t *testing.T) {
	fx := newFactoryFixture()
	a, _ := fx.f.CreateOrReuse(context.Background(), "a", fx.spec, &Request{}, "b:c", nil)
	_ = fx.f.AdmitIfNew(a, admitOK)
	b, _ := fx.f.CreateOrReuse(context.Background(), "a:b", fx.spec, &Request{}, "c", nil)
	if !b.IsNew() || b.Record == a.Record {
		t.Fatal("(a, b:c) and (a:b, c) collided")
	}
}

type lookupOutcome struct {
	l   Lookup
	err error
}

func (fx *factoryFixture) invokeAsync(ctx context.Context, key string) <-chan lookupOutcome {
	ch := make(chan lookupOutcome, 1)
	go func() {
		l, err := fx.invoke(ctx, key)
		ch <- lookupOutcome{l, err}
	}()
	return ch
}

func TestFactory_SameKeyWaitsForPendingClaimThenReusesPublished(t *testing.T) {
	fx := newFactoryFixture()
	first, _ := fx.invoke(context.Background(), "k")
	second := fx.invokeAsync(context.Background(), "k")
	waitFor(t, "second request to wait on the claim", func() bool { return fx.idem.hasWaiters("echo", "k") })
	select {
	case o := <-second:
		t.Fatalf("second request returned before publication: %+v", o)
	default:
	}
	if err := fx.f.AdmitIfNew(first, admitOK); err != nil {
		t.Fatal(err)
	}
	o := <-second
	if o.err != nil || o.l.IsNew() || o.l.Record != first.Record {
		t.Fatalf("second = %+v, %v; want EXISTING first record", o.l, o.err)
	}
}

func TestFactory_SameKeyWaiterCreatesReplacementWhenAdmissionFails(t *testing.T) {
	fx := newFactoryFixture()
	first, _ := fx.invoke(context.Background(), "k")
	second := fx.invokeAsync(context.Background(), "k")
	waitFor(t, "second request to wait on the claim", func() bool { return fx.idem.hasWaiters("echo", "k") })
	errQueueFull := errors.New("queue full")
	if err := fx.f.AdmitIfNew(first, func() error { return errQueueFull }); !errors.Is(err, errQueueFull) {
		t.Fatalf("AdmitIfNew = %v, want the admission error", err)
	}
	o := <-second
	if o.err != nil || !o.l.IsNew() || o.l.Record.ID() == first.Record.ID() {
		t.Fatalf("second = %+v, %v; want a NEW replacement", o.l, o.err)
	}
	if _, ok := fx.store.Get(first.Record.ID()); ok {
		t.Fatal("failed record still in store")
	}
	if err := fx.f.AdmitIfNew(o.l, admitOK); err != nil {
		t.Fatal(err)
	}
	if id, _ := fx.idem.Get("echo", "k"); id != o.l.Record.ID() || fx.store.Len() != 1 {
		t.Fatalf("key → %q, store len %d", id, fx.store.Len())
	}
}

func TestFactory_WaitingForClaimEndsWithContext(t *testing.T) {
	tests := []struct {
		name        string
		ctx         func() (context.Context, context.CancelFunc)
		cancelFirst bool
		want        error
	}{
		{"client cancels", func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }, true, context.Canceled},
		{"deadline passes", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 20*time.Millisecond)
		}, false, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newFactoryFixture()
			if _, err := fx.invoke(context.Background(), "k"); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := tt.ctx()
			defer cancel()
			waiter := fx.invokeAsync(ctx, "k")
			waitFor(t, "waiter to attach", func() bool { return fx.idem.hasWaiters("echo", "k") })
			if tt.cancelFirst {
				cancel()
			}
			o := <-waiter
			if !errors.Is(o.err, tt.want) || o.l.Record != nil {
				t.Fatalf("waiter = %+v, %v; want %v", o.l, o.err, tt.want)
			}
			if fx.store.Len() != 1 {
				t.Fatalf("store len %d, want only the claim holder's record", fx.store.Len())
			}
		})
	}
}

func TestFactory_StaleMappingUnderContentionCreatesExactlyOneExecution(t *testing.T) {
	fx := newFactoryFixture()
	fx.idem.Put("echo", "k", "evicted-execution") // mapping to a record no longer in the store
	const n = 20
	start := make(chan struct{})
	releaseAdmission := make(chan struct{})
	var returned atomic.Int32
	results := make(chan lookupOutcome, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			l, err := fx.invoke(context.Background(), "k")
			returned.Add(1)
			if err == nil && l.IsNew() {
				err = fx.f.AdmitIfNew(l, func() error { <-releaseAdmission; return nil })
			}
			results <- lookupOutcome{l, err}
		}()
	}
	close(start)
	waitFor(t, "a winner and waiters", func() bool { return returned.Load() >= 1 && fx.idem.hasWaiters("echo", "k") })
	time.Sleep(5 * time.Millisecond) // give a wrongly-unblocked contender the chance to show up
	if got := returned.Load(); got != 1 {
		t.Fatalf("%d lookups returned before the winner published, want 1", got)
	}
	close(releaseAdmission)
	wg.Wait()
	close(results)

	var fresh int
	var rec *Record
	for o := range results {
		if o.err != nil {
			t.Fatalf("lookup failed: %v", o.err)
		}
		if o.l.IsNew() {
			fresh++
		}
		if rec == nil {
			rec = o.l.Record
		} else if o.l.Record != rec {
			t.Fatal("contenders got different executions")
		}
	}
	if fresh != 1 {
		t.Fatalf("%d fresh executions, want 1", fresh)
	}
	if id, _ := fx.idem.Get("echo", "k"); id != rec.ID() || fx.store.Len() != 1 {
		t.Fatalf("key → %q (want %q), store len %d", id, rec.ID(), fx.store.Len())
	}
}

func TestFactory_AdmitIfNewFailureLeavesNeitherRecordNorKey(t *testing.T) {
	for _, key := range []string{"k", ""} {
		fx := newFactoryFixture()
		l, _ := fx.invoke(context.Background(), key)
		errReject := errors.New("sync queue rejected")
		if err := fx.f.AdmitIfNew(l, func() error { return errReject }); !errors.Is(err, errReject) {
			t.Fatalf("key %q: AdmitIfNew = %v", key, err)
		}
		if fx.store.Len() != 0 || fx.idem.Len() != 0 {
			t.Fatalf("key %q: left store len %d, idempotency len %d", key, fx.store.Len(), fx.idem.Len())
		}
		next, _ := fx.invoke(context.Background(), key)
		if !next.IsNew() || next.Record.ID() == l.Record.ID() {
			t.Fatalf("key %q: next request did not start fresh", key)
		}
	}
}

func TestFactory_AdmitIfNewPanicRollsBackAndRepanics(t *testing.T) {
	fx := newFactoryFixture()
	l, _ := fx.invoke(context.Background(), "k")
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("panic swallowed")
			}
		}()
		_ = fx.f.AdmitIfNew(l, func() error { panic("enqueuer bug") })
	}()
	if fx.store.Len() != 0 || fx.idem.Len() != 0 {
		t.Fatalf("panic left store len %d, idempotency len %d", fx.store.Len(), fx.idem.Len())
	}
}

func TestFactory_StaleMappingIsReplacedAndRepublished(t *testing.T) {
	fx := newFactoryFixture()
	first, _ := fx.invoke(context.Background(), "k")
	_ = fx.f.AdmitIfNew(first, admitOK)
	fx.store.Remove(first.Record.ID()) // evicted by the janitor
	l, err := fx.invoke(context.Background(), "k")
	if err != nil || !l.IsNew() || l.Record.ID() == first.Record.ID() {
		t.Fatalf("lookup = %+v, %v; want a NEW replacement", l, err)
	}
	_ = fx.f.AdmitIfNew(l, admitOK)
	if id, _ := fx.idem.Get("echo", "k"); id != l.Record.ID() {
		t.Fatalf("key → %q, want %q", id, l.Record.ID())
	}
}

func TestFactory_ClaimExpiringDuringAdmissionKeepsAdmittedExecution(t *testing.T) {
	fx := newFactoryFixture()
	l, _ := fx.invoke(context.Background(), "k")
	err := fx.f.AdmitIfNew(l, func() error {
		fx.clock.Advance(6 * time.Minute) // the claim expires while admission runs
		return nil
	})
	var mc *MissingClaimError
	if !errors.As(err, &mc) || err.Error() != "Missing idempotency claim for echo:k" {
		t.Fatalf("AdmitIfNew = %v", err)
	}
	if _, ok := fx.store.Get(l.Record.ID()); !ok {
		t.Fatal("admitted execution was removed")
	}
}
