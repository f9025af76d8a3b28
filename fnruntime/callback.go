package fnruntime

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// callbacks delivers completion callbacks: POST {"success","output","error"} to
// <CALLBACK_URL>/<executionId>:complete from a fixed set of workers fed by a bounded queue.
type callbacks struct {
	client         *http.Client
	ownClient      bool // created here, so Close may drop its idle connections
	delays         []time.Duration
	workers, size  int
	attemptTimeout time.Duration

	base  string // normalized CALLBACK_URL; "" = callbacks off
	log   *slog.Logger
	queue chan callbackItem
	wg    sync.WaitGroup
	// ctx is cancelled only when Close runs out of time: in-flight posts and retry waits stop.
	ctx    context.Context
	cancel context.CancelFunc
}

type callbackItem struct {
	url     string
	traceID string
	attempt string // X-Dispatch-Attempt exactly as received; "" = not sent
	body    []byte
}

// Callback defaults (spec-core §6.10: three attempts, 100 ms then 500 ms apart; the reference
// lists a third delay, 2000 ms, that its three-attempt loop never reaches).
func defaultCallbacks() callbacks {
	return callbacks{
		delays:         []time.Duration{100 * time.Millisecond, 500 * time.Millisecond},
		workers:        2,
		size:           128,
		attemptTimeout: 5 * time.Second,
	}
}

func (c *callbacks) enabled() bool { return c.base != "" }

func (c *callbacks) start(rawURL string, log *slog.Logger) {
	c.base = callbackBase(rawURL)
	c.log = log
	if c.base == "" {
		return
	}
	if c.client == nil {
		c.client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
		c.ownClient = true
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.queue = make(chan callbackItem, c.size)
	for range c.workers {
		c.wg.Go(c.work)
	}
}

// callbackBase normalizes CALLBACK_URL like the reference SDKs: trim spaces and trailing '/',
// and drop a trailing "/<x>:complete" so the execution id is always the one appended.
func callbackBase(raw string) string {
	base := strings.TrimRight(strings.TrimSpace(raw), "/")
	if strings.HasSuffix(base, ":complete") {
		if i := strings.LastIndexByte(base, '/'); i >= 0 {
			base = base[:i]
		}
	}
	return base
}

// submitCallback queues the callback for out without blocking; it is dropped (and logged) when
// the queue is full or the runtime is closing.
func (rt *Runtime) submitCallback(id, traceID, attempt string, out outcome) {
	item := callbackItem{
		url:     rt.cb.base + "/" + url.PathEscape(id) + ":complete",
		traceID: traceID,
		attempt: attempt,
		body:    callbackBody(out),
	}
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	if rt.closed {
		rt.log.Warn("runtime closing, callback dropped", "executionId", id)
		return
	}
	select {
	case rt.cb.queue <- item:
	default:
		rt.log.Warn("callback queue full, callback dropped", "executionId", id)
	}
}

// callbackBody renders InvocationResult with all three keys; a success reuses the already
// encoded output instead of encoding it again.
func callbackBody(out outcome) []byte {
	if out.code == "" {
		b := make([]byte, 0, len(out.output)+len(`{"success":true,"output":,"error":null}`))
		b = append(b, `{"success":true,"output":`...)
		b = append(b, out.output...)
		return append(b, `,"error":null}`...)
	}
	msg, _ := json.Marshal(out.message)
	b := make([]byte, 0, len(msg)+len(out.code)+64)
	b = append(b, `{"success":false,"output":null,"error":{"code":"`...)
	b = append(b, out.code...) // fixed ASCII codes, no escaping needed
	b = append(b, `","message":`...)
	b = append(b, msg...)
	return append(b, `}}`...)
}

func (c *callbacks) work() {
	abandoned := 0
	for item := range c.queue {
		if c.ctx.Err() != nil {
			abandoned++
			continue
		}
		c.deliver(item)
	}
	if abandoned > 0 {
		c.log.Warn("shutdown deadline reached, callbacks not delivered", "count", abandoned)
	}
}

// deliver posts item, retrying network errors, 408, 429 and 5xx after the configured delays.
func (c *callbacks) deliver(item callbackItem) {
	for try := 0; ; try++ {
		retry, err := c.post(item)
		if err == nil {
			return
		}
		if !retry || try >= len(c.delays) {
			c.log.Warn("callback failed", "url", item.url, "attempts", try+1, "error", err)
			return
		}
		t := time.NewTimer(c.delays[try])
		select {
		case <-t.C:
		case <-c.ctx.Done():
			t.Stop()
			c.log.Warn("callback abandoned at shutdown", "url", item.url, "error", err)
			return
		}
	}
}

func (c *callbacks) post(item callbackItem) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(c.ctx, c.attemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, item.url, bytes.NewReader(item.body))
	if err != nil {
		return false, err // a malformed CALLBACK_URL will not get better
	}
	req.Header["Content-Type"] = []string{"application/json"}
	if item.traceID != "" {
		req.Header[headerTraceID] = []string{item.traceID}
	}
	if item.attempt != "" {
		req.Header[headerAttempt] = []string{item.attempt}
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return c.ctx.Err() == nil, err
	}
	// Drain a little so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch s := resp.StatusCode; {
	case s < 400:
		return false, nil
	case s == http.StatusRequestTimeout, s == http.StatusTooManyRequests, s >= 500:
		return true, fmt.Errorf("callback answered %d", s)
	default:
		return false, fmt.Errorf("callback answered %d (not retried)", s)
	}
}

// stop ends delivery: queued callbacks are still delivered until ctx expires, then in-flight
// posts and retry waits are cancelled and the rest is dropped. It returns once every worker has
// exited. The caller guarantees no submit runs concurrently (Runtime.closed).
func (c *callbacks) stop(ctx context.Context) error {
	if c.queue == nil {
		return nil
	}
	close(c.queue)
	err := waitGroup(ctx, &c.wg)
	if err != nil {
		c.cancel()
		c.wg.Wait() // prompt: every post and wait now sees the cancelled context
	}
	c.cancel()
	if c.ownClient {
		c.client.CloseIdleConnections()
	}
	return err
}

// waitGroup waits for wg until ctx is done. The helper goroutine lives until wg is done.
func waitGroup(ctx context.Context, wg *sync.WaitGroup) error {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
