package execution

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// Idempotency defaults (spec-core §6.4, DECISIONS D5).
const (
	DefaultIdempotencyTTL           = 5 * time.Minute
	DefaultIdempotencySweepInterval = time.Minute
)

// IdempotencyConfig configures an IdempotencyStore. Zero or negative values mean the default.
type IdempotencyConfig struct {
	TTL           time.Duration // entries expire this long after their last write
	SweepInterval time.Duration // period of Run's sweeps
}

// ClaimToken identifies one pending claim. The zero token is never issued.
type ClaimToken uint64

// ClaimStatus is the outcome of AcquireOrGet and ClaimIfMatches.
type ClaimStatus uint8

// Claim outcomes.
const (
	ClaimMissing  ClaimStatus = iota // ClaimIfMatches found no entry
	ClaimClaimed                     // the caller now owns a pending claim (Claim.Token)
	ClaimPending                     // someone else's claim is pending (wait on Claim.Released)
	ClaimExisting                    // the key is published (Claim.ExecutionID)
)

// Claim is the result of AcquireOrGet and ClaimIfMatches.
type Claim struct {
	Status      ClaimStatus
	Token       ClaimToken // ClaimClaimed
	ExecutionID string     // ClaimExisting
	// Released (ClaimPending) is closed when that pending claim is published, abandoned,
	// overwritten, or dropped after expiring (by a later operation on the key, Len or Sweep).
	Released <-chan struct{}
}

// MissingClaimError is returned by PublishClaim when the pending claim is gone or belongs to
// someone else (for example because it expired).
type MissingClaimError struct {
	Function, Key string
}

func (e *MissingClaimError) Error() string {
	return "Missing idempotency claim for " + e.Function + ":" + e.Key
}

// idemKey scopes a key by function as a pair, so ("a","b:c") and ("a:b","c") differ (D5).
type idemKey struct {
	fn, key string
}

type idemEntry struct {
	executionID string        // published entries
	token       ClaimToken    // pending entries (non-zero)
	released    chan struct{} // pending entries, created on the first waiter
	writtenAt   time.Time
}

const idemShards = 32

type idemShard struct {
	mu sync.Mutex
	m  map[idemKey]idemEntry
	_  [48]byte // pad to 64 bytes so neighbouring shard locks don't share a cache line
}

// IdempotencyStore maps (function, Idempotency-Key) to a published execution id or a pending
// claim, with expire-after-write TTL. Every operation is atomic for its key (one lock per
// shard), which makes the store linearizable per key.
type IdempotencyStore struct {
	ttl       time.Duration
	interval  time.Duration
	now       func() time.Time
	seed      maphash.Seed
	nextToken atomic.Uint64
	shards    [idemShards]idemShard
}

// NewIdempotencyStore returns an empty store using clock now (nil = time.Now).
func NewIdempotencyStore(cfg IdempotencyConfig, now func() time.Time) *IdempotencyStore {
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultIdempotencyTTL
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = DefaultIdempotencySweepInterval
	}
	if now == nil {
		now = time.Now
	}
	s := &IdempotencyStore{ttl: cfg.TTL, interval: cfg.SweepInterval, now: now, seed: maphash.MakeSeed()}
	for i := range s.shards {
		s.shards[i].m = make(map[idemKey]idemEntry)
	}
	return s
}

func (s *IdempotencyStore) shard(k idemKey) *idemShard {
	h := maphash.String(s.seed, k.fn) ^ maphash.String(s.seed, k.key)*0x9e3779b97f4a7c15
	return &s.shards[h%idemShards]
}

func (s *IdempotencyStore) expired(e idemEntry, now time.Time) bool {
	return now.Sub(e.writtenAt) >= s.ttl
}

// lookup returns the live entry for k, dropping an expired one. Caller holds sh.mu.
func (s *IdempotencyStore) lookup(sh *idemShard, k idemKey, now time.Time) (idemEntry, bool) {
	e, ok := sh.m[k]
	if !ok {
		return idemEntry{}, false
	}
	if s.expired(e, now) {
		dropEntry(sh, k, e)
		return idemEntry{}, false
	}
	return e, true
}

// dropEntry deletes k and wakes any waiters of its pending claim. Caller holds sh.mu.
func dropEntry(sh *idemShard, k idemKey, e idemEntry) {
	delete(sh.m, k)
	if e.released != nil {
		close(e.released)
	}
}

// pending returns a Pending claim for e, creating its wait channel if needed. Caller holds sh.mu.
func pending(sh *idemShard, k idemKey, e idemEntry) Claim {
	if e.released == nil {
		e.released = make(chan struct{})
		sh.m[k] = e
	}
	return Claim{Status: ClaimPending, Released: e.released}
}

// claim stores a fresh pending claim for k. Caller holds sh.mu.
func (s *IdempotencyStore) claim(sh *idemShard, k idemKey, now time.Time) Claim {
	t := ClaimToken(s.nextToken.Add(1))
	sh.m[k] = idemEntry{token: t, writtenAt: now}
	return Claim{Status: ClaimClaimed, Token: t}
}

