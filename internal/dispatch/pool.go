package dispatch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nanofaas/control-plane/internal/execution"
)

const (
	// initialReadBuf is the starting size of pooled response buffers; typical replies fit.
	initialReadBuf = 4 << 10
	// maxPooledBuf keeps one huge reply from pinning megabytes in the pool forever.
	maxPooledBuf = 1 << 20
	// drainLimit bounds how much of an abandoned body is read so the connection can be reused;
	// anything longer is cheaper to drop with the connection.
	drainLimit = 64 << 10
)

// errTooLarge marks a response body over the configured buffer limit.
var errTooLarge = errors.New("response body too large")

// Pool is the POOL/DEPLOYMENT dispatcher: it POSTs the invocation to the function's endpointUrl
// and turns the HTTP exchange into a DispatchResult (spec-core §6.8, DECISIONS.md D3). It is safe
// for concurrent use.
type Pool struct {
	// rt is the client's transport, called directly: the client layer (redirects, cookie jar,
	// header copying) does nothing for this exchange and costs ~6 allocations per dispatch.
	rt       http.RoundTripper
	maxBytes int64
	// defaultTimeout bounds an exchange whose spec has no timeoutMs (read-timeout-ms); 0 = none.
	defaultTimeout time.Duration
	bufs           sync.Pool // *[]byte response buffers, reused across dispatches
}

// PoolOption configures a Pool.
type PoolOption func(*Pool)

// WithDefaultTimeout bounds the exchanges of specs without a positive timeoutMs
// (nanofaas.http-client.read-timeout-ms: the client-wide response timeout that a spec's
// timeoutMs overrides). Without it such an exchange is bounded only by its context.
func WithDefaultTimeout(d time.Duration) PoolOption {
	return func(p *Pool) { p.defaultTimeout = max(d, 0) }
}

// NewPool returns a Pool sending through client (normally the shared NewHTTPClient) and buffering
// at most maxResponseBytes of each response body (<= 0 → 16 MiB).
func NewPool(client *http.Client, maxResponseBytes int64, opts ...PoolOption) *Pool {
	if maxResponseBytes <= 0 {
		maxResponseBytes = DefaultMaxResponseBytes
	}
	rt := http.DefaultTransport
	if client != nil && client.Transport != nil {
		rt = client.Transport
	}
	p := &Pool{rt: rt, maxBytes: maxResponseBytes}
	for _, o := range opts {
		o(p)
	}
	p.bufs.New = func() any {
		b := make([]byte, 0, initialReadBuf)
		return &b
	}
	return p
}

// Dispatch performs one HTTP exchange with the function. It returns an error only for a task
// without a spec or when ctx itself ends (the caller gave up), never for function-side failures.
func (p *Pool) Dispatch(ctx context.Context, task *execution.Task) (execution.DispatchResult, error) {
	if task == nil || task.Spec == nil {
		return execution.DispatchResult{}, errNoSpec
	}
	endpoint := task.Spec.Endpoint()
	if strings.TrimSpace(endpoint) == "" {
		return warmError(CodeEndpointMissing, "endpointUrl is required for POOL mode"), nil
	}

	// The spec timeout covers the whole exchange, body included; without one the client-wide
	// default applies, and without that only ctx bounds it.
	timeout := time.Duration(task.Spec.Timeout()) * time.Millisecond
	if timeout <= 0 {
		timeout = p.defaultTimeout
	}
	timeoutMs := int(timeout / time.Millisecond)
	reqCtx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		reqCtx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}

	req, err := http.NewRequestWithContext(reqCtx, http.MethodPost, endpoint, bytes.NewReader(encodeRequest(task.Request)))
	if err != nil {
		return warmError(CodePoolError, err.Error()), nil
	}
	setRequestHeaders(req.Header, task)

	resp, err := p.rt.RoundTrip(req)
	if err != nil {
		return p.failure(ctx, reqCtx, timeoutMs, err)
	}

	bufp := p.bufs.Get().(*[]byte)
	body, readErr := readBody(resp.Body, resp.ContentLength, p.maxBytes, *bufp)
	if readErr != nil {
		// Bounded drain: reuse the connection when little is left, drop it otherwise.
		_, _ = io.CopyN(io.Discard, resp.Body, drainLimit)
	}
	_ = resp.Body.Close()
	defer p.putBuf(bufp, body)

	switch {
	case errors.Is(readErr, errTooLarge):
		return warmError(CodePoolError, "Exceeded limit on max bytes to buffer : "+strconv.FormatInt(p.maxBytes, 10)), nil
	case readErr != nil:
		return p.failure(ctx, reqCtx, timeoutMs, readErr)
	}

	var result execution.Result
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		var ok bool
		if result, ok = decodeSuccess(headerValue(resp.Header, "Content-Type"), body); !ok {
			// Decoding failures are exceptions in the reference, which report warm.
			return execution.Warm(result), nil
		}
	} else {
		result = execution.ErrorResult(CodePoolError, statusMessage(resp.StatusCode, body))
	}
	return execution.DispatchResult{
		Result:         result,
		ColdStart:      strings.EqualFold(headerValue(resp.Header, "X-Cold-Start"), "true"),
		InitDurationMs: parseInitDuration(headerValue(resp.Header, "X-Init-Duration-Ms")),
	}, nil
}

