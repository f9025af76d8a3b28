package execution

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func newTestIdem(clock *fakeClock) *IdempotencyStore {
	return NewIdempotencyStore(IdempotencyConfig{}, clock.Now)
}

func TestIdempotencyStore_PutGetAndUnknownKey(t *testing.T) {
	s := newTestIdem(newFakeClock())
	s.Put("fn", "k1", "exec-1")
	if id, ok := s.Get("fn", "k1"); !ok || id != "exec-1" {
		t.Fatalf("Get = %q, %v", id, ok)
	}
	if _, ok := s.Get("fn", "unknown"); ok {
		t.Fatal("unknown key found")
	}
}

func TestIdempotencyStore_KeysAreScopedByFunctionWithoutCollisions(t *testing.T) {
	tests := []struct {
		name      string
		fnA, keyA string
		fnB, keyB string
	}{
		{"same key, different functions", "fnA", "key", "fnB", "key"},
		{"colon concatenation collision (D5)", "a", "b:c", "a:b", "c"},
		{"empty function vs colon key", "", "a:b", "a", "b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestIdem(newFakeClock())
			s.Put(tt.fnA, tt.keyA, "exec-A")
			if _, ok := s.Get(tt.fnB, tt.keyB); ok {
				t.Fatal("second pair sees the first pair's mapping")
			}
			c := s.AcquireOrGet(tt.fnB, tt.keyB)
			if c.Status != ClaimClaimed {
				t.Fatalf("second pair could not be claimed: %+v", c)
			}
			if err := s.PublishClaim(tt.fnB, tt.keyB, c.Token, "exec-B"); err != nil {
				t.Fatal(err)
			}
			if id, _ := s.Get(tt.fnA, tt.keyA); id != "exec-A" {
				t.Fatalf("first pair now maps to %q", id)
			}
			if s.Len() != 2 {
				t.Fatalf("Len = %d, want 2", s.Len())
			}
		})
	}
}

func TestIdempotencyStore_EntriesExpireTTLAfterLastWrite(t *testing.T) {
	tests := []struct {
		name string
		cfg  IdempotencyConfig
		ttl  time.Duration
	}{
		{"default ttl", IdempotencyConfig{}, 5 * time.Minute},
		{"configured ttl", IdempotencyConfig{TTL: 10 * time.Second}, 10 * time.Second},
		{"negative means default", IdempotencyConfig{TTL: -time.Second}, 5 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			s := NewIdempotencyStore(tt.cfg, clock.Now)
			s.Put("fn", "k", "exec-1")
			clock.Advance(tt.ttl - time.Nanosecond)
			if _, ok := s.Get("fn", "k"); !ok {
				t.Fatal("entry expired before its ttl")
			}
			clock.Advance(time.Nanosecond)
			if _, ok := s.Get("fn", "k"); ok {
				t.Fatal("entry still present at its ttl")
			}
		})
	}
}

func TestIdempotencyStore_OverwriteResetsTTL(t *testing.T) {
	clock := newFakeClock()
	s := newTestIdem(clock)
	s.Put("fn", "k", "exec-1")
	clock.Advance(4 * time.Minute)
	s.Put("fn", "k", "exec-2")
	clock.Advance(4 * time.Minute)
	if id, ok := s.Get("fn", "k"); !ok || id != "exec-2" {
		t.Fatalf("Get = %q, %v; want exec-2 kept alive by the rewrite", id, ok)
	}
}

func TestIdempotencyStore_FreshClaimAfterExpiryAndOldTokenCannotPublish(t *testing.T) {
	clock := newFakeClock()
	s := newTestIdem(clock)
	first := s.AcquireOrGet("fn", "k")
	waiter := s.AcquireOrGet("fn", "k")
	if first.Status != ClaimClaimed || waiter.Status != ClaimPending {
		t.Fatalf("first=%+v waiter=%+v", first, waiter)
	}
	clock.Advance(5 * time.Minute)
	second := s.AcquireOrGet("fn", "k")
	if second.Status != ClaimClaimed || second.Token == first.Token {
		t.Fatalf("no fresh claim after expiry: %+v", second)
	}
	select {
	case <-waiter.Released:
	default:
		t.Fatal("waiters of the expired claim were not woken")
	}
	err := s.PublishClaim("fn", "k", first.Token, "exec-old")
	var mc *MissingClaimError
	if !errors.As(err, &mc) || err.Error() != "Missing idempotency claim for fn:k" {
		t.Fatalf("PublishClaim with expired token = %v", err)
	}
}

func TestIdempotencyStore_LenCountsLiveEntriesAndDropsExpired(t *testing.T) {
	clock := newFakeClock()
	s := newTestIdem(clock)
	s.Put("fn", "old", "exec-1")
	clock.Advance(3 * time.Minute)
	s.Put("fn", "new", "exec-2")
	s.AcquireOrGet("fn", "pending")
	if n := s.Len(); n != 3 {
		t.Fatalf("Len = %d, want 3", n)
	}
	clock.Advance(2 * time.Minute)
	if n := s.Len(); n != 2 {
		t.Fatalf("Len = %d, want 2 after the oldest expired", n)
	}
	if s.hasRaw("fn", "old") {
		t.Fatal("expired entry still stored after Len")
	}
}

// hasRaw reports whether (fn, key) is physically stored, expired or not.
func (s *IdempotencyStore) hasRaw(fn, key string) bool {
	k := idemKey{fn, key}
	sh := s.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	_, ok := sh.m[k]
	return ok
}

// hasWaiters reports whether someone has asked to wait on the pending claim of (fn, key).
func (s *IdempotencyStore) hasWaiters(fn, key string) bool {
	k := idemKey{fn, key}
	sh := s.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.m[k]
	return ok && e.released != nil
}

