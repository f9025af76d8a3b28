package invocation

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/nanofaas/control-plane/internal/execution"
	"github.com/nanofaas/control-plane/internal/function"
)

// Sync and async flows (InvocationServiceDispatchTest, ...RetryTest, ReactiveInvocationCoordinatorTest).

func TestInvokeSync_LocalEchoesInputInline(t *testing.T) {
	tests := []struct {
		name string
		opts harnessOpts
	}{
		{"no-op seams by default", harnessOpts{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.opts)
			h.register("echo", function.ModeLocal, "")

			resp := h.mustInvoke("echo", `{"hello":"world"}`, Options{})

			if resp.Status != StatusSuccess || string(resp.Output) != `{"hello":"world"}` || resp.Error != nil {
				t.Fatalf("response = %+v", resp)
			}
			st, ok := h.svc.Execution(resp.ExecutionID)
			if !ok || st.Status != "success" || st.StartedAt == nil || st.FinishedAt == nil || st.ColdStart {
				t.Errorf("status = %+v (found %v)", st, ok)
			}
			h.expectMetrics("echo", map[string]float64{"function_dispatch_total": 1, "function_enqueue_total": 0})
		})
	}
}

func TestNewService_NilSeamsMeanCoreDefaults(t *testing.T) {
	svc := NewService(Deps{})
	defer svc.Close(context.Background())
	if svc.enqueuer.Enabled() || svc.syncQueue.Enabled() {
		t.Fatal("nil seams must default to the disabled no-op implementations")
	}
	if got := svc.syncQueue.RetryAfterSeconds(); got != 2 {
		t.Errorf("default RetryAfterSeconds = %d, want 2", got)
	}
	if err := (NoopSyncQueue{}).Enqueue(nil); err == nil || err.Error() != "Sync queue module not loaded" {
		t.Errorf("NoopSyncQueue.Enqueue = %v", err)
	}
	n := NoopEnqueuer{}
	if n.Enqueue(nil) || !n.HasAvailableSlot("f") || !n.TryAcquireSlot("f") {
		t.Error("NoopEnqueuer: refuses enqueue, has unlimited slots")
	}
}

func TestInvokeSync_UsesAsyncQueueWhenEnabled(t *testing.T) {
	enq := newTestEnqueuer(true)
	h := newHarness(t, harnessOpts{enqueuer: enq})
	h.register("echo", function.ModeLocal, "")

	resp := h.mustInvoke("echo", `7`, Options{})

	if resp.Status != StatusSuccess || string(resp.Output) != "7" {
		t.Fatalf("response = %+v", resp)
	}
	if got := len(enq.Tasks()); got != 1 {
		t.Errorf("enqueues = %d, want 1", got)
	}
	if got := enq.Releases("echo"); got != 1 {
		t.Errorf("releases = %d, want 1", got)
	}
	h.expectMetrics("echo", map[string]float64{"function_enqueue_total": 1, "function_dispatch_total": 1})
}

func TestInvokeSync_SyncQueueIsExclusiveAdmissionPath(t *testing.T) {
	enq := newTestEnqueuer(true)
	sq := newTestSyncQueue()
	h := newHarness(t, harnessOpts{enqueuer: enq, syncQueue: sq})
	h.register("echo", function.ModeLocal, "")

	resp := h.mustInvoke("echo", `"q"`, Options{})

	if resp.Status != StatusSuccess || string(resp.Output) != `"q"` {
		t.Fatalf("response = %+v", resp)
	}
	if len(sq.Tasks()) != 1 || len(enq.Tasks()) != 0 {
		t.Errorf("sync-queue admissions %d, async enqueues %d; want 1 and 0", len(sq.Tasks()), len(enq.Tasks()))
	}
	h.expectMetrics("echo", map[string]float64{"function_enqueue_total": 0, "function_dispatch_total": 1})
}

