package execution

import (
	"context"
	"hash/maphash"
	"sync"
	"time"
)

// Execution-store defaults (spec-core §6.3, §8.1).
const (
	DefaultTTL           = 5 * time.Minute
	DefaultCleanupTTL    = 2 * time.Minute
	DefaultMaxLifetime   = 30 * time.Minute
	DefaultSweepInterval = time.Minute
)

// StoreConfig holds nanofaas.execution-store.{ttl, cleanup-ttl, max-lifetime} and the janitor
// period. Zero or negative values mean the default.
type StoreConfig struct {
	TTL           time.Duration // terminal records are evicted this long after finishing
	CleanupTTL    time.Duration // terminal records drop their payloads this long after finishing
	MaxLifetime   time.Duration // non-terminal records are evicted this long after creation
	SweepInterval time.Duration // janitor period
}

func (c StoreConfig) withDefaults() StoreConfig {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.TTL, DefaultTTL)
	def(&c.CleanupTTL, DefaultCleanupTTL)
	def(&c.MaxLifetime, DefaultMaxLifetime)
	def(&c.SweepInterval, DefaultSweepInterval)
	return c
}

// storeShards spreads the hot Put/Get path over independent locks.
const storeShards = 64

type storeEntry struct {
	rec       *Record
	createdAt time.Time
}

type storeShard struct {
	mu sync.RWMutex
	m  map[string]storeEntry
	_  [32]byte // pad to 64 bytes so neighbouring shard locks don't share a cache line
}

// Store is the in-memory ExecutionStore: execution id → record, with a janitor (Sweep/Run)
// that evicts old records and drops payloads of finished ones (spec-core §6.3).
type Store struct {
	cfg    StoreConfig
	now    func() time.Time
	seed   maphash.Seed
	shards [storeShards]storeShard
}

// NewStore returns an empty store. now is the clock for creation times and Run's sweeps
// (nil = time.Now).
func NewStore(cfg StoreConfig, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	s := &Store{cfg: cfg.withDefaults(), now: now, seed: maphash.MakeSeed()}
	for i := range s.shards {
		s.shards[i].m = make(map[string]storeEntry)
	}
	return s
}

// Config returns the effective configuration (defaults applied).
func (s *Store) Config() StoreConfig { return s.cfg }

func (s *Store) shard(id string) *storeShard {
	return &s.shards[maphash.String(s.seed, id)%storeShards]
}

// Put stores rec under its id with createdAt = now, replacing any previous entry.
func (s *Store) Put(rec *Record) {
	now := s.now()
	sh := s.shard(rec.id)
	sh.mu.Lock()
	sh.m[rec.id] = storeEntry{rec: rec, createdAt: now}
	sh.mu.Unlock()
}

// Get returns the record with the given id.
func (s *Store) Get(id string) (*Record, bool) {
	sh := s.shard(id)
	sh.mu.RLock()
	e, ok := sh.m[id]
	sh.mu.RUnlock()
	return e.rec, ok
}

// Remove deletes the record with the given id, if any.
func (s *Store) Remove(id string) {
	sh := s.shard(id)
	sh.mu.Lock()
	delete(sh.m, id)
	sh.mu.Unlock()
}

// Len returns the number of stored records.
func (s *Store) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}

// SweepStats counts what one Sweep did.
type SweepStats struct {
	Evicted int
	Cleaned int
}

// Sweep applies the janitor rules as of now: a non-terminal record is evicted once it was
// created more than MaxLifetime ago (its completion is left alone); a terminal record,
// anchored on finishedAt (or createdAt if unset), is evicted after TTL, else cleaned up
// after CleanupTTL. Record locks are never taken while a shard lock is held.
func (s *Store) Sweep(now time.Time) SweepStats {
	var st SweepStats
	var batch []storeEntry
	evictLiveBefore := now.Add(-s.cfg.MaxLifetime)
	evictDoneBefore := now.Add(-s.cfg.TTL)
	cleanDoneBefore := now.Add(-s.cfg.CleanupTTL)
	for i := range s.shards {
		sh := &s.shards[i]
		batch = batch[:0]
		sh.mu.RLock()
		for _, e := range sh.m {
			batch = append(batch, e)
		}
		sh.mu.RUnlock()
		for _, e := range batch {
			terminal, finishedAt := e.rec.sweepView()
			switch {
			case !terminal:
				if e.createdAt.Before(evictLiveBefore) && s.removeIfSame(sh, e.rec) {
					st.Evicted++
				}
			default:
				anchor := finishedAt
				if anchor.IsZero() {
					anchor = e.createdAt
				}
				if anchor.Before(evictDoneBefore) {
					if s.removeIfSame(sh, e.rec) {
						st.Evicted++
					}
				} else if anchor.Before(cleanDoneBefore) {
					if e.rec.Cleanup() {
						st.Cleaned++
					}
				}
			}
		}
	}
	return st
}

// removeIfSame deletes rec's entry unless it was replaced since the sweep read it.
func (s *Store) removeIfSame(sh *storeShard, rec *Record) bool {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e, ok := sh.m[rec.id]; ok && e.rec == rec {
		delete(sh.m, rec.id)
		return true
	}
	return false
}

// Run sweeps every SweepInterval (first sweep one interval after start) until ctx ends, then
// returns nil.
func (s *Store) Run(ctx context.Context) error {
	sweepEvery(ctx, s.cfg.SweepInterval, func() { s.Sweep(s.now()) })
	return nil
}

// sweepEvery calls sweep every interval, the first time one interval after the start, until
// ctx ends.
func sweepEvery(ctx context.Context, interval time.Duration, sweep func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			sweep()
		}
	}
}
