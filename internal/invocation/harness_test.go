package invocation

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/goleak"

	"github.com/nanofaas/control-plane/internal/dispatch"
	"github.com/nanofaas/control-plane/internal/execution"
	"github.com/nanofaas/control-plane/internal/function"
	"github.com/nanofaas/control-plane/internal/metrics"
	"github.com/nanofaas/control-plane/internal/ratelimit"
	"github.com/nanofaas/control-plane/internal/registry"
)

// Dispatch goroutines, the test enqueuer's loop, runtimes and pooled HTTP connections must all
// be gone once the tests (and benchmarks) end.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// quiet drops the records' warnings about ignored transitions, which several tests provoke.
var quiet = slog.New(slog.DiscardHandler)

// options of a harness.
type harnessOpts struct {
	enqueuer     *testEnqueuer       // nil = the core no-op enqueuer
	syncQueue    *testSyncQueue      // nil = the core no-op gateway
	local        dispatch.Dispatcher // nil = dispatch.Local{}
	maxPerSecond int                 // 0 = ratelimit.DefaultMaxPerSecond
	limiterClock func() time.Time    // nil = time.Now
}

// harness is a Service over real collaborators: execution store, factory and idempotency store,
// rate limiter, registry, router with dispatch.Local and dispatch.Pool over the shared HTTP
// client, and function metrics on a fresh Prometheus registry.
type harness struct {
	t         testing.TB
	prom      *prometheus.Registry
	metrics   *metrics.FunctionMetrics
	store     *execution.Store
	idem      *execution.IdempotencyStore
	factory   *execution.Factory
	limiter   *ratelimit.Limiter
	functions *registry.Registry
	client    *http.Client
	svc       *Service
	enq       *testEnqueuer
	sq        *testSyncQueue

	stop     chan struct{} // closed at cleanup: releases runtimes that block
	runtimes []*runtime
}

func newHarness(t testing.TB, o harnessOpts) *harness {
	t.Helper()
	h := &harness{t: t, prom: prometheus.NewRegistry(), stop: make(chan struct{}), enq: o.enqueuer, sq: o.syncQueue}
	fm, err := metrics.NewFunctionMetrics(h.prom, nil)
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	h.metrics = fm
	h.store = execution.NewStore(execution.StoreConfig{}, nil)
	h.idem = execution.NewIdempotencyStore(execution.IdempotencyConfig{}, nil)
	h.factory = execution.NewFactory(h.store, h.idem, nil, quiet)
	limit := o.maxPerSecond
	if limit == 0 {
		limit = ratelimit.DefaultMaxPerSecond
	}
	h.limiter = ratelimit.New(limit, o.limiterClock)
	h.functions = registry.New()
	h.client = dispatch.NewHTTPClient(dispatch.ClientConfig{})
	local := o.local
	if local == nil {
		local = dispatch.Local{}
	}
	d := Deps{
		Limiter: h.limiter, Functions: h.functions, Store: h.store, Factory: h.factory,
		Dispatcher: dispatch.NewRouter(local, dispatch.NewPool(h.client, 0)),
		Metrics:    h.metrics,
		Logger:     quiet,
	}
	if o.enqueuer != nil {
		d.Enqueuer = o.enqueuer
	}
	if o.syncQueue != nil {
		d.SyncQueue = o.syncQueue
	}
	h.svc = NewService(d)
	if o.enqueuer != nil {
		o.enqueuer.start(h.svc)
	}
	if o.syncQueue != nil {
		o.syncQueue.start(h.svc)
	}
	t.Cleanup(h.close)
	return h
}

