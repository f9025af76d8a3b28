package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nanofaas/control-plane/fnruntime"
)

// childShutdownBudget bounds a child's graceful shutdown. It must exceed 5 s: net/http's Shutdown
// waits for a connection that was opened but never sent a request until it is 5 s old (a load
// client's transport leaves such speculative dials in its pool), so a 5 s budget races that rule.
const childShutdownBudget = 10 * time.Second

// Control routes of the runtime child (on their own listener, so the function port serves
// exactly what fnruntime serves in production).
const (
	pathRecord   = "/bench/record"   // POST ?on=true|false: record invocation times or not
	pathCount    = "/bench/count"    // GET: {"count":n} recorded so far
	pathRecorded = "/bench/recorded" // POST: {"at":{executionId:unixNanos}}, then forget them
)

// noopOutput is what the bench function returns: a fixed, already-encoded JSON value.
var noopOutput = json.RawMessage(`{"ok":true}`)

// recorder is the bench function: a no-op that, when switched on, notes when each execution
// reached it (wall clock, comparable with the harness's clock on the same machine).
type recorder struct {
	now func() time.Time
	// on is read by every invocation; an atomic keeps the no-recording path lock-free.
	on atomic.Bool
	mu sync.Mutex
	at map[string]int64
}

func newRecorder(now func() time.Time) *recorder {
	return &recorder{now: now, at: make(map[string]int64)}
}

func (r *recorder) handle(_ context.Context, req fnruntime.Request) (any, error) {
	if r.on.Load() {
		t := r.now().UnixNano()
		r.mu.Lock()
		r.at[req.ExecutionID] = t
		r.mu.Unlock()
	}
	return noopOutput, nil
}

func (r *recorder) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+pathRecord, func(w http.ResponseWriter, req *http.Request) {
		on, err := strconv.ParseBool(req.URL.Query().Get("on"))
		if err != nil {
			http.Error(w, "on must be true or false", http.StatusBadRequest)
			return
		}
		r.on.Store(on)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET "+pathCount, func(w http.ResponseWriter, _ *http.Request) {
		r.mu.Lock()
		n := len(r.at)
		r.mu.Unlock()
		writeJSONBody(w, map[string]int{"count": n})
	})
	mux.HandleFunc("POST "+pathRecorded, func(w http.ResponseWriter, _ *http.Request) {
		r.mu.Lock()
		at := r.at
		r.at = make(map[string]int64)
		r.mu.Unlock()
		writeJSONBody(w, map[string]map[string]int64{"at": at})
	})
	return mux
}

func writeJSONBody(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// runRuntimeChild is -mode=runtime: the project's Go function runtime (fnruntime) serving the
// no-op bench function on a loopback port, plus the recorder's control routes on another.
// It prints "BENCH-LISTEN <function addr> <control addr>" and runs until ctx ends.
func runRuntimeChild(ctx context.Context, stdout io.Writer, log *slog.Logger) error {
	fnLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	ctlLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = fnLn.Close()
		return err
	}
	rec := newRecorder(time.Now)
	// No CALLBACK_URL: POOL functions are completed from the HTTP response alone, and a callback
	// per invocation would double the control plane's work in this benchmark.
	rt := fnruntime.New(rec.handle, fnruntime.Config{Timeout: fnruntime.DefaultTimeout},
		fnruntime.WithLogger(log), fnruntime.WithShutdownGrace(childShutdownBudget))
	ctl := &http.Server{Handler: rec.routes(), ReadHeaderTimeout: 10 * time.Second}

	fmt.Fprintf(stdout, "%s%s %s\n", listenPrefix, fnLn.Addr(), ctlLn.Addr())
	ctlErr := make(chan error, 1)
	go func() { ctlErr <- ctl.Serve(ctlLn) }()
	err = rt.Serve(ctx, fnLn) // returns after ctx ends and a graceful shutdown
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), childShutdownBudget)
	defer cancel()
	err = errors.Join(err, ctl.Shutdown(sctx))
	if e := <-ctlErr; !errors.Is(e, http.ErrServerClosed) {
		err = errors.Join(err, e)
	}
	return err
}

// runProxyChild is -mode=reverse-proxy: a bare httputil.ReverseProxy to target on a loopback port,
// the floor for one Go HTTP hop. Its transport is tuned like the control plane's dispatch client
// (same idle pool, HTTP/1.1, no compression), so the comparison is hop against hop.
func runProxyChild(ctx context.Context, stdout io.Writer, log *slog.Logger, target string) error {
	u, err := url.Parse(target)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return fmt.Errorf("-target must be an absolute URL, got %q", target)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	transport := &http.Transport{
		Protocols:           &protocols,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	defer transport.CloseIdleConnections()
	proxy := &httputil.ReverseProxy{
		Rewrite:    func(pr *httputil.ProxyRequest) { pr.SetURL(u) },
		Transport:  transport,
		BufferPool: newBufferPool(256, 32<<10),
		ErrorLog:   slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "%s%s\n", listenPrefix, ln.Addr())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err = <-served:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), childShutdownBudget)
	defer cancel()
	err = srv.Shutdown(sctx)
	if e := <-served; !errors.Is(e, http.ErrServerClosed) {
		err = errors.Join(err, e)
	}
	return err
}

// bufferPool is the proxy's copy-buffer pool: a bounded free list, so Get and Put do not allocate
// (httputil's default allocates 32 KiB per request).
type bufferPool struct {
	free chan []byte
	size int
}

func newBufferPool(n, size int) *bufferPool {
	return &bufferPool{free: make(chan []byte, n), size: size}
}

func (p *bufferPool) Get() []byte {
	select {
	case b := <-p.free:
		return b
	default:
		return make([]byte, p.size)
	}
}

func (p *bufferPool) Put(b []byte) {
	select {
	case p.free <- b:
	default:
	}
}
