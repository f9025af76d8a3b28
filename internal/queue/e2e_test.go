package queue

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nanofaas/control-plane/fnruntime"
	"github.com/nanofaas/control-plane/internal/dispatch"
	"github.com/nanofaas/control-plane/internal/execution"
	"github.com/nanofaas/control-plane/internal/function"
	"github.com/nanofaas/control-plane/internal/invocation"
	"github.com/nanofaas/control-plane/internal/metrics"
	"github.com/nanofaas/control-plane/internal/registry"
)

type allowAll struct{}

func (allowAll) Allow() bool { return true }

// core is the real invocation stack (factory, store, POOL dispatcher, completion handler) with
// this package's Manager plugged in through Service.SetEnqueuer and its scheduler running.
type core struct {
	svc   *invocation.Service
	mgr   *Manager
	fns   *registry.Registry
	store *execution.Store
	reg   *prometheus.Registry
}

func newCore(t *testing.T) *core {
	t.Helper()
	reg := prometheus.NewRegistry()
	fm, err := metrics.NewFunctionMetrics(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	store := execution.NewStore(execution.StoreConfig{}, nil)
	idem := execution.NewIdempotencyStore(execution.IdempotencyConfig{}, nil)
	client := dispatch.NewHTTPClient(dispatch.ClientConfig{})
	fns := registry.New()
	svc := invocation.NewService(invocation.Deps{
		Limiter: allowAll{}, Functions: fns, Store: store,
		Factory:    execution.NewFactory(store, idem, nil, quietLog),
		Dispatcher: dispatch.NewRouter(dispatch.Local{}, dispatch.NewPool(client, 0)),
		Metrics:    fm, Logger: quietLog,
	})
	mgr, err := NewManager(Deps{Store: store, Dispatch: svc.Dispatch, Registerer: reg, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	svc.SetEnqueuer(mgr)
	stop := startScheduler(t, mgr)
	t.Cleanup(func() {
		stop()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		svc.Close(ctx)
		client.CloseIdleConnections()
	})
	return &core{svc: svc, mgr: mgr, fns: fns, store: store, reg: reg}
}

// register resolves a POOL function pointing at endpoint and registers it in the registry and
// the queue module, as the registry service would.
func (c *core) register(t *testing.T, name, endpoint string, concurrency, queueSize int) {
	t.Helper()
	mode := function.ModePool
	resolved, err := registry.NewResolver(registry.ReferenceDefaults()).Resolve(&function.Spec{
		Name: name, Image: "img", EndpointURL: &endpoint, ExecutionMode: &mode,
		Concurrency: &concurrency, QueueSize: &queueSize, TimeoutMs: ptr(10000),
	})
	if err != nil {
		t.Fatal(err)
	}
	c.fns.Put(&registry.Registered{Spec: resolved})
	if err := c.mgr.OnRegister(context.Background(), resolved); err != nil {
		t.Fatal(err)
	}
}

// counter returns the value of a per-function core counter (0 when absent).
func (c *core) counter(t *testing.T, name, fn string) float64 {
	t.Helper()
	mfs, err := c.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, mt := range mf.GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetName() == "function" && l.GetValue() == fn {
					return mt.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// newRuntime serves h with the project's function runtime on a loopback port until the test
// ends, and returns its invoke endpoint.
func newRuntime(t *testing.T, h fnruntime.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rt := fnruntime.New(h, fnruntime.Config{}, fnruntime.WithLogger(quietLog))
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- rt.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("runtime Serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String() + "/invoke"
}

func TestEndToEnd_ConcurrencyLimitHoldsInsideRuntimeUnderLoad(t *testing.T) {
	const (
		concurrency = 3
		asyncCalls  = 60
		syncCalls   = 20
	)
	var active, highWater atomic.Int64
	endpoint := newRuntime(t, func(context.Context, fnruntime.Request) (any, error) {
		n := active.Add(1)
		for {
			hw := highWater.Load()
			if n <= hw || highWater.CompareAndSwap(hw, n) {
				break
			}
		}
		time.Sleep(2 * time.Millisecond) // the function's work, so that calls overlap
		active.Add(-1)
		return map[string]bool{"ok": true}, nil
	})
	c := newCore(t)
	c.register(t, "fn", endpoint, concurrency, asyncCalls+syncCalls)
	ctx := context.Background()
	req := &execution.Request{Input: json.RawMessage(`{"n":1}`)}

	var wg sync.WaitGroup
	syncStatus := make(chan string, syncCalls)
	for range syncCalls {
		wg.Go(func() {
			resp, err := c.svc.InvokeSync(ctx, "fn", req, invocation.Options{})
			if err != nil {
				t.Errorf("InvokeSync: %v", err)
				return
			}
			syncStatus <- resp.Status
		})
	}
	ids := make([]string, 0, asyncCalls)
	for range asyncCalls {
		id, err := c.svc.InvokeAsync(ctx, "fn", req, invocation.Options{})
		if err != nil {
			t.Fatalf("InvokeAsync: %v", err)
		}
		ids = append(ids, id)
	}
	wg.Wait()
	close(syncStatus)
	for s := range syncStatus {
		if s != invocation.StatusSuccess {
			t.Errorf("sync invocation status %q", s)
		}
	}
	waitFor(t, "every async execution finished", func() bool {
		for _, id := range ids {
			if st, _ := c.svc.Execution(id); st.Status != "success" {
				return false
			}
		}
		return true
	})
	if hw := highWater.Load(); hw != concurrency {
		t.Fatalf("runtime saw %d concurrent calls, want exactly the limit %d", hw, concurrency)
	}
	waitFor(t, "slots released", func() bool { return c.mgr.InFlight("fn") == 0 })
	if d := c.mgr.QueueDepth("fn"); d != 0 {
		t.Fatalf("QueueDepth = %d after the load, want 0", d)
	}
	if got := c.counter(t, "function_enqueue_total", "fn"); got != asyncCalls+syncCalls {
		t.Fatalf("function_enqueue_total = %v, want %d", got, asyncCalls+syncCalls)
	}
}

func TestEndToEnd_RemovalAnswersQueuedSyncCallerWithFunctionRemoved(t *testing.T) {
	unblock := make(chan struct{})
	entered := make(chan struct{}, 1)
	endpoint := newRuntime(t, func(ctx context.Context, _ fnruntime.Request) (any, error) {
		entered <- struct{}{}
		select {
		case <-unblock:
			return "done", nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	c := newCore(t)
	c.register(t, "fn", endpoint, 1, 10)
	ctx := context.Background()
	req := &execution.Request{Input: json.RawMessage(`1`)}

	type outcome struct {
		resp invocation.Response
		err  error
	}
	first, second := make(chan outcome, 1), make(chan outcome, 1)
	go func() {
		r, err := c.svc.InvokeSync(ctx, "fn", req, invocation.Options{})
		first <- outcome{r, err}
	}()
	<-entered // the first call holds the only slot
	go func() {
		r, err := c.svc.InvokeSync(ctx, "fn", req, invocation.Options{})
		second <- outcome{r, err}
	}()
	waitFor(t, "second call queued", func() bool { return c.mgr.QueueDepth("fn") == 1 })

	c.fns.Remove("fn")
	if err := c.mgr.OnRemove(ctx, "fn"); err != nil {
		t.Fatal(err)
	}
	got := <-second
	if got.err != nil {
		t.Fatalf("queued caller got error %v", got.err)
	}
	want := execution.ErrorInfo{Code: "FUNCTION_REMOVED", Message: "Function 'fn' was removed before queued execution could run"}
	if got.resp.Status != invocation.StatusError || got.resp.Error == nil || *got.resp.Error != want {
		t.Fatalf("queued caller got %+v, want status error with %+v", got.resp, want)
	}
	if st, _ := c.svc.Execution(got.resp.ExecutionID); st.Status != "error" {
		t.Fatalf("removed execution status %q, want error", st.Status)
	}

	close(unblock) // the in-flight call was left alone and finishes normally
	if r := <-first; r.err != nil || r.resp.Status != invocation.StatusSuccess {
		t.Fatalf("in-flight caller got %+v, %v", r.resp, r.err)
	}
	if e := c.counter(t, "function_error_total", "fn"); e != 0 {
		t.Fatalf("function_error_total = %v, want 0 (removal records no outcome metrics)", e)
	}
	if _, err := c.svc.InvokeAsync(ctx, "fn", req, invocation.Options{}); !errors.Is(err, invocation.ErrFunctionNotFound) {
		t.Fatalf("invoke after removal = %v", err)
	}
}

func TestEndToEnd_FailedAttemptIsRetriedThroughTheQueue(t *testing.T) {
	var calls atomic.Int64
	endpoint := newRuntime(t, func(_ context.Context, req fnruntime.Request) (any, error) {
		if calls.Add(1) == 1 {
			return nil, errors.New("boom") // fnruntime answers 500 {"error":"boom"}
		}
		return map[string]int{"attempt": req.Attempt}, nil
	})
	c := newCore(t)
	c.register(t, "fn", endpoint, 1, 10)
	resp, err := c.svc.InvokeSync(context.Background(), "fn", &execution.Request{Input: json.RawMessage(`1`)}, invocation.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != invocation.StatusSuccess || string(resp.Output) != `{"attempt":2}` {
		t.Fatalf("response %+v (output %s), want success from attempt 2", resp, resp.Output)
	}
	if got := c.counter(t, "function_retry_total", "fn"); got != 1 {
		t.Fatalf("function_retry_total = %v, want 1", got)
	}
	if got := c.counter(t, "function_enqueue_total", "fn"); got != 2 {
		t.Fatalf("function_enqueue_total = %v, want 2 (first attempt and retry)", got)
	}
	waitFor(t, "slot released", func() bool { return c.mgr.InFlight("fn") == 0 })
}