// publish replaces old, the entry of k (zero if none), with the published executionID and wakes
// the waiters of old's pending claim. Caller holds sh.mu.
func publish(sh *idemShard, k idemKey, old idemEntry, executionID string, now time.Time) {
	if old.released != nil {
		close(old.released)
	}
	sh.m[k] = idemEntry{executionID: executionID, writtenAt: now}
}

// lockKey returns the shard of (fn, key), locked, with the key and the current time. The
// caller unlocks sh.mu.
func (s *IdempotencyStore) lockKey(fn, key string) (sh *idemShard, k idemKey, now time.Time) {
	k = idemKey{fn, key}
	sh = s.shard(k)
	now = s.now()
	sh.mu.Lock()
	return sh, k, now
}

// Get returns the published execution id for (fn, key); pending claims are not visible.
func (s *IdempotencyStore) Get(fn, key string) (string, bool) {
	sh, k, now := s.lockKey(fn, key)
	defer sh.mu.Unlock()
	e, ok := s.lookup(sh, k, now)
	if !ok || e.token != 0 {
		return "", false
	}
	return e.executionID, true
}

// Put publishes executionID for (fn, key) directly, overwriting any entry.
func (s *IdempotencyStore) Put(fn, key, executionID string) {
	sh, k, now := s.lockKey(fn, key)
	defer sh.mu.Unlock()
	publish(sh, k, sh.m[k], executionID, now)
}

// AcquireOrGet claims (fn, key) with a fresh token if it is free, or reports the pending claim
// or published execution id holding it.
func (s *IdempotencyStore) AcquireOrGet(fn, key string) Claim {
	sh, k, now := s.lockKey(fn, key)
	defer sh.mu.Unlock()
	e, ok := s.lookup(sh, k, now)
	switch {
	case !ok:
		return s.claim(sh, k, now)
	case e.token != 0:
		return pending(sh, k, e)
	default:
		return Claim{Status: ClaimExisting, ExecutionID: e.executionID}
	}
}

// ClaimIfMatches replaces a published expectedID with a fresh pending claim (used when that
// execution was evicted). Otherwise it reports the pending claim, the other published id, or
// ClaimMissing.
func (s *IdempotencyStore) ClaimIfMatches(fn, key, expectedID string) Claim {
	sh, k, now := s.lockKey(fn, key)
	defer sh.mu.Unlock()
	e, ok := s.lookup(sh, k, now)
	switch {
	case !ok:
		return Claim{Status: ClaimMissing}
	case e.token != 0:
		return pending(sh, k, e)
	case e.executionID != expectedID:
		return Claim{Status: ClaimExisting, ExecutionID: e.executionID}
	default:
		return s.claim(sh, k, now)
	}
}

// PublishClaim turns the pending claim token into the published executionID and wakes its
// waiters. It fails with *MissingClaimError if that pending claim no longer exists.
func (s *IdempotencyStore) PublishClaim(fn, key string, token ClaimToken, executionID string) error {
	sh, k, now := s.lockKey(fn, key)
	defer sh.mu.Unlock()
	e, ok := s.lookup(sh, k, now)
	if !ok || e.token != token {
		return &MissingClaimError{Function: fn, Key: key}
	}
	publish(sh, k, e, executionID, now)
	return nil
}

// AbandonClaim removes (fn, key) only if it is still the pending claim token, waking its
// waiters. It reports whether it removed it.
func (s *IdempotencyStore) AbandonClaim(fn, key string, token ClaimToken) bool {
	k := idemKey{fn, key}
	sh := s.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.m[k]
	if !ok || e.token != token {
		return false
	}
	dropEntry(sh, k, e)
	return true
}

// Len returns the number of live entries, dropping expired ones on the way.
func (s *IdempotencyStore) Len() int {
	_, live := s.sweep(s.now())
	return live
}

// Sweep drops every entry expired as of now, waking waiters of expired pending claims, and
// returns how many it dropped.
func (s *IdempotencyStore) Sweep(now time.Time) int {
	dropped, _ := s.sweep(now)
	return dropped
}

// sweep drops every entry expired as of now (waking waiters of expired pending claims) and
// counts the dropped and the remaining ones.
func (s *IdempotencyStore) sweep(now time.Time) (dropped, live int) {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for k, e := range sh.m {
			if s.expired(e, now) {
				dropEntry(sh, k, e)
				dropped++
			} else {
				live++
			}
		}
		sh.mu.Unlock()
	}
	return dropped, live
}

// Run sweeps every SweepInterval until ctx ends, then returns nil. Without it, keys that are
// never used again are only reclaimed by Len.
func (s *IdempotencyStore) Run(ctx context.Context) error {
	sweepEvery(ctx, s.interval, func() { s.Sweep(s.now()) })
	return nil
}
