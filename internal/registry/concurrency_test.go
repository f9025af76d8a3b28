package registry

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nanofaas/control-plane/internal/function"
)

// waitFor polls cond until it holds (or fails the test after a generous deadline). Used only to
// observe that a goroutine has reached a blocking point; it never stands in for a clock.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// lockRefs returns the holders+waiters of name's lock entry.
func lockRefs(s *Service, name string) int {
	s.locks.mu.Lock()
	defer s.locks.mu.Unlock()
	if e, ok := s.locks.entries[name]; ok {
		return e.refs
	}
	return 0
}

// gate blocks callers of wait until open is called, and reports when someone is waiting.
type gate struct {
	entered chan struct{}
	release chan struct{}
}

func newGate() *gate { return &gate{entered: make(chan struct{}, 100), release: make(chan struct{})} }

func (g *gate) wait(ctx context.Context) error {
	g.entered <- struct{}{}
	select {
	case <-g.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gate) open() { close(g.release) }

func TestConcurrentRegister_SameNameHasExactlyOneWinner(t *testing.T) {
	j := &journal{}
	s := newService(t, "", nil, []Listener{&fakeListener{id: "l1", j: j}}, &fakeProvider{id: "k8s", j: j})
	const n = 50
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []string
		losers  int
	)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			spec := deploymentSpec("fn")
			spec.Image = fmt.Sprintf("img:%d", i)
			<-start
			_, err := s.Register(context.Background(), spec)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				winners = append(winners, spec.Image)
			case errors.Is(err, ErrAlreadyRegistered):
				losers++
			default:
				t.Errorf("unexpected error %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	if len(winners) != 1 || losers != n-1 {
		t.Fatalf("winners %d, losers %d", len(winners), losers)
	}
	if got, _ := s.Get("fn"); got.Spec.Image != winners[0] {
		t.Fatalf("stored image %q, winner %q", got.Spec.Image, winners[0])
	}
	if c := j.count("k8s.provision fn"); c != 1 {
		t.Fatalf("provisioned %d times", c)
	}
	if c := j.count("l1.onRegister fn http://k8s/fn"); c != 1 {
		t.Fatalf("listener notified %d times", c)
	}
	assertNoLocks(t, s)
}

func TestConcurrentRegister_DifferentNamesProceedInParallel(t *testing.T) {
	j := &journal{}
	g := newGate()
	p := &fakeProvider{id: "k8s", j: j, onProv: func(ctx context.Context, spec *function.Spec) error {
		if spec.Name == "slow" {
			return g.wait(ctx)
		}
		return nil
	}}
	s := newService(t, "", nil, nil, p)
	done := make(chan error, 1)
	go func() {
		_, err := s.Register(context.Background(), deploymentSpec("slow"))
		done <- err
	}()
	<-g.entered
	if _, err := s.Register(context.Background(), deploymentSpec("fast")); err != nil {
		t.Fatalf("fast registration blocked or failed: %v", err)
	}
	g.open()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	assertNoLocks(t, s)
}

func TestConcurrentRegister_DeploymentInvisibleUntilProvisioned(t *testing.T) {
	j := &journal{}
	g := newGate()
	p := &fakeProvider{id: "k8s", j: j, onProv: func(ctx context.Context, _ *function.Spec) error { return g.wait(ctx) }}
	s := newService(t, "", nil, nil, p)
	done := make(chan error, 1)
	go func() {
		_, err := s.Register(context.Background(), deploymentSpec("fn"))
		done <- err
	}()
	<-g.entered
	if _, ok := s.Get("fn"); ok {
		t.Fatal("function visible while provisioning")
	}
	if l := s.List(); len(l) != 0 {
		t.Fatalf("List shows %d functions while provisioning", len(l))
	}
	g.open()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got, ok := s.Get("fn")
	if !ok || got.Spec.Endpoint() != "http://k8s/fn" {
		t.Fatalf("after provisioning: %v, %v", got, ok)
	}
}

