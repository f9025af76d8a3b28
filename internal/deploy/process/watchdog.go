package process

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nanofaas/control-plane/internal/deploy/proxy"
	"github.com/nanofaas/control-plane/internal/function"
)

// Limits of the built-in watchdog.
const (
	maxWatchdogBody   = 64 << 20 // request body accepted
	maxWatchdogOutput = 16 << 20 // stdout / OUTPUT_FILE read (the dispatcher's own limit)
	stderrTailBytes   = 64 << 10
)

// watchdogConfig is what the built-in watchdog of one function runs.
type watchdogConfig struct {
	function string
	mode     function.RuntimeMode // STDIO or FILE
	argv     []string
	env      []string
	dir      string
	timeout  time.Duration
	logger   *slog.Logger
}

// watchdog is the built-in STDIO/FILE watchdog of one function (runtime-contract §1.6, warm
// mode): an HTTP server on a loopback port whose POST /invoke runs the command once per request.
// Replicas are concurrency slots: at most `slots` commands run at a time.
type watchdog struct {
	cfg    watchdogConfig
	url    string
	tmpDir string // FILE mode: per-request input/output files

	slots slots

	ctx      context.Context // request contexts derive from it; cancelled on close
	cancel   context.CancelFunc
	server   *http.Server
	served   chan struct{}
	inflight sync.WaitGroup // handlers, waited for on close
}

// defaultWatchdogTimeout is the reference watchdog's TIMEOUT_MS default, for a spec without one.
const defaultWatchdogTimeout = 30 * time.Second

func newWatchdog(cfg watchdogConfig) (*watchdog, error) {
	if cfg.timeout <= 0 {
		cfg.timeout = defaultWatchdogTimeout
	}
	w := &watchdog{cfg: cfg, served: make(chan struct{})}
	w.slots.changed = make(chan struct{})
	if cfg.mode == function.RuntimeFILE {
		dir, err := os.MkdirTemp("", "nanofaas-watchdog-")
		if err != nil {
			return nil, err
		}
		w.tmpDir = dir
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		w.removeTmp()
		return nil, err
	}
	w.url = "http://" + ln.Addr().String() + "/invoke"
	w.ctx, w.cancel = context.WithCancel(context.Background())
	w.server = &http.Server{
		Handler:           w,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       90 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return w.ctx },
		ErrorLog:          slog.NewLogLogger(cfg.logger.Handler(), slog.LevelDebug),
	}
	go func() {
		defer close(w.served)
		if err := w.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			cfg.logger.Error("watchdog stopped serving", "error", err)
		}
	}()
	return w, nil
}

func (w *watchdog) setSlots(n int) { w.slots.setLimit(n) }

func (w *watchdog) slotCount() int { return w.slots.limit() }

// close stops serving: in-flight commands get until ctx is done, then are killed; it returns when
// every handler (and so every command) has finished.
func (w *watchdog) close(ctx context.Context) error {
	w.setSlots(0)
	err := w.server.Shutdown(ctx)
	if err != nil {
		w.cancel() // kills running commands
		_ = w.server.Close()
	}
	<-w.served
	w.cancel()
	w.inflight.Wait()
	w.removeTmp()
	return err
}

func (w *watchdog) removeTmp() {
	if w.tmpDir != "" {
		if err := os.RemoveAll(w.tmpDir); err != nil {
			w.cfg.logger.Warn("watchdog: cannot remove temp dir", "dir", w.tmpDir, "error", err)
		}
	}
}

func (w *watchdog) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w.inflight.Add(1)
	defer w.inflight.Done()
	path := r.URL.Path
	switch {
	case strings.HasPrefix(path, "/invoke"):
		switch r.Method {
		case http.MethodPost:
			w.invoke(rw, r)
		case http.MethodGet, http.MethodHead:
			rw.WriteHeader(http.StatusOK) // older probes used GET /invoke
		default:
			rw.Header().Set("Allow", "GET, HEAD, POST")
			writeJSONError(rw, http.StatusMethodNotAllowed, "Method not allowed")
		}
	case strings.HasPrefix(path, "/health"):
		proxy.WriteHealth(rw, w.slots.limit() > 0)
	default:
		proxy.WriteText(rw, http.StatusNotFound, "Not Found")
	}
}