func TestIdempotencyStore_AcquireOrGetLifecycle(t *testing.T) {
	s := newTestIdem(newFakeClock())
	c := s.AcquireOrGet("fn", "k")
	if c.Status != ClaimClaimed || c.Token == 0 {
		t.Fatalf("first acquire = %+v", c)
	}
	p := s.AcquireOrGet("fn", "k")
	if p.Status != ClaimPending || p.Released == nil {
		t.Fatalf("second acquire = %+v", p)
	}
	if _, ok := s.Get("fn", "k"); ok {
		t.Fatal("pending claim visible through Get")
	}
	if err := s.PublishClaim("fn", "k", c.Token, "exec-1"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Released:
	default:
		t.Fatal("publish did not wake waiters")
	}
	if e := s.AcquireOrGet("fn", "k"); e.Status != ClaimExisting || e.ExecutionID != "exec-1" {
		t.Fatalf("after publish = %+v", e)
	}
}

func TestIdempotencyStore_ClaimIfMatches(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(s *IdempotencyStore)
		expect string
		want   ClaimStatus
		wantID string
	}{
		{"absent key is missing", func(*IdempotencyStore) {}, "exec-1", ClaimMissing, ""},
		{"pending claim is pending", func(s *IdempotencyStore) { s.AcquireOrGet("fn", "k") }, "exec-1", ClaimPending, ""},
		{"other published id is existing", func(s *IdempotencyStore) { s.Put("fn", "k", "exec-2") }, "exec-1", ClaimExisting, "exec-2"},
		{"matching id is claimed", func(s *IdempotencyStore) { s.Put("fn", "k", "exec-1") }, "exec-1", ClaimClaimed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestIdem(newFakeClock())
			tt.setup(s)
			c := s.ClaimIfMatches("fn", "k", tt.expect)
			if c.Status != tt.want || c.ExecutionID != tt.wantID {
				t.Fatalf("ClaimIfMatches = %+v, want status %d id %q", c, tt.want, tt.wantID)
			}
			if tt.want == ClaimClaimed {
				if _, ok := s.Get("fn", "k"); ok {
					t.Fatal("re-claimed key still published")
				}
				if again := s.ClaimIfMatches("fn", "k", tt.expect); again.Status != ClaimPending {
					t.Fatalf("second re-claim = %+v, want pending", again)
				}
			}
		})
	}
}

func TestIdempotencyStore_PublishWithWrongTokenFails(t *testing.T) {
	s := newTestIdem(newFakeClock())
	c := s.AcquireOrGet("orders", "abc")
	err := s.PublishClaim("orders", "abc", c.Token+1, "exec-1")
	if err == nil || err.Error() != "Missing idempotency claim for orders:abc" {
		t.Fatalf("err = %v", err)
	}
	if err := s.PublishClaim("orders", "missing", c.Token, "exec-1"); err == nil {
		t.Fatal("publishing an absent key succeeded")
	}
	if err := s.PublishClaim("orders", "abc", c.Token, "exec-1"); err != nil {
		t.Fatalf("right token refused: %v", err)
	}
	if err := s.PublishClaim("orders", "abc", c.Token, "exec-1"); err == nil {
		t.Fatal("publishing a published key twice succeeded")
	}
}

func TestIdempotencyStore_AbandonOnlyRemovesOwnPendingClaim(t *testing.T) {
	s := newTestIdem(newFakeClock())
	c := s.AcquireOrGet("fn", "k")
	p := s.AcquireOrGet("fn", "k")
	if s.AbandonClaim("fn", "k", c.Token+1) {
		t.Fatal("abandon with another token succeeded")
	}
	if !s.AbandonClaim("fn", "k", c.Token) {
		t.Fatal("abandon with own token failed")
	}
	select {
	case <-p.Released:
	default:
		t.Fatal("abandon did not wake waiters")
	}
	if s.Len() != 0 {
		t.Fatalf("Len = %d after abandon", s.Len())
	}
	s.Put("fn", "k", "exec-1")
	if s.AbandonClaim("fn", "k", c.Token) {
		t.Fatal("abandon removed a published entry")
	}
	if _, ok := s.Get("fn", "k"); !ok {
		t.Fatal("published entry lost")
	}
}

func TestIdempotencyStore_SweepDropsExpiredAndWakesWaiters(t *testing.T) {
	clock := newFakeClock()
	s := newTestIdem(clock)
	s.AcquireOrGet("fn", "pending")
	p := s.AcquireOrGet("fn", "pending")
	s.Put("fn", "published", "exec-1")
	clock.Advance(time.Minute)
	s.Put("fn", "young", "exec-2")
	clock.Advance(4 * time.Minute)
	if n := s.Sweep(clock.Now()); n != 2 {
		t.Fatalf("Sweep dropped %d, want 2", n)
	}
	select {
	case <-p.Released:
	default:
		t.Fatal("sweeping an expired pending claim did not wake its waiters")
	}
	if s.hasRaw("fn", "pending") || s.hasRaw("fn", "published") || !s.hasRaw("fn", "young") {
		t.Fatal("sweep removed the wrong entries")
	}
}

func TestIdempotencyStore_RunSweepsAndStops(t *testing.T) {
	defer goleak.VerifyNone(t)
	clock := newFakeClock()
	s := NewIdempotencyStore(IdempotencyConfig{SweepInterval: time.Millisecond}, clock.Now)
	s.Put("fn", "k", "exec-1")
	clock.Advance(6 * time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for s.hasRaw("fn", "k") {
		if time.Now().After(deadline) {
			t.Fatal("Run never swept the expired entry")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
}