func TestInvokeSync_SyncQueueRejectionRollsBackAdmission(t *testing.T) {
	sq := newTestSyncQueue()
	sq.err = &SyncQueueRejectedError{Reason: RejectDepth, RetryAfterSeconds: 3}
	h := newHarness(t, harnessOpts{enqueuer: newTestEnqueuer(true), syncQueue: sq})
	h.register("echo", function.ModeLocal, "")

	_, err := h.invoke("echo", `1`, Options{IdempotencyKey: "k"})

	var rej *SyncQueueRejectedError
	if !errors.As(err, &rej) || rej.Reason != RejectDepth || rej.RetryAfterSeconds != 3 {
		t.Fatalf("err = %v, want SyncQueueRejectedError{depth, 3}", err)
	}
	if h.store.Len() != 0 || h.idem.Len() != 0 {
		t.Errorf("store %d idempotency %d entries after a rejection, want 0 and 0", h.store.Len(), h.idem.Len())
	}
	sq.setErr(nil)
	resp := h.mustInvoke("echo", `2`, Options{IdempotencyKey: "k"})
	if resp.Status != StatusSuccess || string(resp.Output) != "2" || resp.ExecutionID == sq.Tasks()[0].ExecutionID {
		t.Errorf("after rejection the key must start fresh: %+v", resp)
	}
}

func TestInvokeSync_QueueTimeoutCompletionIsRejectedWithRetryAfter(t *testing.T) {
	sq := newTestSyncQueue()
	sq.retryAfter = 7
	sq.noDispatch = true // the "module" times the task out instead of dispatching it
	h := newHarness(t, harnessOpts{enqueuer: newTestEnqueuer(true), syncQueue: sq})
	h.register("echo", function.ModeLocal, "")

	errc := make(chan error, 1)
	go func() {
		_, err := h.invoke("echo", `1`, Options{})
		errc <- err
	}()
	waitFor(t, "the task to be admitted", func() bool { return len(sq.Tasks()) == 1 })
	rec := h.record(sq.Tasks()[0].ExecutionID)
	qt := execution.ErrorResult(QueueTimeoutCode, "Queue wait exceeded")
	rec.MarkError(qt.Error)
	rec.Complete(qt)

	err := <-errc
	var rej *SyncQueueRejectedError
	if !errors.As(err, &rej) || rej.Reason != RejectTimeout || rej.RetryAfterSeconds != 7 {
		t.Fatalf("err = %v, want SyncQueueRejectedError{timeout, 7}", err)
	}
	if rej.Error() != "sync queue rejected the request: timeout" {
		t.Errorf("message = %q", rej.Error())
	}
	// Module completions record no core metric: no meter of the function even exists.
	h.expectMetrics("echo", map[string]float64{"function_error_total": -1, "function_timeout_total": -1})
}

func TestInvokeSync_QueueFullRollsBackAdmission(t *testing.T) {
	enq := newTestEnqueuer(true)
	enq.refuse = func(*execution.Task) bool { return true }
	h := newHarness(t, harnessOpts{enqueuer: enq})
	h.register("echo", function.ModeLocal, "")

	_, err := h.invoke("echo", `1`, Options{IdempotencyKey: "k"})

	if !errors.Is(err, ErrQueueFull) {
		t.Fatalf("err = %v, want ErrQueueFull", err)
	}
	if h.store.Len() != 0 || h.idem.Len() != 0 {
		t.Errorf("store %d idempotency %d entries after queue full, want 0 and 0", h.store.Len(), h.idem.Len())
	}
	h.expectMetrics("echo", map[string]float64{"function_queue_rejected_total": 1, "function_enqueue_total": 0})
}

func TestInvokeSync_UnknownFunctionIsNotFound(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	if _, err := h.invoke("nope", `1`, Options{}); !errors.Is(err, ErrFunctionNotFound) {
		t.Errorf("sync err = %v, want ErrFunctionNotFound", err)
	}
	if _, err := h.svc.InvokeAsync(t.Context(), "nope", request(`1`), Options{}); !errors.Is(err, ErrFunctionNotFound) {
		t.Errorf("async err = %v, want ErrFunctionNotFound", err)
	}
	if h.store.Len() != 0 {
		t.Errorf("store has %d entries", h.store.Len())
	}
}

