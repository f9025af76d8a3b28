package localbackend

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/nanofaas/control-plane/internal/failure"
	"github.com/nanofaas/control-plane/internal/function"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testState is a backend state as the providers declare theirs.
type testState struct {
	Entry
	provisions int
	teardowns  atomic.Int32
}

func newTestTable() *Table[*testState] {
	return NewTable("test", func() *testState { return new(testState) })
}

func TestTableProvision_ConcurrentCallersShareOneProvisioning(t *testing.T) {
	tab := newTestTable()
	release := make(chan struct{})
	var calls atomic.Int32
	provision := func(st *testState) error {
		calls.Add(1)
		<-release
		st.provisions++
		return nil
	}
	const callers = 8
	got := make(chan *testState, callers)
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			st, err := tab.Provision(context.Background(), "fn", provision)
			if err != nil {
				t.Errorf("Provision: %v", err)
			}
			got <- st
		})
	}
	close(release)
	wg.Wait()
	close(got)
	first := <-got
	for st := range got {
		if st != first {
			t.Fatal("callers got different states")
		}
	}
	if calls.Load() != 1 || first.provisions != 1 || first.Name() != "fn" {
		t.Fatalf("provision ran %d times (state saw %d), name %q", calls.Load(), first.provisions, first.Name())
	}
	if tab.Lookup("fn") != first {
		t.Fatal("Lookup does not return the provisioned state")
	}
}

func TestTableProvision_FailureIsForgottenAndAWaiterProvisionsAfresh(t *testing.T) {
	tab := newTestTable()
	started, fail := make(chan struct{}), make(chan struct{})
	boom := errors.New("boom")
	firstErr := make(chan error, 1)
	go func() {
		_, err := tab.Provision(context.Background(), "fn", func(*testState) error {
			close(started)
			<-fail
			return boom
		})
		firstErr <- err
	}()
	<-started
	second := make(chan *testState, 1)
	go func() {
		st, err := tab.Provision(context.Background(), "fn", func(*testState) error { return nil })
		if err != nil {
			t.Errorf("second Provision: %v", err)
		}
		second <- st
	}()
	close(fail)
	if err := <-firstErr; !errors.Is(err, boom) {
		t.Fatalf("first Provision error = %v, want boom", err)
	}
	st := <-second
	if st == nil || tab.Lookup("fn") != st {
		t.Fatalf("second caller got %v, table holds %v", st, tab.Lookup("fn"))
	}
}

func TestTableProvision_WaiterGivesUpWhenContextEnds(t *testing.T) {
	tab := newTestTable()
	started, release := make(chan struct{}), make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = tab.Provision(context.Background(), "fn", func(*testState) error {
			close(started)
			<-release
			return nil
		})
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err := tab.Provision(ctx, "fn", func(*testState) error { return nil })
	close(release)
	<-done
	if !failure.IsKind(err, failure.Unavailable) || err.Error() != "Function 'fn': context deadline exceeded" {
		t.Fatalf("err = %v, want Unavailable \"Function 'fn': context deadline exceeded\"", err)
	}
}

func TestTableLocked_SkipsUnknownAndGoneFunctions(t *testing.T) {
	tab := newTestTable()
	ctx := context.Background()
	ran, err := tab.Locked(ctx, "missing", func(*testState) error { return errors.New("must not run") })
	if ran || err != nil {
		t.Fatalf("unknown: ran=%v err=%v", ran, err)
	}
	st, _ := tab.Provision(ctx, "fn", func(*testState) error { return nil })
	opErr := errors.New("op")
	if ran, err := tab.Locked(ctx, "fn", func(got *testState) error {
		if got != st || got.Gone() {
			t.Errorf("Locked got %v (gone %v), want the live state", got, got.Gone())
		}
		return opErr
	}); !ran || !errors.Is(err, opErr) {
		t.Fatalf("known: ran=%v err=%v", ran, err)
	}
	// A caller that looked the state up before it was deprovisioned finds it gone.
	if err := tab.Deprovision(ctx, "fn", func(*testState) {}); err != nil {
		t.Fatal(err)
	}
	if !st.Gone() || tab.Lookup("fn") != nil {
		t.Fatalf("after Deprovision: gone=%v, still in table=%v", st.Gone(), tab.Lookup("fn") != nil)
	}
	tab.fns["fn"] = st
	if ran, err := tab.Locked(ctx, "fn", func(*testState) error { return errors.New("must not run") }); ran || err != nil {
		t.Fatalf("gone: ran=%v err=%v", ran, err)
	}
}

