package syncqueue

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nanofaas/control-plane/internal/execution"
	"github.com/nanofaas/control-plane/internal/function"
	"github.com/nanofaas/control-plane/internal/invocation"
	"github.com/nanofaas/control-plane/internal/metrics"
	"github.com/nanofaas/control-plane/internal/registry"
)

type allowAll struct{}

func (allowAll) Allow() bool { return true }

type functionTable map[string]*registry.Registered

func (t functionTable) Get(name string) (*registry.Registered, bool) {
	r, ok := t[name]
	return r, ok
}

// slowDispatcher answers after a short random delay, like a busy function pod.
type slowDispatcher struct{}

func (slowDispatcher) Dispatch(ctx context.Context, task *execution.Task) (execution.DispatchResult, error) {
	select {
	case <-time.After(time.Duration(rand.IntN(2000)) * time.Microsecond):
	case <-ctx.Done():
	}
	return execution.Warm(execution.SuccessResult(json.RawMessage(`"ok"`))), nil
}

// TestEndToEnd_DisconnectingWaitersAndReplaysLeakNoSlots drives the real invocation flow through
// the sync queue (D12): many concurrent sync invocations, most of whose clients disconnect or
// time out while queued, some of them idempotent replays, with items dispatching and timing out
// concurrently. Every slot acquired must be released exactly once.
func TestEndToEnd_DisconnectingWaitersAndReplaysLeakNoSlots(t *testing.T) {
	store := execution.NewStore(execution.StoreConfig{}, nil)
	factory := execution.NewFactory(store, execution.NewIdempotencyStore(execution.IdempotencyConfig{}, nil), nil, quietLog)
	fnMetrics, err := metrics.NewFunctionMetrics(prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	slots := newCountingSlots(2)
	timeout, retries, conc, mode := 30000, 0, 2, function.ModePool
	spec := &function.Spec{Name: "fn", TimeoutMs: &timeout, MaxRetries: &retries, Concurrency: &conc, ExecutionMode: &mode}
	inv := invocation.NewService(invocation.Deps{
		Limiter: allowAll{}, Functions: functionTable{"fn": {Spec: spec}}, Store: store, Factory: factory,
		Dispatcher: slowDispatcher{}, Metrics: fnMetrics, Enqueuer: slots, Logger: quietLog,
	})
	settings := defaultSettings()
	settings.AdmissionEnabled = false
	settings.MaxDepth = 10000
	settings.MaxQueueWait = 30 * time.Millisecond
	sq, err := New(Deps{Settings: settings, Slots: slots, Dispatch: inv.Dispatch, Store: store, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	inv.SetSyncQueue(sq)
	sq.RegisterFunction("fn")

	runCtx, stopRun := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- sq.Run(runCtx) }()

	const callers = 300
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			opt := invocation.Options{}
			switch i % 4 {
			case 0, 1: // the client disconnects after a moment
				go func() {
					time.Sleep(time.Duration(rand.IntN(10)) * time.Millisecond)
					cancel()
				}()
			case 2: // the client's own deadline is shorter than the queue wait
				ms := rand.IntN(15)
				opt.TimeoutMs = &ms
			}
			if i%3 == 0 { // pairs of idempotent replays
				opt.IdempotencyKey = fmt.Sprintf("key-%d", i/6)
			}
			_, _ = inv.InvokeSync(ctx, "fn", &execution.Request{Input: json.RawMessage(`1`)}, opt)
		}()
	}
	wg.Wait()

	eventually(t, "queue drained", func() bool {
		sq.mu.Lock()
		defer sq.mu.Unlock()
		return sq.q.len() == 0
	})
	closeCtx, cancelClose := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelClose()
	inv.Close(closeCtx) // waits for in-flight dispatches to complete
	stopRun()
	if err := <-runDone; err != nil {
		t.Fatalf("Run: %v", err)
	}

	acquired, released := slots.counts()
	if slots.totalInFlight() != 0 || acquired != released {
		t.Fatalf("in flight %d, acquired %d, released %d; want 0 and equal counts", slots.totalInFlight(), acquired, released)
	}
	if acquired == 0 {
		t.Fatal("nothing was dispatched; the test exercised no slots")
	}
	sq.mu.Lock()
	timedOut := sq.fns["fn"].timedOut
	sq.mu.Unlock()
	t.Logf("dispatched %d, queue timeouts %d", acquired, timedOut)
}
