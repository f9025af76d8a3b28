package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nanofaas/control-plane/fnruntime"
)

// sqe2eRuntime is the project's Go function runtime (fnruntime), served in-process, with a
// handler that counts the invocations running at once and their high-water mark. The handler
// either sleeps a fixed delay or, while the runtime is held, waits until it is released, so a
// test decides exactly when a dispatch slot frees up.
type sqe2eRuntime struct {
	url string // the /invoke endpoint

	active, peak, calls atomic.Int64

	mu    sync.Mutex
	delay time.Duration
	gate  chan struct{} // nil = not held
}

// sqe2eStartRuntime serves the runtime on a loopback port until the test ends. Start it after
// the app so that its cleanup (which releases held invocations) runs before the app's. The
// runtime is served by an httptest server rather than Runtime.Serve: http.Server.Shutdown counts
// a connection the control plane opened but never used as active for 5 s, while Close drops it.
func sqe2eStartRuntime(t *testing.T, delay time.Duration) *sqe2eRuntime {
	t.Helper()
	r := &sqe2eRuntime{delay: delay}
	rt := fnruntime.New(r.handle, fnruntime.Config{Timeout: 30 * time.Second},
		fnruntime.WithLogger(slog.New(slog.DiscardHandler)))
	srv := httptest.NewServer(rt)
	t.Cleanup(func() {
		r.release()
		srv.Close() // waits for the invocations in progress
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := rt.Close(ctx); err != nil {
			t.Errorf("function runtime: %v", err)
		}
	})
	r.url = srv.URL + "/invoke"
	return r
}

func (r *sqe2eRuntime) handle(ctx context.Context, req fnruntime.Request) (any, error) {
	n := r.active.Add(1)
	defer r.active.Add(-1) // before the response is written: the runtime never over-counts
	r.calls.Add(1)
	for p := r.peak.Load(); n > p && !r.peak.CompareAndSwap(p, n); p = r.peak.Load() {
	}
	r.mu.Lock()
	gate, delay := r.gate, r.delay
	r.mu.Unlock()
	var elapsed <-chan time.Time
	switch {
	case gate != nil:
	case delay > 0:
		t := time.NewTimer(delay)
		defer t.Stop()
		elapsed = t.C
	default:
		return map[string]string{"executionId": req.ExecutionID}, nil
	}
	select {
	case <-gate:
	case <-elapsed:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return map[string]string{"executionId": req.ExecutionID}, nil
}

// hold makes invocations arriving from now on wait until release.
func (r *sqe2eRuntime) hold() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gate == nil {
		r.gate = make(chan struct{})
	}
}

// release lets every held invocation finish; later ones sleep the delay again.
func (r *sqe2eRuntime) release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gate != nil {
		close(r.gate)
		r.gate = nil
	}
}