func TestTableDeprovision_TearsDownOnceAndUnknownSucceeds(t *testing.T) {
	tab := newTestTable()
	ctx := context.Background()
	st, _ := tab.Provision(ctx, "fn", func(*testState) error { return nil })
	teardown := func(s *testState) {
		if !s.Gone() {
			t.Error("teardown saw a live state")
		}
		s.teardowns.Add(1)
	}
	for range 2 {
		if err := tab.Deprovision(ctx, "fn", teardown); err != nil {
			t.Fatal(err)
		}
	}
	if n := st.teardowns.Load(); n != 1 {
		t.Fatalf("teardown ran %d times, want 1", n)
	}
	if err := tab.Deprovision(ctx, "other", teardown); err != nil {
		t.Fatalf("unknown name: %v", err)
	}
	// Provisioning the name again creates a new state.
	again, _ := tab.Provision(ctx, "fn", func(*testState) error { return nil })
	if again == st || again.Gone() {
		t.Fatal("re-provisioning reused the retired state")
	}
}

func TestTableClose_CancelsOperationsTearsEverythingDownAndRefusesProvisioning(t *testing.T) {
	tab := newTestTable()
	ctx := context.Background()
	a, _ := tab.Provision(ctx, "a", func(*testState) error { return nil })
	b, _ := tab.Provision(ctx, "b", func(*testState) error { return nil })

	// An operation holding b's lock until it is cancelled: Close must wait for it.
	opCtx, cancelOp := tab.OpContext(ctx)
	defer cancelOp()
	holding := make(chan struct{})
	opDone := make(chan error, 1)
	go func() {
		_, err := tab.Locked(opCtx, "b", func(*testState) error {
			close(holding)
			<-opCtx.Done()
			return opCtx.Err()
		})
		opDone <- err
	}()
	<-holding

	n := tab.Close(func(s *testState) { s.teardowns.Add(1) })
	if n != 2 || a.teardowns.Load() != 1 || b.teardowns.Load() != 1 {
		t.Fatalf("Close retired %d, teardowns a=%d b=%d", n, a.teardowns.Load(), b.teardowns.Load())
	}
	if err := <-opDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("operation error = %v, want canceled", err)
	}
	if tab.Context().Err() == nil {
		t.Fatal("Context not cancelled by Close")
	}
	_, err := tab.Provision(ctx, "c", func(*testState) error { return nil })
	if !failure.IsKind(err, failure.Unavailable) || err.Error() != "Provider 'test' is shut down" {
		t.Fatalf("Provision after Close: %v", err)
	}
	if n := tab.Close(func(*testState) { t.Error("teardown after second Close") }); n != 0 {
		t.Fatalf("second Close retired %d", n)
	}
}

func TestUnsupported_NamesBackendAndFunction(t *testing.T) {
	tests := []struct {
		spec *function.Spec
		want string
	}{
		{&function.Spec{Name: "fn"}, "Provider 'process' does not support function 'fn'"},
		{nil, "Provider 'process' does not support function ''"},
	}
	for _, tc := range tests {
		err := Unsupported("process", tc.spec)
		if !failure.IsKind(err, failure.Unavailable) || err.Error() != tc.want {
			t.Errorf("Unsupported = %v, want Unavailable %q", err, tc.want)
		}
	}
}