func TestConcurrentRemove_HidesFunctionDuringTeardownAndSetReplicasWaits(t *testing.T) {
	j := &journal{}
	g := newGate()
	p := &fakeProvider{id: "k8s", j: j}
	s := newService(t, "", nil, nil, p)
	if _, err := s.Register(context.Background(), deploymentSpec("fn")); err != nil {
		t.Fatal(err)
	}
	p.onDepr = func(ctx context.Context, _ string) error { return g.wait(ctx) }

	removed := make(chan error, 1)
	go func() {
		_, err := s.Remove(context.Background(), "fn")
		removed <- err
	}()
	<-g.entered
	if _, ok := s.Get("fn"); ok {
		t.Fatal("function visible during teardown")
	}

	scaled := make(chan error, 1)
	go func() {
		_, err := s.SetReplicas(context.Background(), "fn", 5)
		scaled <- err
	}()
	waitFor(t, "setReplicas to queue on the lock", func() bool { return lockRefs(s, "fn") == 2 })
	select {
	case err := <-scaled:
		t.Fatalf("setReplicas returned during removal: %v", err)
	default:
	}
	g.open()
	if err := <-removed; err != nil {
		t.Fatal(err)
	}
	if err := <-scaled; !errors.Is(err, ErrNotFound) {
		t.Fatalf("setReplicas err = %v, want ErrNotFound", err)
	}
	if c := j.count("k8s.replicas fn 5"); c != 0 {
		t.Fatal("scaled a function under teardown")
	}
	assertNoLocks(t, s)
}

func TestConcurrentRegisterRemove_AreSerializedPerName(t *testing.T) {
	j := &journal{}
	g := newGate()
	p := &fakeProvider{id: "k8s", j: j, onProv: func(ctx context.Context, _ *function.Spec) error { return g.wait(ctx) }}
	s := newService(t, "", nil, nil, p)
	registered := make(chan error, 1)
	go func() {
		_, err := s.Register(context.Background(), deploymentSpec("fn"))
		registered <- err
	}()
	<-g.entered
	removed := make(chan error, 1)
	go func() {
		_, err := s.Remove(context.Background(), "fn")
		removed <- err
	}()
	waitFor(t, "remove to queue on the lock", func() bool { return lockRefs(s, "fn") == 2 })
	g.open()
	if err := <-registered; err != nil {
		t.Fatal(err)
	}
	// Remove waited for the registration, so it found and removed the function.
	if err := <-removed; err != nil {
		t.Fatalf("remove err = %v, want success after the registration", err)
	}
	if want := []string{"k8s.provision fn", "k8s.deprovision fn"}; fmt.Sprint(j.list()) != fmt.Sprint(want) {
		t.Fatalf("events %q, want %q", j.list(), want)
	}
	assertNoLocks(t, s)
}

func TestLockWait_HonoursContextAndLeavesNoEntry(t *testing.T) {
	j := &journal{}
	g := newGate()
	p := &fakeProvider{id: "k8s", j: j, onProv: func(ctx context.Context, _ *function.Spec) error { return g.wait(ctx) }}
	s := newService(t, "", nil, nil, p)
	registered := make(chan error, 1)
	go func() {
		_, err := s.Register(context.Background(), deploymentSpec("fn"))
		registered <- err
	}()
	<-g.entered

	ctx, cancel := context.WithCancel(context.Background())
	scaled := make(chan error, 1)
	go func() {
		_, err := s.SetReplicas(ctx, "fn", 1)
		scaled <- err
	}()
	waitFor(t, "setReplicas to queue on the lock", func() bool { return lockRefs(s, "fn") == 2 })
	cancel()
	if err := <-scaled; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if r := lockRefs(s, "fn"); r != 1 {
		t.Fatalf("refs after cancelled wait = %d, want 1", r)
	}
	g.open()
	if err := <-registered; err != nil {
		t.Fatal(err)
	}
	assertNoLocks(t, s)
}

func TestLockTable_NoLeakUnderConcurrentChurn(t *testing.T) {
	j := &journal{}
	s := newService(t, "", nil, []Listener{&fakeListener{id: "l1", j: j}}, &fakeProvider{id: "k8s", j: j})
	names := []string{"a", "b", "c"}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			ctx := context.Background()
			for i := range 60 {
				name := names[(w+i)%len(names)]
				var err error
				switch (w + i) % 3 {
				case 0:
					_, err = s.Register(ctx, deploymentSpec(name))
					if errors.Is(err, ErrAlreadyRegistered) {
						err = nil
					}
				case 1:
					_, err = s.Remove(ctx, name)
				default:
					_, err = s.SetReplicas(ctx, name, i)
				}
				if err != nil && !errors.Is(err, ErrNotFound) {
					t.Errorf("unexpected error %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	assertNoLocks(t, s)
	// Every registration that happened was provisioned once and every removal deprovisioned once.
	prov, deprov := 0, 0
	for _, n := range names {
		prov += j.count("k8s.provision " + n)
		deprov += j.count("k8s.deprovision " + n)
	}
	if prov-deprov != len(s.List()) {
		t.Fatalf("provisions %d - deprovisions %d != %d registered", prov, deprov, len(s.List()))
	}
}