// close releases blocked runtimes, stops the module loops and the Service, then the runtimes.
func (h *harness) close() {
	close(h.stop)
	if h.enq != nil {
		h.enq.close()
	}
	if h.sq != nil {
		h.sq.close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h.svc.Close(ctx)
	for _, rt := range h.runtimes {
		rt.srv.Close()
	}
	h.client.CloseIdleConnections()
}

// waitIdle waits until no dispatch goroutine of the Service is running.
func (h *harness) waitIdle() {
	h.t.Helper()
	waitFor(h.t, "dispatch goroutines to finish", func() bool { return h.svc.inflight.state.Load() == 0 })
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// specOpt adjusts a function spec before it is resolved.
type specOpt func(*function.Spec)

func retries(n int) specOpt   { return func(s *function.Spec) { s.MaxRetries = &n } }
func timeoutMs(n int) specOpt { return func(s *function.Spec) { s.TimeoutMs = &n } }

// register resolves (reference defaults: 30 s, maxRetries 3) and registers a function, as the
// registry service and the core metrics listener would.
func (h *harness) register(name string, mode function.ExecutionMode, endpoint string, opts ...specOpt) *function.Spec {
	h.t.Helper()
	spec := &function.Spec{Name: name, Image: "img:1", ExecutionMode: &mode}
	if endpoint != "" {
		spec.EndpointURL = &endpoint
	}
	for _, o := range opts {
		o(spec)
	}
	resolved, err := registry.NewResolver(registry.ReferenceDefaults()).Resolve(spec)
	if err != nil {
		h.t.Fatalf("resolve %s: %v", name, err)
	}
	h.functions.Put(&registry.Registered{Spec: resolved, Meta: registry.DeploymentMetadata{
		RequestedMode: mode, EffectiveMode: mode, EffectiveEndpointURL: endpoint,
	}})
	h.metrics.RegisterFunction(name)
	return resolved
}

func request(input string) *execution.Request {
	return &execution.Request{Input: json.RawMessage(input)}
}

// invoke is InvokeSync with a background context.
func (h *harness) invoke(fn, input string, opt Options) (Response, error) {
	return h.svc.InvokeSync(context.Background(), fn, request(input), opt)
}

// mustInvoke is invoke that fails the test on a rejection.
func (h *harness) mustInvoke(fn, input string, opt Options) Response {
	h.t.Helper()
	resp, err := h.invoke(fn, input, opt)
	if err != nil {
		h.t.Fatalf("InvokeSync(%s): %v", fn, err)
	}
	return resp
}

// newExecution creates and admits (with a no-op admission) an execution of fn, as the flows do
// before dispatching it.
func (h *harness) newExecution(fn string, key string) *execution.Record {
	h.t.Helper()
	reg, ok := h.functions.Get(fn)
	if !ok {
		h.t.Fatalf("function %s not registered", fn)
	}
	l, err := h.factory.CreateOrReuse(context.Background(), fn, reg.Spec, request(`"in"`), key, nil)
	if err != nil {
		h.t.Fatalf("CreateOrReuse: %v", err)
	}
	if err := h.factory.AdmitIfNew(l, func() error { return nil }); err != nil {
		h.t.Fatalf("AdmitIfNew: %v", err)
	}
	return l.Record
}

func (h *harness) record(id string) *execution.Record {
	h.t.Helper()
	rec, ok := h.store.Get(id)
	if !ok {
		h.t.Fatalf("execution %s not in the store", id)
	}
	return rec
}

func (h *harness) state(id string) execution.State { return h.record(id).State() }

func timeoutAfter(ms int) Options { return Options{TimeoutMs: &ms} }

func ptrTo[T any](v T) *T { return &v }

// ---- scraping ----

// scrape renders the registry as /actuator/prometheus would and returns every sample line
// `name{labels} value` as key → value.
func (h *harness) scrape() map[string]float64 {
	h.t.Helper()
	rr := httptest.NewRecorder()
	promhttp.HandlerFor(h.prom, promhttp.HandlerOpts{}).ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/actuator/prometheus", nil))
	out := map[string]float64{}
	for _, line := range strings.Split(rr.Body.String(), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			h.t.Fatalf("scrape line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// metric returns the scraped value of name{function="fn"} (-1 when absent).
func (h *harness) metric(name, fn string) float64 {
	h.t.Helper()
	v, ok := h.scrape()[name+`{function="`+fn+`"}`]
	if !ok {
		return -1
	}
	return v
}

// expectMetrics checks several scraped values of fn at once.
func (h *harness) expectMetrics(fn string, want map[string]float64) {
	h.t.Helper()
	got := h.scrape()
	for name, w := range want {
		v, ok := got[name+`{function="`+fn+`"}`]
		if !ok {
			v = -1
		}
		if v != w {
			h.t.Errorf("%s{function=%q} = %v, want %v", name, fn, v, w)
		}
	}
}

// ---- function runtimes ----

// call is what a runtime received.
type call struct {
	ExecutionID    string
	Attempt        string
	TraceID        *string
	IdempotencyKey *string
	ContentType    string
	Body           string
}

// runtime is an httptest function runtime following runtime-contract §1.2–§1.3.
type runtime struct {
	srv    *httptest.Server
	mu     sync.Mutex
	calls  []call
	active atomic.Int32
}

// URL is the endpointUrl to register.
func (rt *runtime) URL() string { return rt.srv.URL + "/invoke" }

func (rt *runtime) Calls() []call {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return append([]call(nil), rt.calls...)
}

func (rt *runtime) count() int {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return len(rt.calls)
}

func optHeader(r *http.Request, k string) *string {
	if v, ok := r.Header[k]; ok {
		return &v[0]
	}
	return nil
}

// newHeldRuntime starts a runtime that echoes each invocation only once release is closed (or
// never, while it stays open).
func (h *harness) newHeldRuntime() (rt *runtime, release chan struct{}) {
	release = make(chan struct{})
	rt = h.newRuntime(func(w http.ResponseWriter, r *http.Request, c call) {
		<-release
		echoJSON(w, r, c)
	})
	return rt, release
}

// newRuntime starts a runtime whose /invoke answers with handle; the call is recorded first.
func (h *harness) newRuntime(handle func(w http.ResponseWriter, r *http.Request, c call)) *runtime {
	rt := &runtime{}
	rt.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/invoke" {
			http.NotFound(w, r)
			return
		}
		rt.active.Add(1)
		defer rt.active.Add(-1)
		body, _ := io.ReadAll(r.Body)
		c := call{
			ExecutionID:    r.Header.Get("X-Execution-Id"),
			Attempt:        r.Header.Get("X-Dispatch-Attempt"),
			TraceID:        optHeader(r, "X-Trace-Id"),
			IdempotencyKey: optHeader(r, "Idempotency-Key"),
			ContentType:    r.Header.Get("Content-Type"),
			Body:           string(body),
		}
		rt.mu.Lock()
		rt.calls = append(rt.calls, c)
		rt.mu.Unlock()
		handle(w, r, c)
	}))
	h.runtimes = append(h.runtimes, rt)
	return rt
}

// reply writes a response; contentType "" suppresses net/http's content sniffing so the
// response really has no Content-Type.
func reply(w http.ResponseWriter, status int, contentType, body string, headers ...string) {
	if contentType == "" {
		w.Header()["Content-Type"] = nil
	} else {
		w.Header().Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		w.Header().Set(headers[i], headers[i+1])
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// echoJSON answers like the SDK runtimes: 200 application/json with the request's input.
func echoJSON(w http.ResponseWriter, _ *http.Request, c call) {
	var req struct {
		Input json.RawMessage `json:"input"`
	}
	_ = json.Unmarshal([]byte(c.Body), &req)
	reply(w, http.StatusOK, "application/json", string(req.Input))
}

// hang blocks until the control plane gives up on the request or the harness closes.
func (h *harness) hang(_ http.ResponseWriter, r *http.Request, _ call) {
	select {
	case <-r.Context().Done():
	case <-h.stop:
	}
}

// ---- module seams ----

// testEnqueuer is an async-queue stand-in: it records enqueues and releases, can refuse
// enqueues, and (when auto) dispatches accepted tasks via Service.Dispatch from its own
// goroutine, as the module's scheduler does.
type testEnqueuer struct {
	auto   bool
	refuse func(task *execution.Task) bool // nil = accept everything

	mu       sync.Mutex
	enqueued []execution.Task
	releases map[string]int

	queue chan *execution.Task
	quit  chan struct{}
	wg    sync.WaitGroup
}

func newTestEnqueuer(auto bool) *testEnqueuer {
	return &testEnqueuer{auto: auto, releases: map[string]int{}, queue: make(chan *execution.Task, 1024), quit: make(chan struct{})}
}

func (e *testEnqueuer) start(svc *Service) {
	if !e.auto {
		return
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			select {
			case <-e.quit:
				return
			case task := <-e.queue:
				svc.Dispatch(task)
			}
		}
	}()
}

func (e *testEnqueuer) close() {
	close(e.quit)
	e.wg.Wait()
}

func (e *testEnqueuer) Enabled() bool { return true }

// Enqueue never blocks: it is called with the record's lock held on the retry path.
func (e *testEnqueuer) Enqueue(task *execution.Task) bool {
	if e.refuse != nil && e.refuse(task) {
		return false
	}
	e.mu.Lock()
	e.enqueued = append(e.enqueued, *task)
	e.mu.Unlock()
	if e.auto {
		select {
		case e.queue <- task:
		default:
			return false
		}
	}
	return true
}

func (e *testEnqueuer) HasAvailableSlot(string) bool { return true }
func (e *testEnqueuer) TryAcquireSlot(string) bool   { return true }

func (e *testEnqueuer) ReleaseDispatchSlot(fn string) {
	e.mu.Lock()
	e.releases[fn]++
	e.mu.Unlock()
}

func (e *testEnqueuer) Tasks() []execution.Task {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]execution.Task(nil), e.enqueued...)
}