func TestInvoke_RateLimitAppliesToBothFlowsAndUnknownFunctions(t *testing.T) {
	fixed := time.Unix(1_700_000_000, 0)
	enq := newTestEnqueuer(true)
	h := newHarness(t, harnessOpts{enqueuer: enq, maxPerSecond: 3, limiterClock: func() time.Time { return fixed }})
	h.register("echo", function.ModeLocal, "")

	steps := []struct {
		name string
		call func() error
		want error
	}{
		{"sync within limit", func() error { _, err := h.invoke("echo", `1`, Options{}); return err }, nil},
		{"unknown function consumes a token", func() error { _, err := h.invoke("nope", `1`, Options{}); return err }, ErrFunctionNotFound},
		{"async within limit", func() error { _, err := h.svc.InvokeAsync(t.Context(), "echo", request(`1`), Options{}); return err }, nil},
		{"sync over limit", func() error { _, err := h.invoke("echo", `1`, Options{}); return err }, ErrRateLimited},
		{"unknown function over limit", func() error { _, err := h.invoke("nope", `1`, Options{}); return err }, ErrRateLimited},
		{"async over limit", func() error { _, err := h.svc.InvokeAsync(t.Context(), "echo", request(`1`), Options{}); return err }, ErrRateLimited},
	}
	for _, s := range steps {
		if err := s.call(); !errors.Is(err, s.want) {
			t.Errorf("%s: err = %v, want %v", s.name, err, s.want)
		}
	}
	h.limiter.SetMaxPerSecond(100)
	if _, err := h.invoke("echo", `1`, Options{}); err != nil {
		t.Errorf("after raising the limit: %v", err)
	}
	h.limiter.SetMaxPerSecond(0)
	if _, err := h.invoke("echo", `1`, Options{}); !errors.Is(err, ErrRateLimited) {
		t.Errorf("limit 0: err = %v, want ErrRateLimited", err)
	}
}

func TestInvokeSync_ReplayReturnsStoredOutcomeWithoutDispatch(t *testing.T) {
	enq := newTestEnqueuer(true)
	h := newHarness(t, harnessOpts{enqueuer: enq})
	h.register("echo", function.ModeLocal, "")

	first := h.mustInvoke("echo", `"one"`, Options{IdempotencyKey: "k"})
	second := h.mustInvoke("echo", `"two"`, Options{IdempotencyKey: "k"}) // payload not compared

	if second.ExecutionID != first.ExecutionID || second.Status != StatusSuccess || string(second.Output) != `"one"` {
		t.Fatalf("replay = %+v, want %+v", second, first)
	}
	if len(enq.Tasks()) != 1 || h.store.Len() != 1 {
		t.Errorf("enqueues %d, store %d; want 1 and 1", len(enq.Tasks()), h.store.Len())
	}
	h.expectMetrics("echo", map[string]float64{"function_dispatch_total": 1, "function_enqueue_total": 1})

	// Keys are scoped per function and blank keys are absent.
	h.register("other", function.ModeLocal, "")
	if r := h.mustInvoke("other", `1`, Options{IdempotencyKey: "k"}); r.ExecutionID == first.ExecutionID {
		t.Error("same key on another function must be a different execution")
	}
	a := h.mustInvoke("echo", `1`, Options{IdempotencyKey: "  "})
	b := h.mustInvoke("echo", `1`, Options{IdempotencyKey: "  "})
	if a.ExecutionID == b.ExecutionID {
		t.Error("a blank key must not deduplicate")
	}
}

func TestInvokeSync_ConcurrentSameKeyRunsOnce(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	rt, release := h.newHeldRuntime()
	h.register("fn", function.ModePool, rt.URL())

	const n = 50
	var wg sync.WaitGroup
	resps := make([]Response, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { resps[i], errs[i] = h.invoke("fn", `{"v":1}`, Options{IdempotencyKey: "same"}) })
	}
	waitFor(t, "the runtime to be called", func() bool { return rt.count() == 1 })
	time.Sleep(10 * time.Millisecond) // let the others join the running execution
	close(release)
	wg.Wait()

	for i := range n {
		if errs[i] != nil || resps[i].ExecutionID != resps[0].ExecutionID || resps[i].Status != StatusSuccess || string(resps[i].Output) != `{"v":1}` {
			t.Fatalf("request %d: %+v, %v; want success of %s", i, resps[i], errs[i], resps[0].ExecutionID)
		}
	}
	if rt.count() != 1 || h.store.Len() != 1 {
		t.Errorf("runtime calls %d, executions %d; want 1 and 1", rt.count(), h.store.Len())
	}
}

