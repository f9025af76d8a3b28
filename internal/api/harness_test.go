package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/nanofaas/control-plane/internal/api"
	"github.com/nanofaas/control-plane/internal/deploy"
	"github.com/nanofaas/control-plane/internal/dispatch"
	"github.com/nanofaas/control-plane/internal/execution"
	"github.com/nanofaas/control-plane/internal/function"
	"github.com/nanofaas/control-plane/internal/invocation"
	"github.com/nanofaas/control-plane/internal/metrics"
	"github.com/nanofaas/control-plane/internal/ratelimit"
	"github.com/nanofaas/control-plane/internal/registry"
)

// The harness runs real dispatch goroutines and HTTP clients; none may outlive the tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// harnessOpts are the knobs of newHarness; the zero value is the core-only control plane.
type harnessOpts struct {
	providers      []deploy.Provider
	defaultBackend string
	listeners      []registry.Listener
	images         registry.ImageValidator
	enqueuer       invocation.Enqueuer
	syncQueue      invocation.SyncQueueGateway
	maxBodyBytes   int64
	maxPerSecond   int                 // 0 = the reference default
	registry       *registry.Registry  // shared with another harness when set
	functions      api.FunctionService // replaces the real registry service (fault injection)
}

// harness is the API listener assembled as internal/controlplane/app.go does, over real
// registry, invocation, execution, dispatch and metrics components.
type harness struct {
	t           testing.TB
	handler     http.Handler
	registry    *registry.Registry
	functions   *registry.Service
	invocations *invocation.Service
	store       *execution.Store
	limiter     *ratelimit.Limiter
	prom        *prometheus.Registry
}

func newHarness(t testing.TB, o harnessOpts) *harness {
	t.Helper()
	prom := metrics.NewRegistry()
	fnMetrics, err := metrics.NewFunctionMetrics(prom, nil)
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	maxPerSecond := o.maxPerSecond
	if maxPerSecond == 0 {
		maxPerSecond = ratelimit.DefaultMaxPerSecond
	}
	limiter := ratelimit.New(maxPerSecond, nil)
	store := execution.NewStore(execution.StoreConfig{}, nil)
	factory := execution.NewFactory(store, execution.NewIdempotencyStore(execution.IdempotencyConfig{}, nil), nil, nil)

	client := dispatch.NewHTTPClient(dispatch.ClientConfig{ConnectTimeout: time.Second})
	router := dispatch.NewRouter(dispatch.Local{}, dispatch.NewPool(client, 0))

	providers, err := deploy.NewResolver(o.defaultBackend, o.providers...)
	if err != nil {
		t.Fatalf("providers: %v", err)
	}
	reg := o.registry
	if reg == nil {
		reg = registry.New()
	}
	functions := registry.NewService(registry.Deps{
		Registry:  reg,
		Specs:     registry.NewResolver(registry.ReferenceDefaults()),
		Providers: providers,
		Listeners: o.listeners,
		Images:    o.images,
	})
	invocations := invocation.NewService(invocation.Deps{
		Limiter: limiter, Functions: functions, Store: store, Factory: factory,
		Dispatcher: router, Metrics: fnMetrics, Enqueuer: o.enqueuer, SyncQueue: o.syncQueue,
	})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		invocations.Close(ctx)
		client.CloseIdleConnections()
	})
	var fs api.FunctionService = functions
	if o.functions != nil {
		fs = o.functions
	}
	return &harness{
		t: t,
		handler: api.NewAPIHandler(api.Deps{
			Functions: fs, Invocations: invocations, MaxBodyBytes: o.maxBodyBytes,
		}),
		registry: reg, functions: functions, invocations: invocations,
		store: store, limiter: limiter, prom: prom,
	}
}

// do sends one request through the handler. headers are name/value pairs; a body is sent as
// application/json unless a Content-Type pair is given ("" removes it).
func (h *harness) do(method, target, body string, headers ...string) *httptest.ResponseRecorder {
	h.t.Helper()
	return serve(h.t, h.handler, method, target, body, headers...)
}