func (e *testEnqueuer) Releases(fn string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.releases[fn]
}

// testSyncQueue is a sync-queue stand-in: it records admitted tasks and dispatches them from
// its own goroutine, or rejects them with err. entered/proceed (optional) let a test hold an
// admission in progress.
type testSyncQueue struct {
	err        error
	retryAfter int
	entered    chan *execution.Task // receives each task as Enqueue starts (if non-nil)
	proceed    chan struct{}        // Enqueue waits for a value on it (if non-nil)
	noDispatch bool                 // admitted tasks stay queued (the test completes them)

	mu    sync.Mutex
	tasks []*execution.Task

	queue chan *execution.Task
	quit  chan struct{}
	wg    sync.WaitGroup
}

func newTestSyncQueue() *testSyncQueue {
	return &testSyncQueue{retryAfter: 2, queue: make(chan *execution.Task, 1024), quit: make(chan struct{})}
}

func (q *testSyncQueue) start(svc *Service) {
	q.wg.Add(1)
	go func() {
		defer q.wg.Done()
		for {
			select {
			case <-q.quit:
				return
			case task := <-q.queue:
				svc.Dispatch(task)
			}
		}
	}()
}

func (q *testSyncQueue) close() {
	close(q.quit)
	q.wg.Wait()
}

func (q *testSyncQueue) Enabled() bool { return true }

func (q *testSyncQueue) Enqueue(task *execution.Task) error {
	if q.entered != nil {
		q.entered <- task
	}
	if q.proceed != nil {
		<-q.proceed
	}
	q.mu.Lock()
	q.tasks = append(q.tasks, task)
	err := q.err
	q.mu.Unlock()
	if err != nil || q.noDispatch {
		return err
	}
	q.queue <- task
	return nil
}

func (q *testSyncQueue) RetryAfterSeconds() int { return q.retryAfter }

func (q *testSyncQueue) Tasks() []*execution.Task {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]*execution.Task(nil), q.tasks...)
}

func (q *testSyncQueue) setErr(err error) {
	q.mu.Lock()
	q.err = err
	q.mu.Unlock()
}