func TestInvokeSync_StaleKeyContentionCreatesOneExecution(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.register("echo", function.ModeLocal, "")
	h.idem.Put("echo", "k", "evicted-execution")

	const n = 20
	var wg sync.WaitGroup
	ids := make([]string, n)
	for i := range n {
		wg.Go(func() {
			resp, err := h.invoke("echo", `1`, Options{IdempotencyKey: "k"})
			if err != nil {
				t.Errorf("invoke: %v", err)
			}
			ids[i] = resp.ExecutionID
		})
	}
	wg.Wait()

	for i := range n {
		if ids[i] != ids[0] || ids[i] == "evicted-execution" {
			t.Fatalf("ids[%d] = %s, ids[0] = %s: want one fresh execution", i, ids[i], ids[0])
		}
	}
	if h.store.Len() != 1 {
		t.Errorf("executions = %d, want 1", h.store.Len())
	}
	h.expectMetrics("echo", map[string]float64{"function_dispatch_total": 1})
}

// heldAdmission starts a keyed sync invoke whose sync-queue admission is held until the test
// sends on sq.proceed; it returns the held task and the channel of the invoke's outcome.
func heldAdmission(t *testing.T, h *harness, sq *testSyncQueue, key string) (*execution.Task, chan Response, chan error) {
	t.Helper()
	resc, errc := make(chan Response, 1), make(chan error, 1)
	go func() {
		resp, err := h.invoke("echo", `"first"`, Options{IdempotencyKey: key})
		resc <- resp
		errc <- err
	}()
	return <-sq.entered, resc, errc
}

func TestInvokeSync_SameKeyWaitsForPendingAdmission(t *testing.T) {
	for _, rejected := range []bool{false, true} {
		t.Run(map[bool]string{false: "published then joined", true: "rejected then replaced"}[rejected], func(t *testing.T) {
			sq := newTestSyncQueue()
			sq.entered = make(chan *execution.Task, 2)
			sq.proceed = make(chan struct{})
			h := newHarness(t, harnessOpts{enqueuer: newTestEnqueuer(true), syncQueue: sq})
			h.register("echo", function.ModeLocal, "")

			held, firstRes, firstErr := heldAdmission(t, h, sq, "k")
			secondRes, secondErr := make(chan Response, 1), make(chan error, 1)
			go func() {
				resp, err := h.invoke("echo", `"second"`, Options{IdempotencyKey: "k"})
				secondRes <- resp
				secondErr <- err
			}()
			select {
			case <-secondErr:
				t.Fatal("the second request finished while the first admission was pending")
			case task := <-sq.entered:
				t.Fatalf("a replacement execution %s was admitted before the first was settled", task.ExecutionID)
			case <-time.After(30 * time.Millisecond):
			}
			if h.store.Len() != 1 {
				t.Fatalf("executions while pending = %d, want 1", h.store.Len())
			}

			if rejected {
				sq.setErr(&SyncQueueRejectedError{Reason: RejectEstWait, RetryAfterSeconds: 2})
			}
			sq.proceed <- struct{}{}
			if rejected {
				if err := <-firstErr; err == nil {
					t.Fatal("first request: want the rejection")
				}
				sq.setErr(nil)
				replacement := <-sq.entered
				if replacement.ExecutionID == held.ExecutionID {
					t.Fatal("the replacement reused the rejected execution id")
				}
				sq.proceed <- struct{}{}
				resp := <-secondRes
				if err := <-secondErr; err != nil || resp.ExecutionID != replacement.ExecutionID || string(resp.Output) != `"second"` {
					t.Fatalf("second = %+v, %v; want success of the replacement", resp, err)
				}
				return
			}
			first, second := <-firstRes, <-secondRes
			if err := <-firstErr; err != nil {
				t.Fatal(err)
			}
			if err := <-secondErr; err != nil {
				t.Fatal(err)
			}
			if first.ExecutionID != held.ExecutionID || second.ExecutionID != held.ExecutionID || string(second.Output) != `"first"` {
				t.Fatalf("first %+v second %+v; want both to be %s", first, second, held.ExecutionID)
			}
		})
	}
}

