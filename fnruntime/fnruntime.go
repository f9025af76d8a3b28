// Package fnruntime is the Go function runtime for nanofaas: it serves one Handler over the
// function-runtime contract the control plane speaks (runtime-contract.md §1): POST /invoke with
// {"input","metadata"} and the X-Execution-Id, X-Trace-Id and X-Dispatch-Attempt headers,
// GET /health, cold-start headers on the first invocation, a handler timeout from TIMEOUT_MS, and
// completion callbacks to CALLBACK_URL. It owns nothing else: no routing between several
// handlers, no metrics.
//
// A complete function:
//
//	func main() {
//		err := fnruntime.Serve(context.Background(), func(ctx context.Context, req fnruntime.Request) (any, error) {
//			var in struct{ Name string `json:"name"` }
//			if err := req.Decode(&in); err != nil {
//				return nil, err // 500 {"error": msg}, callback code HANDLER_ERROR
//			}
//			return map[string]string{"greeting": "hello " + in.Name}, nil
//		})
//		if err != nil {
//			log.Fatal(err)
//		}
//	}
//
// Serve reads PORT (default 8080), HOST (the address to listen on; all interfaces when empty),
// TIMEOUT_MS (default 30000), CALLBACK_URL (callbacks are off when empty) and TRACE_ID from the
// environment and returns nil after a graceful shutdown on ctx
// cancellation, SIGTERM or SIGINT. Use New and Runtime.Serve to embed the runtime or test it.
package fnruntime

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Request is one invocation as the handler sees it.
type Request struct {
	// Input is the raw JSON of the request's "input"; the JSON literal null when it was absent.
	Input json.RawMessage
	// Metadata is the request's string map; nil when absent or null.
	Metadata map[string]string
	// ExecutionID is the X-Execution-Id header (always non-empty).
	ExecutionID string
	// TraceID is the X-Trace-Id header, else the TRACE_ID environment variable, else "".
	TraceID string
	// Attempt is the 1-based X-Dispatch-Attempt header; 0 when absent or not a number.
	Attempt int
}

// Decode unmarshals Input into v.
func (r Request) Decode(v any) error { return json.Unmarshal(r.Input, v) }

// Handler runs one invocation. Its output is JSON-encoded (encoding/json rules; a
// json.RawMessage is sent as is) and becomes the invocation's output. A non-nil error fails the
// invocation with HTTP 500 {"error": err.Error()}. ctx is cancelled when the handler timeout
// expires or the caller goes away; a handler should return promptly then.
type Handler func(ctx context.Context, req Request) (any, error)

// Config is what the runtime takes from its environment (see ConfigFromEnv).
type Config struct {
	Port        string        // PORT; "" means 8080
	Host        string        // HOST, the address to listen on; "" means all interfaces
	Timeout     time.Duration // TIMEOUT_MS; 0 means no handler timeout
	CallbackURL string        // CALLBACK_URL; "" disables callbacks
	TraceID     string        // TRACE_ID, the fallback when a request has no X-Trace-Id
}

// Defaults of the environment settings.
const (
	DefaultPort    = "8080"
	DefaultTimeout = 30 * time.Second
)

// ConfigFromEnv reads PORT, HOST, TIMEOUT_MS, CALLBACK_URL and TRACE_ID through getenv
// (os.Getenv in production). An invalid TIMEOUT_MS is an error naming the variable, so a
// misconfigured replica fails at start-up instead of running with a surprising timeout.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	cfg := Config{
		Port:        strings.TrimSpace(getenv("PORT")),
		Host:        strings.TrimSpace(getenv("HOST")),
		Timeout:     DefaultTimeout,
		CallbackURL: strings.TrimSpace(getenv("CALLBACK_URL")),
		TraceID:     strings.TrimSpace(getenv("TRACE_ID")),
	}
	if cfg.Port == "" {
		cfg.Port = DefaultPort
	}
	if p, err := strconv.Atoi(cfg.Port); err != nil || p < 0 || p > 65535 {
		return Config{}, fmt.Errorf("fnruntime: PORT must be a port number, got %q", cfg.Port)
	}
	if raw := strings.TrimSpace(getenv("TIMEOUT_MS")); raw != "" {
		ms, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || ms <= 0 {
			return Config{}, fmt.Errorf("fnruntime: TIMEOUT_MS must be a positive number of milliseconds, got %q", raw)
		}
		cfg.Timeout = time.Duration(ms) * time.Millisecond
	}
	return cfg, nil
}

// Option tunes a Runtime beyond its Config.
type Option func(*Runtime)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(rt *Runtime) { rt.log = l } }

// WithClock sets the clock used for the cold-start init duration (default time.Now). The process
// start is taken as the clock's reading in New.
func WithClock(now func() time.Time) Option { return func(rt *Runtime) { rt.now = now } }

// WithHTTPClient sets the client used for callbacks. Its own timeout, if any, applies on top of
// the per-attempt timeout.
func WithHTTPClient(c *http.Client) Option {
	return func(rt *Runtime) { rt.cb.client, rt.cb.ownClient = c, false }
}

// WithCallbackRetryDelays sets the waits between callback attempts; the number of attempts is
// len(delays)+1 (default 100ms, 500ms: three attempts).
func WithCallbackRetryDelays(delays ...time.Duration) Option {
	return func(rt *Runtime) { rt.cb.delays = delays }
}

// WithCallbackQueue bounds callback delivery: workers concurrent deliveries and up to size
// waiting callbacks (default 2 and 128); a callback that finds the queue full is dropped and
// logged, because the HTTP response already carries the result.
func WithCallbackQueue(workers, size int) Option {
	return func(rt *Runtime) { rt.cb.workers, rt.cb.size = max(workers, 1), max(size, 0) }
}

// WithShutdownGrace bounds how long Serve waits for in-flight invocations and pending callbacks
// on shutdown (default 10s).
func WithShutdownGrace(d time.Duration) Option { return func(rt *Runtime) { rt.grace = d } }

// Runtime serves one Handler. It is an http.Handler; Serve/ListenAndServe run it on a listener
// and Close drains it. Safe for concurrent use.
type Runtime struct {
	handler Handler
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	grace   time.Duration
	start   time.Time

	// coldDone flips once, on the first invocation that reaches the handler; an atomic swap is
	// the whole "first request" test, with no lock on the hot path.
	coldDone atomic.Bool

	// mu guards closed against Add on handlers and sends on the callback queue, so Close never
	// races a late request (WaitGroup.Add after Wait, send on a closed channel).
	mu       sync.RWMutex
	closed   bool
	handlers sync.WaitGroup // handler goroutines, including ones abandoned after a timeout

	cb callbacks
}

// New returns a Runtime serving h with cfg. Callback workers start only when cfg.CallbackURL is
// set; call Close (Serve does) to stop them.
func New(h Handler, cfg Config, opts ...Option) *Runtime {
	rt := &Runtime{
		handler: h,
		cfg:     cfg,
		log:     slog.Default(),
		now:     time.Now,
		grace:   10 * time.Second,
		cb:      defaultCallbacks(),
	}
	for _, o := range opts {
		o(rt)
	}
	rt.start = rt.now()
	rt.cb.start(cfg.CallbackURL, rt.log)
	return rt
}