func (w *watchdog) invoke(rw http.ResponseWriter, r *http.Request) {
	execID := r.Header.Get("X-Execution-Id")
	if execID == "" {
		writeJSONError(rw, http.StatusBadRequest, "X-Execution-Id header is required")
		return
	}
	if w.slots.limit() == 0 {
		proxy.WriteNoBackends(rw)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxWatchdogBody+1))
	if err != nil {
		writeJSONError(rw, http.StatusBadRequest, "Cannot read request body: "+err.Error())
		return
	}
	if len(body) > maxWatchdogBody {
		writeJSONError(rw, http.StatusRequestEntityTooLarge, "Request body too large")
		return
	}
	var input bytes.Buffer
	if w.cfg.mode == function.RuntimeFILE {
		err = json.Indent(&input, body, "", "  ")
	} else {
		err = json.Compact(&input, body)
	}
	if err != nil {
		writeJSONError(rw, http.StatusBadRequest, "Request body is not valid JSON: "+err.Error())
		return
	}
	if err := w.slots.acquire(r.Context()); err != nil {
		if errors.Is(err, errNoSlots) {
			proxy.WriteNoBackends(rw)
		}
		return // the caller is gone
	}
	defer w.slots.release()

	out, failMsg := w.run(r.Context(), execID, r.Header.Get("X-Trace-Id"), input.Bytes())
	if r.Context().Err() != nil {
		return
	}
	if failMsg != "" {
		w.cfg.logger.Warn("watchdog invocation failed", "execution_id", execID, "error", failMsg)
		writeJSONError(rw, http.StatusInternalServerError, failMsg)
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	rw.Header().Set("Content-Length", strconv.Itoa(len(out)))
	rw.WriteHeader(http.StatusOK)
	_, _ = rw.Write(out)
}

// run executes the command once and returns its JSON result, or the client-visible failure
// message.
func (w *watchdog) run(parent context.Context, execID, traceID string, input []byte) (out []byte, failMsg string) {
	ctx, cancel := context.WithTimeout(parent, w.cfg.timeout)
	defer cancel()

	argv := w.cfg.argv
	// Checked per run because the supervisor would only report a missing command as exit 127.
	if err := checkExecutable(argv[0], w.cfg.dir); err != nil {
		return nil, fmt.Sprintf("Failed to run process %q: %v", argv[0], err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = w.cfg.dir
	env := make([]string, 0, len(w.cfg.env)+4)
	env = append(env, w.cfg.env...)
	env = append(env, "EXECUTION_ID="+execID, "TRACE_ID="+traceID)
	var inFile, outFile string
	if w.cfg.mode == function.RuntimeFILE {
		f, err := os.CreateTemp(w.tmpDir, "input-*.json")
		if err != nil {
			return nil, "Cannot create input file: " + err.Error()
		}
		inFile = f.Name()
		outFile = filepath.Join(w.tmpDir, "output-"+strings.TrimPrefix(filepath.Base(inFile), "input-"))
		defer func() { _ = os.Remove(inFile); _ = os.Remove(outFile) }()
		_, werr := f.Write(input)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return nil, "Cannot write input file: " + werr.Error()
		}
		env = append(env, "INPUT_FILE="+inFile, "OUTPUT_FILE="+outFile)
	} else {
		cmd.Stdin = bytes.NewReader(input)
	}
	cmd.Env = env
	stdout := &capBuffer{max: maxWatchdogOutput}
	stderr := &tailBuffer{max: stderrTailBytes}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = pipeWaitDelay

	// Under the supervisor (supervisor.go), like a replica, so that nothing the command starts
	// outlives the control plane. The timeout or a caller that went away kills the command;
	// the supervisor then exits and wait clears the strays left in the group.
	sp, err := startSupervised(ctx, cmd)
	if err == nil {
		stop := context.AfterFunc(ctx, sp.killCommand)
		err = sp.wait()
		stop()
	}
	stderrLine := lastLine(stderr.buf.Bytes())
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded) && parent.Err() == nil:
		return nil, appendDetail(fmt.Sprintf("Process timed out after %dms", w.cfg.timeout.Milliseconds()), stderrLine)
	case err != nil:
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			return nil, appendDetail("Process exited with "+exitText(exitErr), stderrLine)
		}
		return nil, fmt.Sprintf("Failed to run process %q: %v", argv[0], err)
	}

	if w.cfg.mode == function.RuntimeFILE {
		data, err := readCapped(outFile, maxWatchdogOutput)
		if err != nil {
			return nil, appendDetail("Cannot read OUTPUT_FILE: "+err.Error(), stderrLine)
		}
		out = data
	} else {
		if stdout.overflow {
			return nil, appendDetail(fmt.Sprintf("Output exceeds %d bytes", maxWatchdogOutput), stderrLine)
		}
		out = stdout.buf.Bytes()
	}
	out = bytes.TrimSpace(out)
	if !json.Valid(out) {
		what := "Invalid JSON output: expected exactly one JSON document on stdout"
		if w.cfg.mode == function.RuntimeFILE {
			what = "Invalid JSON output: expected exactly one JSON document in OUTPUT_FILE"
		}
		if len(out) == 0 {
			what += " (output was empty)"
		}
		return nil, appendDetail(what, stderrLine)
	}
	return out, ""
}