// waitActive waits until n invocations are running in the handler at once.
func (r *sqe2eRuntime) waitActive(t *testing.T, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for r.active.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("runtime has %d invocations running, want %d", r.active.Load(), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// sqe2eRegister registers a POOL function served by rt.
func sqe2eRegister(t *testing.T, api, name string, rt *sqe2eRuntime, extra string) {
	t.Helper()
	spec := `{"name":"` + name + `","image":"unused","executionMode":"POOL","endpointUrl":"` + rt.url + `"` + extra + `}`
	if code, body := call(t, "POST", api+"/v1/functions", spec); code != 201 {
		t.Fatalf("register %s = %d %s", name, code, body)
	}
}

// sqe2eResult is one HTTP exchange, safe to produce on any goroutine.
type sqe2eResult struct {
	code   int
	header http.Header
	body   string
	err    error
}

func sqe2ePost(client *http.Client, url, body string, header map[string]string) sqe2eResult {
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		return sqe2eResult{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return sqe2eResult{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return sqe2eResult{code: resp.StatusCode, header: resp.Header, body: string(b), err: err}
}

// sqe2eInvokeInBackground starts a sync invocation and returns where its result will arrive.
func sqe2eInvokeInBackground(api, fn string) <-chan sqe2eResult {
	out := make(chan sqe2eResult, 1)
	go func() { out <- sqe2ePost(http.DefaultClient, api+"/v1/functions/"+fn+":invoke", `{"input":1}`, nil) }()
	return out
}

// sqe2eAwait returns a background invocation's result, failing the test if it never comes.
func sqe2eAwait(t *testing.T, ch <-chan sqe2eResult) sqe2eResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(15 * time.Second):
		t.Fatal("invocation never answered")
		return sqe2eResult{}
	}
}

func sqe2eWantSuccess(t *testing.T, what string, r sqe2eResult) {
	t.Helper()
	if r.err != nil || r.code != 200 || !strings.Contains(r.body, `"status":"success"`) {
		t.Errorf("%s = %d %q (err %v), want 200 success", what, r.code, r.body, r.err)
	}
}

// sqe2eWantRejected checks the sync-queue 429 contract (spec-modules §2): empty body, the
// Retry-After and X-Queue-Reject-Reason headers.
func sqe2eWantRejected(t *testing.T, r sqe2eResult, reason, retryAfter string) {
	t.Helper()
	if r.err != nil {
		t.Fatalf("invoke: %v", r.err)
	}
	if r.code != 429 || r.body != "" {
		t.Errorf("rejected invoke = %d %q, want 429 with an empty body", r.code, r.body)
	}
	if got := r.header.Get("X-Queue-Reject-Reason"); got != reason {
		t.Errorf("X-Queue-Reject-Reason = %q, want %q", got, reason)
	}
	if got := r.header.Get("Retry-After"); got != retryAfter {
		t.Errorf("Retry-After = %q, want %q", got, retryAfter)
	}
}

// sqe2eMetrics scrapes /actuator/prometheus into series (name with labels, as exported) → value.
func sqe2eMetrics(t *testing.T, mgmt string) map[string]float64 {
	t.Helper()
	code, body := call(t, "GET", mgmt+"/actuator/prometheus", "")
	if code != 200 {
		t.Fatalf("prometheus = %d", code)
	}
	out := map[string]float64{}
	for line := range strings.Lines(body) {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// sqe2eWantMetrics checks exact values; a negative want means the series must be absent.
func sqe2eWantMetrics(t *testing.T, mgmt string, want map[string]float64) {
	t.Helper()
	got := sqe2eMetrics(t, mgmt)
	for series, w := range want {
		v, ok := got[series]
		switch {
		case w < 0 && ok:
			t.Errorf("%s = %v, want no such series", series, v)
		case w >= 0 && (!ok || v != w):
			t.Errorf("%s = %v (present %v), want %v", series, v, ok, w)
		}
	}
}

// sqe2eWaitMetrics polls until every series is exported with its value.
func sqe2eWaitMetrics(t *testing.T, mgmt string, want map[string]float64, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := sqe2eMetrics(t, mgmt)
		var off []string
		for series, w := range want {
			if v, ok := got[series]; !ok || v != w {
				off = append(off, fmt.Sprintf("%s=%v (exported %v, want %v)", series, v, ok, w))
			}
		}
		if len(off) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics did not settle within %v: %s", within, strings.Join(off, ", "))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSyncQueueE2E_RejectReasonsDepthAndEstimatedWait saturates a concurrency-1 function so that
// one invocation runs and one waits in the sync queue, then checks that the next one is refused
// by the real sync-queue module behind the real API with the 429 contract: by the global depth
// limit, or by the estimated wait (one dispatch in the 30 s window and one item queued estimate
// a 30 s wait, over the default 2 s limit). The two admitted invocations still succeed.
func TestSyncQueueE2E_RejectReasonsDepthAndEstimatedWait(t *testing.T) {
	for _, tc := range []struct {
		name, reason, retryAfter string
		args                     []string
	}{
		{"depth", "depth", "7", []string{"--sync-queue.max-depth=1", "--sync-queue.retry-after-seconds=7"}},
		{"est_wait", "est_wait", "2", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A long queue wait: the queued invocation must not time out on a slow machine.
			api, mgmt := startApp(t, append([]string{"--sync-queue.max-queue-wait=30s"}, tc.args...)...)
			rt := sqe2eStartRuntime(t, 0)
			sqe2eRegister(t, api, "slow", rt, `,"concurrency":1`)
			rt.hold()

			running := sqe2eInvokeInBackground(api, "slow")
			rt.waitActive(t, 1)
			queued := sqe2eInvokeInBackground(api, "slow")
			sqe2eWaitMetrics(t, mgmt, map[string]float64{`sync_queue_depth{function="slow"}`: 1}, 10*time.Second)

			rejected := sqe2ePost(http.DefaultClient, api+"/v1/functions/slow:invoke", `{"input":1}`, nil)
			sqe2eWantRejected(t, rejected, tc.reason, tc.retryAfter)
			sqe2eWantMetrics(t, mgmt, map[string]float64{
				`sync_queue_admitted_total{function="slow"}`: 2,
				`sync_queue_rejected_total{function="slow"}`: 1,
				`sync_queue_depth{function="slow"}`:          1,
				`sync_queue_depth`:                           1,
				`sync_queue_timedout_total{function="slow"}`: -1,
			})

			rt.release()
			sqe2eWantSuccess(t, "running invocation", sqe2eAwait(t, running))
			sqe2eWantSuccess(t, "queued invocation", sqe2eAwait(t, queued))
			sqe2eWaitMetrics(t, mgmt, map[string]float64{
				`sync_queue_admitted_total{function="slow"}`:             2,
				`sync_queue_rejected_total{function="slow"}`:             1,
				`sync_queue_depth{function="slow"}`:                      0,
				`sync_queue_wait_seconds_count{function="slow"}`:         2,
				`function_dispatch_total{function="slow"}`:               2,
				`function_success_total{function="slow"}`:                2,
				`function_e2e_latency_ms_seconds_count{function="slow"}`: 2,
				`function_inFlight{function="slow"}`:                     0,
				// Sync-queue rejections are not async-queue rejections or enqueues.
				`function_queue_rejected_total{function="slow"}`: 0,
				`function_enqueue_total{function="slow"}`:        0,
			}, 5*time.Second)
			sqe2eWantMetrics(t, mgmt, map[string]float64{`sync_queue_timedout_total{function="slow"}`: -1})
			if n := rt.calls.Load(); n != 2 {
				t.Errorf("runtime ran %d invocations, want 2 (the rejected one must never run)", n)
			}
		})
	}
}

// TestSyncQueueE2E_RejectReasonTimeoutAfterRuntimeConfigPatch shortens the queue wait through
// the runtime-config admin API (hot reload) and checks that an invocation stuck behind a busy
// concurrency-1 function is answered 429 timeout with the patched Retry-After, and counted.
func TestSyncQueueE2E_RejectReasonTimeoutAfterRuntimeConfigPatch(t *testing.T) {
	api, mgmt := startApp(t, "--nanofaas.admin.runtime-config.enabled=true")
	rt := sqe2eStartRuntime(t, 0)
	sqe2eRegister(t, api, "slow", rt, `,"concurrency":1`)
	code, body := call(t, "PATCH", api+"/v1/admin/runtime-config",
		`{"expectedRevision":0,"syncQueueMaxEstimatedWait":"PT0.2S","syncQueueMaxQueueWait":"PT0.3S","syncQueueRetryAfterSeconds":5}`)
	if code != 200 || !strings.Contains(body, `"syncQueueMaxQueueWait":"PT0.3S"`) {
		t.Fatalf("patch = %d %s", code, body)
	}
	rt.hold()
	running := sqe2eInvokeInBackground(api, "slow")
	rt.waitActive(t, 1)

	start := time.Now()
	timedOut := sqe2ePost(http.DefaultClient, api+"/v1/functions/slow:invoke", `{"input":1}`, nil)
	waited := time.Since(start)
	sqe2eWantRejected(t, timedOut, "timeout", "5")
	if waited < 300*time.Millisecond {
		t.Errorf("answered 429 timeout after %v, before the 300 ms queue wait", waited)
	}
	sqe2eWantMetrics(t, mgmt, map[string]float64{
		`sync_queue_admitted_total{function="slow"}`: 2,
		`sync_queue_timedout_total{function="slow"}`: 1,
		`sync_queue_rejected_total{function="slow"}`: -1,
		`sync_queue_depth{function="slow"}`:          0,
	})

	rt.release()
	sqe2eWantSuccess(t, "running invocation", sqe2eAwait(t, running))
	if n := rt.calls.Load(); n != 1 {
		t.Errorf("runtime ran %d invocations, want 1 (the timed-out one must never run)", n)
	}
}

// TestSyncQueueE2E_AbandonedCallersNeverLeakDispatchSlots sends many sync invocations to a slow
// concurrency-2 function from clients that give up (client timeouts while queued or running,
// server-side X-Timeout-Ms, repeated Idempotency-Keys joining one execution, queue-wait
// timeouts), then checks that once the work drains no dispatch slot is left taken
// (function_inFlight 0, D12) and that both slots are usable again.
func TestSyncQueueE2E_AbandonedCallersNeverLeakDispatchSlots(t *testing.T) {
	api, mgmt := startApp(t, "--sync-queue.admission-enabled=false", "--sync-queue.max-queue-wait=1500ms")
	rt := sqe2eStartRuntime(t, 60*time.Millisecond)
	sqe2eRegister(t, api, "slow", rt, `,"concurrency":2,"timeoutMs":5000`)

	const callers = 48
	var gaveUp, answered atomic.Int64
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			client := &http.Client{Timeout: time.Duration(15+(i%8)*45) * time.Millisecond}
			header := map[string]string{}
			if i%3 == 0 {
				header["Idempotency-Key"] = "key-" + strconv.Itoa(i%4)
			}
			if i%5 == 0 {
				header["X-Timeout-Ms"] = "40"
			}
			r := sqe2ePost(client, api+"/v1/functions/slow:invoke", `{"input":`+strconv.Itoa(i)+`}`, header)
			var netErr net.Error
			switch {
			case errors.As(r.err, &netErr) && netErr.Timeout():
				gaveUp.Add(1)
			case r.err != nil:
				t.Errorf("caller %d: %v", i, r.err)
			case r.code == 200 || r.code == 429:
				answered.Add(1)
			default:
				t.Errorf("caller %d: %d %q", i, r.code, r.body)
			}
		})
	}
	wg.Wait()
	if gaveUp.Load() == 0 {
		t.Fatalf("no caller gave up (%d answered): the scenario did not happen", answered.Load())
	}
	t.Logf("%d callers gave up, %d were answered", gaveUp.Load(), answered.Load())

	// Queued and running work outlives its callers; once it drains every slot must be free.
	sqe2eWaitMetrics(t, mgmt, map[string]float64{
		`function_inFlight{function="slow"}`:    0,
		`sync_queue_depth{function="slow"}`:     0,
		`function_queue_depth{function="slow"}`: 0,
	}, 15*time.Second)
	if n := rt.active.Load(); n != 0 {
		t.Fatalf("runtime still runs %d invocations with no slot taken", n)
	}

	// Both slots are usable: two invocations run at once and a third waits for them.
	rt.hold()
	a, b := sqe2eInvokeInBackground(api, "slow"), sqe2eInvokeInBackground(api, "slow")
	rt.waitActive(t, 2)
	c := sqe2eInvokeInBackground(api, "slow")
	sqe2eWaitMetrics(t, mgmt, map[string]float64{
		`function_inFlight{function="slow"}`: 2,
		`sync_queue_depth{function="slow"}`:  1,
	}, 10*time.Second)
	rt.release()
	for i, ch := range []<-chan sqe2eResult{a, b, c} {
		sqe2eWantSuccess(t, fmt.Sprintf("invocation %d after the drain", i), sqe2eAwait(t, ch))
	}
	if p := rt.peak.Load(); p != 2 {
		t.Errorf("peak concurrent invocations = %d, want 2", p)
	}
	sqe2eWaitMetrics(t, mgmt, map[string]float64{`function_inFlight{function="slow"}`: 0}, 10*time.Second)
}

// TestSyncQueueE2E_DefaultModulesNeverExceedFunctionConcurrency sends 60 sync and 60 async
// invocations at once to a concurrency-2 function with the default modules, so they go through
// the sync queue's fast path and scheduler and the async queue's scheduler, which share the
// function's dispatch slots: the runtime must never see more than 2 at once, and all complete.
// Estimated-wait admission is off and the queue wait long: shedding a burst is correct
// behaviour, but this test is about the slot limit, so every invocation must be admitted.
func TestSyncQueueE2E_DefaultModulesNeverExceedFunctionConcurrency(t *testing.T) {
	api, mgmt := startApp(t, "--sync-queue.admission-enabled=false", "--sync-queue.max-queue-wait=60s")
	rt := sqe2eStartRuntime(t, 8*time.Millisecond)
	sqe2eRegister(t, api, "pair", rt, `,"concurrency":2,"queueSize":100`)

	// The burst opens connections that may end up never used; closing them before the app stops
	// spares its shutdown waiting for them.
	client := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)
	const each = 60
	syncResults := make(chan sqe2eResult, each)
	asyncResults := make(chan sqe2eResult, each)
	var wg sync.WaitGroup
	for i := range each {
		input := `{"input":` + strconv.Itoa(i) + `}`
		wg.Go(func() { syncResults <- sqe2ePost(client, api+"/v1/functions/pair:invoke", input, nil) })
		wg.Go(func() { asyncResults <- sqe2ePost(client, api+"/v1/functions/pair:enqueue", input, nil) })
	}
	wg.Wait()
	close(syncResults)
	close(asyncResults)

	for r := range syncResults {
		sqe2eWantSuccess(t, "sync invocation", r)
	}
	var ids []string
	for r := range asyncResults {
		var queued struct {
			ExecutionID string `json:"executionId"`
			Status      string `json:"status"`
		}
		if r.err != nil || r.code != 202 || json.Unmarshal([]byte(r.body), &queued) != nil || queued.Status != "queued" {
			t.Errorf("enqueue = %d %q (err %v), want 202 queued", r.code, r.body, r.err)
			continue
		}
		ids = append(ids, queued.ExecutionID)
	}
	deadline := time.Now().Add(15 * time.Second)
	for _, id := range ids {
		for {
			code, body := call(t, "GET", api+"/v1/executions/"+id, "")
			if code == 200 && strings.Contains(body, `"status":"success"`) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("execution %s never succeeded: %d %s", id, code, body)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	if p := rt.peak.Load(); p != 2 {
		t.Errorf("peak concurrent invocations = %d, want exactly the function's concurrency 2", p)
	}
	if n := rt.calls.Load(); n != 2*each {
		t.Errorf("runtime ran %d invocations, want %d", n, 2*each)
	}
	sqe2eWaitMetrics(t, mgmt, map[string]float64{
		`function_inFlight{function="pair"}`:         0,
		`function_success_total{function="pair"}`:    2 * each,
		`function_dispatch_total{function="pair"}`:   2 * each,
		`function_enqueue_total{function="pair"}`:    each,
		`sync_queue_admitted_total{function="pair"}`: each,
	}, 10*time.Second)
}