func serve(t testing.TB, handler http.Handler, method, target, body string, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if len(headers)%2 != 0 {
		t.Fatalf("odd header list %q", headers)
	}
	for i := 0; i < len(headers); i += 2 {
		if headers[i+1] == "" && headers[i] == "Content-Type" {
			req.Header.Del("Content-Type")
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	return rec
}

// register registers a function and fails the test unless it answers 201.
func (h *harness) register(body string) {
	h.t.Helper()
	if rec := h.do(http.MethodPost, "/v1/functions", body); rec.Code != http.StatusCreated {
		h.t.Fatalf("register %s: %d %s", body, rec.Code, rec.Body)
	}
}

// registerLocal registers a LOCAL (echo) function called name.
func (h *harness) registerLocal(name string) {
	h.t.Helper()
	h.register(`{"name":"` + name + `","image":"local","executionMode":"LOCAL"}`)
}

// invocationResponse is the InvocationResponse JSON (§2.4) with raw output.
type invocationResponse struct {
	ExecutionID string               `json:"executionId"`
	Status      string               `json:"status"`
	Output      json.RawMessage      `json:"output"`
	Error       *execution.ErrorInfo `json:"error"`
}

func decodeInto[T any](t testing.TB, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %q: %v", rec.Body, err)
	}
	return v
}

// errorBody is the JSON error shape of §3.10.
type errorBody struct {
	Error   string   `json:"error"`
	Message string   `json:"message"`
	Details []string `json:"details"`
}

// assertStatus fails unless rec has the given status.
func assertStatus(t *testing.T, rec *httptest.ResponseRecorder, want int) {
	t.Helper()
	if rec.Code != want {
		t.Fatalf("status = %d, want %d (body %q)", rec.Code, want, rec.Body)
	}
}

// assertEmpty fails unless rec has the given status and no body.
func assertEmpty(t *testing.T, rec *httptest.ResponseRecorder, want int) {
	t.Helper()
	assertStatus(t, rec, want)
	if rec.Body.Len() != 0 {
		t.Fatalf("body = %q, want empty", rec.Body)
	}
}

// assertText fails unless rec is a plain-text answer with exactly msg.
func assertText(t *testing.T, rec *httptest.ResponseRecorder, want int, msg string) {
	t.Helper()
	assertStatus(t, rec, want)
	if ct := rec.Header().Get("Content-Type"); ct != "text/plain;charset=UTF-8" {
		t.Errorf("Content-Type = %q, want text/plain;charset=UTF-8", ct)
	}
	if got := rec.Body.String(); got != msg {
		t.Errorf("body = %q, want %q", got, msg)
	}
}

// assertJSON fails unless rec is a JSON answer whose body equals want exactly.
func assertJSON(t *testing.T, rec *httptest.ResponseRecorder, status int, want string) {
	t.Helper()
	assertStatus(t, rec, status)
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if got := rec.Body.String(); got != want {
		t.Errorf("body =\n%s\nwant\n%s", got, want)
	}
}

// assertError fails unless rec is a §3.10 JSON error with the given code and, when msg is not
// empty, message; details are compared as a set (their order is unspecified).
func assertError(t *testing.T, rec *httptest.ResponseRecorder, status int, code, msg string, details ...string) {
	t.Helper()
	assertStatus(t, rec, status)
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	got := decodeInto[errorBody](t, rec)
	if got.Error != code {
		t.Errorf("error = %q, want %q", got.Error, code)
	}
	if msg != "" && got.Message != msg {
		t.Errorf("message = %q, want %q", got.Message, msg)
	}
	if got.Message == "" {
		t.Errorf("message is empty")
	}
	sort.Strings(got.Details)
	want := append([]string(nil), details...)
	sort.Strings(want)
	if strings.Join(got.Details, "\n") != strings.Join(want, "\n") {
		t.Errorf("details = %q, want %q", got.Details, want)
	}
}

const internalErrorBody = `{"error":"INTERNAL_ERROR","message":"An unexpected error occurred"}`

// recorder shortens signatures in tables.
type recorder = httptest.ResponseRecorder

func toProviders(ps ...*fakeProvider) []deploy.Provider {
	out := make([]deploy.Provider, len(ps))
	for i, p := range ps {
		out[i] = p
	}
	return out
}

// fakeProvider is a deploy.Provider whose behaviour each test sets.
type fakeProvider struct {
	id             string
	unavailable    bool
	endpoint       string // returned by Provision
	noBackend      bool   // Provision reports no backend id (effective DEPLOYMENT, unmanaged)
	provisionErr   error
	deprovisionErr error
	setReplicasErr error

	mu       sync.Mutex
	replicas map[string]int
	removed  []string
}

func (p *fakeProvider) BackendID() string                 { return p.id }
func (p *fakeProvider) Available() bool                   { return !p.unavailable }
func (p *fakeProvider) Supports(spec *function.Spec) bool { return true }

func (p *fakeProvider) Provision(_ context.Context, spec *function.Spec) (deploy.ProvisionResult, error) {
	if p.provisionErr != nil {
		return deploy.ProvisionResult{}, p.provisionErr
	}
	if p.noBackend {
		return deploy.ProvisionResult{EndpointURL: p.endpoint}, nil
	}
	return deploy.Managed(p.endpoint, p.id), nil
}

func (p *fakeProvider) Deprovision(_ context.Context, name string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.removed = append(p.removed, name)
	return p.deprovisionErr
}

func (p *fakeProvider) SetReplicas(_ context.Context, name string, n int) error {
	if p.setReplicasErr != nil {
		return p.setReplicasErr
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.replicas == nil {
		p.replicas = map[string]int{}
	}
	p.replicas[name] = n
	return nil
}

func (p *fakeProvider) ReadyReplicas(context.Context, string) (int, error) { return 1, nil }

func (p *fakeProvider) replicasOf(name string) (int, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n, ok := p.replicas[name]
	return n, ok
}

// fakeListener fails registrations or removals with the configured errors.
type fakeListener struct {
	registerErr error
	removeErr   error
}

func (l fakeListener) OnRegister(context.Context, *function.Spec) error { return l.registerErr }
func (l fakeListener) OnRemove(context.Context, string) error           { return l.removeErr }

// fakeImages rejects every image with err.
type fakeImages struct{ err error }

func (v fakeImages) Validate(context.Context, *function.Spec) error { return v.err }

// fakeEnqueuer is an enabled async queue that keeps the tasks it accepts (nobody dispatches
// them), or refuses them all when full.
type fakeEnqueuer struct {
	full  bool
	panic bool

	mu    sync.Mutex
	tasks []*execution.Task
}

func (e *fakeEnqueuer) Enabled() bool { return true }

func (e *fakeEnqueuer) Enqueue(task *execution.Task) bool {
	if e.panic {
		panic("enqueuer exploded: secret detail")
	}
	if e.full {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.tasks = append(e.tasks, task)
	return true
}

func (e *fakeEnqueuer) HasAvailableSlot(string) bool { return true }
func (e *fakeEnqueuer) TryAcquireSlot(string) bool   { return true }
func (e *fakeEnqueuer) ReleaseDispatchSlot(string)   {}

func (e *fakeEnqueuer) enqueued() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.tasks)
}

// fakeSyncQueue is an enabled sync queue answering every admission with err.
type fakeSyncQueue struct{ err error }

func (q fakeSyncQueue) Enabled() bool                 { return true }
func (q fakeSyncQueue) Enqueue(*execution.Task) error { return q.err }
func (q fakeSyncQueue) RetryAfterSeconds() int        { return 2 }

// fakePod is a function replica for POOL functions: it answers with reply, or holds the
// request until the test releases it (or the caller gives up).
type fakePod struct {
	*httptest.Server
	requests chan *http.Request
	release  chan struct{}
}

func newFakePod(t *testing.T, reply func(w http.ResponseWriter, r *http.Request)) *fakePod {
	t.Helper()
	p := &fakePod{requests: make(chan *http.Request, 16), release: make(chan struct{})}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case p.requests <- r.Clone(context.Background()):
		default:
		}
		if reply != nil {
			reply(w, r)
			return
		}
		select {
		case <-p.release:
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusOK)
	}))
	var once sync.Once
	t.Cleanup(func() {
		once.Do(func() { close(p.release) })
		p.Close()
	})
	return p
}

// receive returns the next value of ch, failing the test instead of hanging when none comes.
func receive[T any](t testing.TB, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for a value")
		panic("unreachable")
	}
}
