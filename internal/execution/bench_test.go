package execution

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/nanofaas/control-plane/internal/function"
)

func BenchmarkIDGenerator_NewID(b *testing.B) {
	g := NewIDGenerator(nil)
	b.ReportAllocs()
	for b.Loop() {
		_ = g.NewID()
	}
}

func BenchmarkStore_PutGet(b *testing.B) {
	s := NewStore(StoreConfig{}, nil)
	const n = 1 << 12
	recs := make([]*Record, n)
	g := NewIDGenerator(nil)
	for i := range recs {
		recs[i] = NewRecord(Task{ExecutionID: g.NewID(), Attempt: 1}, nil, discardLogger())
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r := recs[i&(n-1)]
		s.Put(r)
		if got, ok := s.Get(r.id); !ok || got != r {
			b.Fatal("lost record")
		}
		i++
	}
}

func BenchmarkStore_PutGetParallel(b *testing.B) {
	s := NewStore(StoreConfig{}, nil)
	g := NewIDGenerator(nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		const n = 1 << 10
		recs := make([]*Record, n)
		for i := range recs {
			recs[i] = NewRecord(Task{ExecutionID: g.NewID(), Attempt: 1}, nil, discardLogger())
		}
		i := 0
		for pb.Next() {
			r := recs[i&(n-1)]
			s.Put(r)
			s.Get(r.id)
			i++
		}
	})
}

func newBenchFactory(now func() time.Time) (*Factory, *Store, *function.Spec) {
	store := NewStore(StoreConfig{}, nil)
	idem := NewIdempotencyStore(IdempotencyConfig{}, now)
	mode := function.ModeLocal
	return NewFactory(store, idem, nil, discardLogger()), store, &function.Spec{Name: "echo", ExecutionMode: &mode}
}

func BenchmarkFactory_CreateOrReuse_NoKey(b *testing.B) {
	f, store, spec := newBenchFactory(nil)
	req := &Request{Input: json.RawMessage(`"hi"`)}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		l, err := f.CreateOrReuse(ctx, "echo", spec, req, "", nil)
		if err != nil || f.AdmitIfNew(l, admitOK) != nil {
			b.Fatal(err)
		}
		store.Remove(l.Record.id) // keep the store small; the janitor's job in production
	}
}

func BenchmarkFactory_CreateOrReuse_NewKey(b *testing.B) {
	clock := newFakeClock()
	f, store, spec := newBenchFactory(clock.Now)
	req := &Request{Input: json.RawMessage(`"hi"`)}
	ctx := context.Background()
	const n = 1 << 12
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "key-" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i&(n-1) == 0 {
			clock.Advance(DefaultIdempotencyTTL) // expire the pool so every key is new again
		}
		l, err := f.CreateOrReuse(ctx, "echo", spec, req, keys[i&(n-1)], nil)
		if err != nil || !l.IsNew() || f.AdmitIfNew(l, admitOK) != nil {
			b.Fatal("expected a new admitted execution", err)
		}
		store.Remove(l.Record.id)
		i++
	}
}

func BenchmarkFactory_CreateOrReuse_Replay(b *testing.B) {
	f, store, spec := newBenchFactory(nil)
	req := &Request{Input: json.RawMessage(`"hi"`)}
	ctx := context.Background()
	first, _ := f.CreateOrReuse(ctx, "echo", spec, req, "replayed-key", nil)
	if err := f.AdmitIfNew(first, admitOK); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		l, err := f.CreateOrReuse(ctx, "echo", spec, req, "replayed-key", nil)
		if err != nil || l.IsNew() || f.AdmitIfNew(l, admitOK) != nil {
			b.Fatal("expected a replay", err)
		}
	}
	if store.Len() != 1 {
		b.Fatalf("replays changed the store: len %d", store.Len())
	}
}

func BenchmarkRecord_Snapshot(b *testing.B) {
	r := newTestRecord(newFakeClock())
	r.MarkSuccess(json.RawMessage(`1`))
	b.ReportAllocs()
	for b.Loop() {
		_ = r.Snapshot()
	}
}
