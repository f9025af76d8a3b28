package invocation

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nanofaas/control-plane/internal/dispatch"
	"github.com/nanofaas/control-plane/internal/execution"
	"github.com/nanofaas/control-plane/internal/function"
)

// Shutdown: Close owns every dispatch goroutine (goleak in TestMain checks none survives).

func TestClose_WaitsForInFlightDispatchesWithinGrace(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	rt := h.newRuntime(func(w http.ResponseWriter, r *http.Request, c call) {
		time.Sleep(30 * time.Millisecond)
		echoJSON(w, r, c)
	})
	h.register("fn", function.ModePool, rt.URL())
	id, wait := startSync(t, h, "fn")
	waitFor(t, "the runtime to be called", func() bool { return rt.active.Load() == 1 })

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	h.svc.Close(ctx)

	resp := wait()
	if resp.Status != StatusSuccess || h.state(id()) != execution.StateSuccess {
		t.Errorf("response = %+v, want the in-flight dispatch to finish successfully", resp)
	}
}

func TestClose_CancelsDispatchesAfterGraceAndRunsLaterOnesInline(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	rt := h.newRuntime(h.hang)
	h.register("fn", function.ModePool, rt.URL(), retries(1))
	_, wait := startSync(t, h, "fn")
	waitFor(t, "the runtime to be called", func() bool { return rt.active.Load() == 1 })

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	h.svc.Close(ctx)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %v", d)
	}
	if n := h.svc.inflight.state.Load() &^ closedBit; n != 0 {
		t.Fatalf("%d dispatch goroutines survived Close", n)
	}
	resp := wait()
	if resp.Status != StatusError || resp.Error.Code != dispatch.CodePoolError || !strings.Contains(resp.Error.Message, "abandoned") {
		t.Errorf("response = %+v, want a POOL_ERROR for the abandoned dispatch", resp)
	}

	// After Close nothing reaches the function and no goroutine is started.
	before := rt.count()
	resp = h.mustInvoke("fn", `1`, Options{})
	if resp.Status != StatusError || rt.count() != before {
		t.Errorf("after Close: %+v, runtime calls %d → %d", resp, before, rt.count())
	}
	h.svc.Close(context.Background()) // idempotent
}

// startSync runs a sync invoke of fn in the background; id returns its execution id once the
// runtime saw it, wait returns its response.
func startSync(t *testing.T, h *harness, fn string) (id func() string, wait func() Response) {
	t.Helper()
	var (
		mu   sync.Mutex
		resp Response
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r, err := h.invoke(fn, `"x"`, timeoutAfter(10_000))
		if err != nil {
			t.Errorf("InvokeSync: %v", err)
		}
		mu.Lock()
		resp = r
		mu.Unlock()
	}()
	id = func() string {
		for _, rt := range h.runtimes {
			if calls := rt.Calls(); len(calls) > 0 {
				return calls[0].ExecutionID
			}
		}
		t.Fatal("no runtime call yet")
		return ""
	}
	wait = func() Response {
		<-done
		mu.Lock()
		defer mu.Unlock()
		return resp
	}
	return id, wait
}

func TestInflight_CloseWaitsForEveryStartedGoroutine(t *testing.T) {
	tests := []struct {
		name    string
		running int
	}{{"idle", 0}, {"one running", 1}, {"many running", 50}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newInflight()
			release := make(chan struct{})
			var wg sync.WaitGroup
			for range tc.running {
				if !g.start() {
					t.Fatal("start refused before close")
				}
				wg.Go(func() {
					<-release
					g.done()
				})
			}
			idle := g.close()
			if g.start() {
				t.Fatal("start accepted after close")
			}
			if tc.running > 0 {
				select {
				case <-idle:
					t.Fatal("idle before the running goroutines finished")
				default:
				}
			}
			close(release)
			wg.Wait()
			<-idle
			if again := g.close(); again != idle {
				t.Error("a second close must return the same channel")
			}
		})
	}
}

func TestInflight_ConcurrentStartAndCloseNeverLosesAGoroutine(t *testing.T) {
	for range 50 {
		g := newInflight()
		var started, finished sync.WaitGroup
		var mu sync.Mutex
		running := 0
		for range 8 {
			started.Go(func() {
				for range 20 {
					if !g.start() {
						return
					}
					mu.Lock()
					running++
					mu.Unlock()
					finished.Go(func() {
						mu.Lock()
						running--
						mu.Unlock()
						g.done()
					})
				}
			})
		}
		<-g.close()
		mu.Lock()
		if running != 0 {
			t.Fatalf("close reported idle with %d goroutines running", running)
		}
		mu.Unlock()
		started.Wait()
		finished.Wait()
	}
}