func TestInvokeSync_CancelWhileWaitingForPendingClaimGivesUp(t *testing.T) {
	sq := newTestSyncQueue()
	sq.entered = make(chan *execution.Task, 1)
	sq.proceed = make(chan struct{})
	h := newHarness(t, harnessOpts{enqueuer: newTestEnqueuer(true), syncQueue: sq})
	h.register("echo", function.ModeLocal, "")
	held, firstRes, firstErr := heldAdmission(t, h, sq, "k")

	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := h.svc.InvokeSync(ctx, "echo", request(`1`), Options{IdempotencyKey: "k"})
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond) // let it block on the pending claim
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}

	sq.proceed <- struct{}{}
	if resp := <-firstRes; <-firstErr != nil || resp.ExecutionID != held.ExecutionID || resp.Status != StatusSuccess {
		t.Errorf("first request = %+v, want success of %s", resp, held.ExecutionID)
	}
	if h.store.Len() != 1 {
		t.Errorf("executions = %d, want 1", h.store.Len())
	}
}

func TestInvokeSync_ClientCancelDoesNotTimeOutOrCancelExecution(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	rt, release := h.newHeldRuntime()
	h.register("fn", function.ModePool, rt.URL(), timeoutMs(30_000))

	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		// A wait shorter than the function's timeout: the attempt runs in its own goroutine, so
		// the caller is free to leave at once.
		opt := Options{IdempotencyKey: "k", TimeoutMs: new(29_000)}
		_, err := h.svc.InvokeSync(ctx, "fn", request(`"x"`), opt)
		errc <- err
	}()
	waitFor(t, "the runtime to be called", func() bool { return rt.count() == 1 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	id := rt.Calls()[0].ExecutionID
	if got := h.state(id); got != execution.StateRunning {
		t.Errorf("state after disconnect = %v, want running", got)
	}

	close(release)
	h.waitIdle()
	if got := h.state(id); got != execution.StateSuccess {
		t.Errorf("state = %v, want success: the execution is not cancelled", got)
	}
	if resp := h.mustInvoke("fn", `"x"`, Options{IdempotencyKey: "k"}); resp.ExecutionID != id || resp.Status != StatusSuccess {
		t.Errorf("replay = %+v", resp)
	}
	h.expectMetrics("fn", map[string]float64{"function_timeout_total": 0, "function_success_total": 1})
}

// A caller that may wait as long as the attempt can take runs it on its own goroutine: a
// disconnect then neither cancels the attempt nor marks a timeout; the caller returns once the
// attempt has completed the execution, with its outcome (nobody reads it over HTTP).
func TestInvokeSync_CallerRunAttemptSurvivesClientCancel(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	rt, release := h.newHeldRuntime()
	h.register("fn", function.ModePool, rt.URL(), timeoutMs(30_000))

	ctx, cancel := context.WithCancel(t.Context())
	type result struct {
		resp Response
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := h.svc.InvokeSync(ctx, "fn", request(`"x"`), Options{IdempotencyKey: "k"})
		done <- result{resp, err}
	}()
	waitFor(t, "the runtime to be called", func() bool { return rt.count() == 1 })
	cancel()
	select {
	case r := <-done:
		t.Fatalf("returned %+v while running the attempt", r)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if r := <-done; r.err != nil || r.resp.Status != StatusSuccess {
		t.Fatalf("InvokeSync = %+v, %v; want the success", r.resp, r.err)
	}
	id := rt.Calls()[0].ExecutionID
	if got := h.state(id); got != execution.StateSuccess {
		t.Errorf("state = %v, want success", got)
	}
	if resp := h.mustInvoke("fn", `"x"`, Options{IdempotencyKey: "k"}); resp.ExecutionID != id || resp.Status != StatusSuccess {
		t.Errorf("replay = %+v", resp)
	}
	h.expectMetrics("fn", map[string]float64{"function_timeout_total": 0, "function_success_total": 1, "function_dispatch_total": 1})
}

func TestCallerMayRun_OnlyWhenTheCallerWaitsAtLeastTheAttemptTimeout(t *testing.T) {
	spec := func(mode function.ExecutionMode, ms int) *function.Spec {
		return &function.Spec{ExecutionMode: &mode, TimeoutMs: &ms}
	}
	for _, tc := range []struct {
		spec *function.Spec
		wait int
		want bool
	}{
		{spec(function.ModePool, 1000), 1000, true},
		{spec(function.ModeDeployment, 1000), 5000, true},
		{spec(function.ModePool, 1000), 999, false},
		{spec(function.ModePool, 0), 1000, false}, // unbounded attempt
		{spec(function.ModeLocal, 1000), 1000, false},
		{spec(function.ModePool, 1000), maxTimeoutMs + 1, false},
	} {
		if got := callerMayRun(tc.spec, tc.wait); got != tc.want {
			t.Errorf("mode %s timeout %d, wait %d: %v, want %v", tc.spec.Mode(), tc.spec.Timeout(), tc.wait, got, tc.want)
		}
	}
}

func TestInvokeSync_WaiterTimeoutIsStickyAndDoesNotPublish(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	rt, release := h.newHeldRuntime()
	h.register("fn", function.ModePool, rt.URL())

	// A long waiter joins; a second waiter with a short X-Timeout-Ms times the shared execution out.
	longRes := make(chan Response, 1)
	go func() {
		resp, _ := h.invoke("fn", `1`, Options{IdempotencyKey: "k", TimeoutMs: ptrTo(300)})
		longRes <- resp
	}()
	waitFor(t, "the runtime to be called", func() bool { return rt.count() == 1 })
	short := h.mustInvoke("fn", `1`, Options{IdempotencyKey: "k", TimeoutMs: ptrTo(50)})
	if short.Status != StatusTimeout || short.Output != nil || short.Error != nil {
		t.Fatalf("short waiter = %+v, want bare timeout", short)
	}
	rec := h.record(short.ExecutionID)
	if done(rec) {
		t.Fatal("the waiter's timeout published the shared completion")
	}
	long := <-longRes // [QUIRK] the original waiter can never get the real result
	if long.Status != StatusTimeout || long.ExecutionID != short.ExecutionID {
		t.Errorf("long waiter = %+v, want timeout of the same execution", long)
	}

	close(release)
	h.waitIdle()
	if rec.State() != execution.StateTimeout || done(rec) {
		t.Errorf("after the late success: state %v, published %v; want timeout, unpublished", rec.State(), done(rec))
	}
	replay := h.mustInvoke("fn", `1`, Options{IdempotencyKey: "k"})
	if replay.Status != StatusTimeout || replay.ExecutionID != short.ExecutionID {
		t.Errorf("replay = %+v, want timeout", replay)
	}
	if st, _ := h.svc.Execution(short.ExecutionID); st.Status != "timeout" || st.Output != nil {
		t.Errorf("status = %+v, want timeout without output", st)
	}
	h.expectMetrics("fn", map[string]float64{"function_timeout_total": 2, "function_success_total": 0, "function_dispatch_total": 1})
}

func TestInvokeSync_NonPositiveTimeout(t *testing.T) {
	for _, ms := range []int{0, -5} {
		t.Run("local completes inline", func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			h.register("echo", function.ModeLocal, "")
			resp := h.mustInvoke("echo", `1`, timeoutAfter(ms))
			if resp.Status != StatusSuccess || string(resp.Output) != "1" {
				t.Errorf("X-Timeout-Ms %d: %+v, want success", ms, resp)
			}
		})
		t.Run("pool times out immediately", func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			// The runtime answers only after the caller has its answer: a fast runtime could
			// otherwise complete the attempt before the caller looks, and a completed outcome wins.
			rt, answered := h.newHeldRuntime()
			h.register("fn", function.ModePool, rt.URL())
			start := time.Now()
			resp := h.mustInvoke("fn", `1`, timeoutAfter(ms))
			close(answered)
			if resp.Status != StatusTimeout || time.Since(start) > time.Second {
				t.Errorf("X-Timeout-Ms %d: %+v after %v, want an immediate timeout", ms, resp, time.Since(start))
			}
			h.waitIdle()
			if rt.count() != 1 || h.state(resp.ExecutionID) != execution.StateTimeout {
				t.Errorf("runtime calls %d state %v; want 1 and timeout", rt.count(), h.state(resp.ExecutionID))
			}
			h.expectMetrics("fn", map[string]float64{"function_timeout_total": 1, "function_success_total": 0})
		})
	}
}

