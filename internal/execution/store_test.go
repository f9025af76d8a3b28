package execution

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestStoreConfig_NonPositiveValuesFallBackToDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   StoreConfig
		want StoreConfig
	}{
		{"zero", StoreConfig{}, StoreConfig{5 * time.Minute, 2 * time.Minute, 30 * time.Minute, time.Minute}},
		{"negative", StoreConfig{-1, -1, -1, -1}, StoreConfig{5 * time.Minute, 2 * time.Minute, 30 * time.Minute, time.Minute}},
		{"explicit", StoreConfig{time.Second, 2 * time.Second, 3 * time.Second, 4 * time.Second},
			StoreConfig{time.Second, 2 * time.Second, 3 * time.Second, 4 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NewStore(tt.in, nil).Config(); got != tt.want {
				t.Fatalf("Config() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestStore_PutGetRemoveLen(t *testing.T) {
	clock := newFakeClock()
	s := NewStore(StoreConfig{}, clock.Now)
	a := newTestRecord(clock)
	b := NewRecord(Task{ExecutionID: "exec-2", Attempt: 1}, clock.Now, discardLogger())
	s.Put(a)
	s.Put(b)
	if got, ok := s.Get("exec-1"); !ok || got != a {
		t.Fatalf("Get(exec-1) = %v, %v", got, ok)
	}
	if s.Len() != 2 {
		t.Fatalf("Len() = %d, want 2", s.Len())
	}
	s.Remove("exec-1")
	if _, ok := s.Get("exec-1"); ok {
		t.Fatal("record still present after Remove")
	}
	if _, ok := s.Get("missing"); ok {
		t.Fatal("unknown id found")
	}
	s.Remove("missing") // no-op
	if s.Len() != 1 {
		t.Fatalf("Len() = %d, want 1", s.Len())
	}
}

func TestStore_PutOverwritesSameID(t *testing.T) {
	clock := newFakeClock()
	s := NewStore(StoreConfig{}, clock.Now)
	s.Put(newTestRecord(clock))
	second := newTestRecord(clock)
	s.Put(second)
	if got, _ := s.Get("exec-1"); got != second || s.Len() != 1 {
		t.Fatalf("Put did not overwrite: got %p want %p len %d", got, second, s.Len())
	}
}

func TestStore_SweepAppliesRetentionRules(t *testing.T) {
	cfg := StoreConfig{TTL: 5 * time.Minute, CleanupTTL: 2 * time.Minute, MaxLifetime: 30 * time.Minute}
	tests := []struct {
		name        string
		age         time.Duration // created this long before the sweep
		finishedAgo time.Duration // finished this long before the sweep (0 = never finishes)
		wantKept    bool
		wantCleaned bool
	}{
		{"running record younger than max lifetime is kept", 29 * time.Minute, 0, true, false},
		{"running record older than max lifetime is evicted", 31 * time.Minute, 0, false, false},
		{"terminal record finished just now is untouched", time.Minute, time.Second, true, false},
		{"terminal record between cleanup ttl and ttl is cleaned", 4 * time.Minute, 3 * time.Minute, true, true},
		{"terminal record past ttl is evicted", 10 * time.Minute, 6 * time.Minute, false, false},
		// recentlyFinishedLongRunningRecordIsRetained: anchored on finishedAt, not createdAt.
		{"recently finished long-running record is retained", 40 * time.Minute, time.Minute, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			s := NewStore(cfg, clock.Now)
			r := newTestRecord(clock)
			s.Put(r)
			r.MarkRunning()
			if tt.finishedAgo > 0 {
				clock.Advance(tt.age - tt.finishedAgo)
				r.MarkSuccess(json.RawMessage(`"payload"`))
				clock.Advance(tt.finishedAgo)
			} else {
				clock.Advance(tt.age)
			}
			s.Sweep(clock.Now())
			_, kept := s.Get("exec-1")
			if kept != tt.wantKept {
				t.Fatalf("kept = %v, want %v", kept, tt.wantKept)
			}
			snap := r.Snapshot()
			if snap.Cleaned != tt.wantCleaned {
				t.Fatalf("cleaned = %v, want %v", snap.Cleaned, tt.wantCleaned)
			}
			if tt.wantCleaned && (snap.Output != nil || r.Task().Request != nil) {
				t.Fatalf("cleanup kept output %s / request %v", snap.Output, r.Task().Request)
			}
			if kept && !tt.wantCleaned && tt.finishedAgo > 0 && string(snap.Output) != `"payload"` {
				t.Fatalf("untouched record lost its output")
			}
		})
	}
}

func TestStore_EvictingNonTerminalRecordLeavesCompletionOpen(t *testing.T) {
	clock := newFakeClock()
	s := NewStore(StoreConfig{}, clock.Now)
	r := newTestRecord(clock)
	s.Put(r)
	clock.Advance(31 * time.Minute)
	if st := s.Sweep(clock.Now()); st.Evicted != 1 {
		t.Fatalf("Sweep = %+v, want 1 eviction", st)
	}
	select {
	case <-r.Done():
		t.Fatal("eviction completed the execution")
	default:
	}
}

func TestStore_SweepCleanupIsIdempotent(t *testing.T) {
	clock := newFakeClock()
	s := NewStore(StoreConfig{}, clock.Now)
	r := newTestRecord(clock)
	s.Put(r)
	r.MarkSuccess(json.RawMessage(`1`))
	clock.Advance(3 * time.Minute)
	if st := s.Sweep(clock.Now()); st != (SweepStats{Cleaned: 1}) {
		t.Fatalf("first sweep = %+v", st)
	}
	clock.Advance(time.Minute)
	if st := s.Sweep(clock.Now()); st != (SweepStats{}) {
		t.Fatalf("second sweep = %+v, want nothing", st)
	}
	if snap := r.Snapshot(); snap.State != StateSuccess || snap.Output != nil || s.Len() != 1 {
		t.Fatalf("after repeated cleanup: %+v len %d", snap, s.Len())
	}
}

func TestStore_RunSweepsPeriodicallyAndStopsWithContext(t *testing.T) {
	defer goleak.VerifyNone(t)
	clock := newFakeClock()
	s := NewStore(StoreConfig{SweepInterval: time.Millisecond}, clock.Now)
	s.Put(newTestRecord(clock))
	clock.Advance(31 * time.Minute)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	deadline := time.Now().Add(5 * time.Second)
	for s.Len() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("janitor never evicted the expired record")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run returned %v, want nil", err)
	}
}