// failure maps a transport error: the caller's own cancellation is an error, our deadline is
// POOL_TIMEOUT, anything else POOL_ERROR with the error text.
func (p *Pool) failure(ctx, reqCtx context.Context, timeoutMs int, err error) (execution.DispatchResult, error) {
	if ctx.Err() != nil {
		return execution.DispatchResult{}, fmt.Errorf("pool dispatch abandoned: %w", context.Cause(ctx))
	}
	if errors.Is(reqCtx.Err(), context.DeadlineExceeded) {
		return warmError(CodePoolTimeout, "Pool request timed out after "+strconv.Itoa(timeoutMs)+"ms"), nil
	}
	return warmError(CodePoolError, err.Error()), nil
}

// putBuf returns the (possibly grown) read buffer to the pool unless it grew too large to keep.
func (p *Pool) putBuf(bufp *[]byte, used []byte) {
	if cap(used) > maxPooledBuf {
		return
	}
	*bufp = used[:0]
	p.bufs.Put(bufp)
}

// setRequestHeaders sets the invoke headers of runtime-contract §1.2. Values share one backing
// array (one allocation instead of one per header); the full slice expressions keep an append by
// someone else from clobbering a neighbour.
func setRequestHeaders(h http.Header, task *execution.Task) {
	vals := [5]string{"application/json", task.ExecutionID, strconv.Itoa(task.Attempt)}
	v := vals[:]
	h["Content-Type"] = v[0:1:1]
	h["X-Execution-Id"] = v[1:2:2]
	h["X-Dispatch-Attempt"] = v[2:3:3]
	if task.TraceID != nil {
		v[3] = *task.TraceID
		h["X-Trace-Id"] = v[3:4:4]
	}
	if task.IdempotencyKey != "" {
		v[4] = task.IdempotencyKey
		h["Idempotency-Key"] = v[4:5:5]
	}
}

// headerValue returns the first value of a canonical header key without re-canonicalizing it.
func headerValue(h http.Header, canonicalKey string) string {
	if v := h[canonicalKey]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// parseInitDuration parses X-Init-Duration-Ms as a long; missing or invalid → nil.
func parseInitDuration(v string) *int64 {
	if v == "" {
		return nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return nil
	}
	return &n
}

// readBody reads r to EOF into buf (reused, grown as needed) and fails with errTooLarge as soon as
// more than limit bytes arrive. Reading to EOF is what lets the transport reuse the connection.
func readBody(r io.Reader, contentLength, limit int64, buf []byte) ([]byte, error) {
	b := buf[:0]
	if contentLength > limit {
		return b, errTooLarge
	}
	if contentLength > int64(cap(b)) {
		b = make([]byte, 0, contentLength)
	}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // amortized growth
		}
		window := b[len(b):cap(b)]
		if rem := limit + 1 - int64(len(b)); int64(len(window)) > rem {
			window = window[:rem] // never read more than one byte past the limit
		}
		n, err := r.Read(window)
		b = b[:len(b)+n]
		if int64(len(b)) > limit {
			return b, errTooLarge
		}
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

func warmError(code, message string) execution.DispatchResult {
	return execution.Warm(execution.ErrorResult(code, message))
}
