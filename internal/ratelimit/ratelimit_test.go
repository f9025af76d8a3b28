package ratelimit

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is an atomically readable clock, safe for concurrent use.
type fakeClock struct{ nanos atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.nanos.Store(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.nanos.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.nanos.Add(int64(d)) }

// allowN calls Allow n times and renders the outcomes as + (allowed) and - (rejected).
func allowN(l *Limiter, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = '-'
		if l.Allow() {
			b[i] = '+'
		}
	}
	return string(b)
}

func TestLimiter_AllowsLimitThenRejects(t *testing.T) {
	for _, limit := range []int{1, 3, 100} {
		l := New(limit, newFakeClock().Now)
		for i := 0; i < limit; i++ {
			if !l.Allow() {
				t.Fatalf("limit %d: call %d rejected", limit, i+1)
			}
		}
		if l.Allow() {
			t.Fatalf("limit %d: call %d allowed", limit, limit+1)
		}
	}
}

func TestLimiter_NonPositiveLimitRejectsEverything(t *testing.T) {
	for _, limit := range []int{0, -5} {
		l := New(limit, newFakeClock().Now)
		for range 10 {
			if l.Allow() {
				t.Fatalf("limit %d allowed a call", limit)
			}
		}
	}
}

func TestLimiter_WindowIsTheEpochSecond(t *testing.T) {
	clock := newFakeClock()
	clock.Advance(900 * time.Millisecond) // 12:00:00.900
	l := New(2, clock.Now)
	if got := allowN(l, 3); got != "++-" {
		t.Fatalf("first window: %s, want ++-", got)
	}
	clock.Advance(50 * time.Millisecond) // same second
	if l.Allow() {
		t.Fatal("allowed again within the same epoch second")
	}
	clock.Advance(100 * time.Millisecond) // 12:00:01.050: a new second, though <1 s since the first call
	if got := allowN(l, 3); got != "++-" {
		t.Fatalf("new epoch second: %s, want ++- (counter reset)", got)
	}
	clock.Advance(5 * time.Second)
	if !l.Allow() {
		t.Fatal("rejected after several idle seconds")
	}
}

func TestLimiter_RejectedCallsStillCount(t *testing.T) {
	l := New(2, newFakeClock().Now)
	l.Allow()
	l.Allow()
	l.Allow() // rejected, counted: count = 3
	l.SetMaxPerSecond(3)
	if l.Allow() { // count = 4 > 3
		t.Fatal("rejected call was not counted")
	}
	l.SetMaxPerSecond(5)
	if !l.Allow() { // count = 5
		t.Fatal("raised limit not applied within the window")
	}
}

func TestLimiter_SetMaxPerSecondAppliesLive(t *testing.T) {
	clock := newFakeClock()
	l := New(0, clock.Now)
	if l.Allow() {
		t.Fatal("limit 0 allowed a call")
	}
	l.SetMaxPerSecond(10)
	if l.MaxPerSecond() != 10 {
		t.Fatalf("MaxPerSecond = %d", l.MaxPerSecond())
	}
	if !l.Allow() {
		t.Fatal("raised limit not applied")
	}
	l.SetMaxPerSecond(0)
	if l.Allow() {
		t.Fatal("lowered limit not applied")
	}
}

func TestLimiter_ConcurrentCallersNeverExceedLimitPerWindow(t *testing.T) {
	const limit, goroutines, perGoroutine = 100, 50, 20
	clock := newFakeClock()
	l := New(limit, clock.Now)
	for window := range 3 {
		var allowed atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for range perGoroutine {
					if l.Allow() {
						allowed.Add(1)
					}
				}
			}()
		}
		close(start)
		wg.Wait()
		if got := allowed.Load(); got != limit {
			t.Fatalf("window %d: %d calls allowed, want exactly %d", window, got, limit)
		}
		clock.Advance(time.Second)
	}
}

func TestLimiter_ConcurrentCallersAcrossWindowBoundaries(t *testing.T) {
	const limit, goroutines, windows = 50, 50, 20
	clock := newFakeClock()
	end := clock.Now().Unix() + windows
	l := New(limit, clock.Now)
	var mu sync.Mutex
	perSecond := map[int64]int{}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := map[int64]int{}
			for i := 1; ; i++ {
				before := clock.Now().Unix()
				if before >= end {
					break
				}
				ok := l.Allow()
				// The clock only moves forward, so if it reads the same second before and after,
				// the call was counted in that second's window.
				if ok && clock.Now().Unix() == before {
					local[before]++
				}
				if g == 0 && i%100 == 0 {
					clock.Advance(time.Second) // one caller drives the clock, no sleeping
				}
			}
			mu.Lock()
			defer mu.Unlock()
			for s, n := range local {
				perSecond[s] += n
			}
		}()
	}
	wg.Wait()
	if len(perSecond) == 0 {
		t.Fatal("no call was attributed to a window")
	}
	for s, n := range perSecond {
		if n > limit {
			t.Fatalf("second %d: %d calls allowed, limit %d", s, n, limit)
		}
	}
}

func BenchmarkLimiter_Allow(b *testing.B) {
	l := New(DefaultMaxPerSecond, nil)
	b.ReportAllocs()
	for b.Loop() {
		l.Allow()
	}
}

func BenchmarkLimiter_AllowParallel(b *testing.B) {
	l := New(DefaultMaxPerSecond, nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.Allow()
		}
	})
}