func TestInvokeSync_HugeTimeoutDoesNotOverflow(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	rt := h.newRuntime(func(w http.ResponseWriter, r *http.Request, c call) {
		time.Sleep(5 * time.Millisecond)
		echoJSON(w, r, c)
	})
	h.register("fn", function.ModePool, rt.URL())
	resp := h.mustInvoke("fn", `1`, timeoutAfter(maxTimeoutMs+1))
	if resp.Status != StatusSuccess {
		t.Errorf("response = %+v, want success", resp)
	}
}

func TestInvokeAsync(t *testing.T) {
	t.Run("without async queue is unavailable and leaves nothing", func(t *testing.T) {
		h := newHarness(t, harnessOpts{})
		h.register("echo", function.ModeLocal, "")
		_, err := h.svc.InvokeAsync(t.Context(), "echo", request(`1`), Options{IdempotencyKey: "k"})
		if !errors.Is(err, ErrAsyncQueueUnavailable) || err.Error() != "Async queue module not loaded" {
			t.Fatalf("err = %v, want ErrAsyncQueueUnavailable", err)
		}
		if h.store.Len() != 0 || h.idem.Len() != 0 {
			t.Errorf("store %d idempotency %d after 501, want 0 and 0", h.store.Len(), h.idem.Len())
		}
	})
	t.Run("queue full rolls back", func(t *testing.T) {
		enq := newTestEnqueuer(true)
		enq.refuse = func(*execution.Task) bool { return true }
		h := newHarness(t, harnessOpts{enqueuer: enq})
		h.register("echo", function.ModeLocal, "")
		if _, err := h.svc.InvokeAsync(t.Context(), "echo", request(`1`), Options{IdempotencyKey: "k"}); !errors.Is(err, ErrQueueFull) {
			t.Fatalf("err = %v, want ErrQueueFull", err)
		}
		if h.store.Len() != 0 || h.idem.Len() != 0 {
			t.Errorf("store %d idempotency %d, want 0 and 0", h.store.Len(), h.idem.Len())
		}
		h.expectMetrics("echo", map[string]float64{"function_queue_rejected_total": 1})
	})
	t.Run("replay returns the id without re-enqueueing and shares the sync namespace", func(t *testing.T) {
		enq := newTestEnqueuer(true)
		h := newHarness(t, harnessOpts{enqueuer: enq})
		h.register("echo", function.ModeLocal, "")
		id1, err := h.svc.InvokeAsync(t.Context(), "echo", request(`1`), Options{IdempotencyKey: "k"})
		if err != nil {
			t.Fatal(err)
		}
		id2, err := h.svc.InvokeAsync(t.Context(), "echo", request(`2`), Options{IdempotencyKey: "k"})
		if err != nil || id2 != id1 {
			t.Fatalf("replay id = %s, %v; want %s", id2, err, id1)
		}
		if sync := h.mustInvoke("echo", `3`, Options{IdempotencyKey: "k"}); sync.ExecutionID != id1 || string(sync.Output) != "1" {
			t.Errorf(":invoke with the same key = %+v, want the execution %s", sync, id1)
		}
		if len(enq.Tasks()) != 1 {
			t.Errorf("enqueues = %d, want 1", len(enq.Tasks()))
		}
		h.expectMetrics("echo", map[string]float64{"function_enqueue_total": 1, "function_success_total": 1})
	})
}

func TestExecution_ReportsStatusOrNotFound(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	if _, ok := h.svc.Execution("missing"); ok {
		t.Error("unknown execution must not be found")
	}
	h.register("echo", function.ModeLocal, "")
	rec := h.newExecution("echo", "")
	if st, ok := h.svc.Execution(rec.ID()); !ok || st.Status != "queued" || st.ExecutionID != rec.ID() || st.StartedAt != nil {
		t.Errorf("status of a fresh execution = %+v", st)
	}
}