func exitText(err *exec.ExitError) string {
	if ws, ok := err.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "signal " + ws.Signal().String()
	}
	code := err.ExitCode()
	if sig, ok := shellSignal(code); ok { // the supervisor's 128+n
		return "signal " + sig.String() + " (code " + strconv.Itoa(code) + ")"
	}
	return "code " + strconv.Itoa(code)
}

func appendDetail(msg, stderrLine string) string {
	if stderrLine == "" {
		return msg
	}
	return msg + ": " + stderrLine
}

func lastLine(b []byte) string { return tailLines(b, 1) }

func readCapped(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("output exceeds %d bytes", limit)
	}
	return data, nil
}

// capBuffer keeps up to max bytes and records that more were written.
type capBuffer struct {
	buf      bytes.Buffer
	max      int
	overflow bool
}

func (c *capBuffer) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); len(p) > room {
		c.buf.Write(p[:max(room, 0)])
		c.overflow = true
		return len(p), nil
	}
	return c.buf.Write(p)
}

// tailBuffer keeps the last max bytes written (at most 2*max in memory).
type tailBuffer struct {
	buf bytes.Buffer
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	t.buf.Write(p)
	if t.buf.Len() > 2*t.max {
		t.buf.Next(t.buf.Len() - t.max)
	}
	return n, nil
}

// errNoSlots means the function has no replica (0 slots).
var errNoSlots = errors.New("no slots")

// slots is a counting semaphore whose size can change at run time; waiters are woken when a
// slot frees up or the size changes.
type slots struct {
	mu      sync.Mutex
	max     int
	used    int
	waiting int
	changed chan struct{} // closed and replaced to wake waiters
}

func (s *slots) acquire(ctx context.Context) error {
	for {
		s.mu.Lock()
		if s.max == 0 {
			s.mu.Unlock()
			return errNoSlots
		}
		if s.used < s.max {
			s.used++
			s.mu.Unlock()
			return nil
		}
		s.waiting++
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
			s.mu.Lock()
			s.waiting--
			s.mu.Unlock()
		case <-ctx.Done():
			s.mu.Lock()
			s.waiting--
			s.mu.Unlock()
			return ctx.Err()
		}
	}
}

func (s *slots) release() {
	s.mu.Lock()
	s.used--
	s.wakeLocked()
	s.mu.Unlock()
}

func (s *slots) setLimit(n int) {
	s.mu.Lock()
	s.max = n
	s.wakeLocked()
	s.mu.Unlock()
}

func (s *slots) limit() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.max
}

func (s *slots) wakeLocked() {
	if s.waiting > 0 {
		close(s.changed)
		s.changed = make(chan struct{})
	}
}

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	body, _ := json.Marshal(map[string]string{"error": msg})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
