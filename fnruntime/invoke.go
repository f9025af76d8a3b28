package fnruntime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"strconv"
)

// Wire names and messages of the function-runtime contract (runtime-contract.md §1.2–§1.5,
// spec-core.md §6.10).
const (
	headerExecutionID = "X-Execution-Id"
	headerTraceID     = "X-Trace-Id"
	headerAttempt     = "X-Dispatch-Attempt"
	headerColdStart   = "X-Cold-Start"
	headerInitMs      = "X-Init-Duration-Ms"

	codeHandlerError   = "HANDLER_ERROR"
	codeHandlerTimeout = "HANDLER_TIMEOUT"
	codeSerialization  = "OUTPUT_SERIALIZATION_ERROR"

	msgMissingID     = "X-Execution-Id header is required"
	msgMalformedBody = "Malformed request body"
	msgTimedOut      = "Handler timed out"
	msgTimeoutDetail = "Handler exceeded configured timeout"
	msgBodyTooLarge  = "Request body too large"
	msgShuttingDown  = "Runtime is shutting down"

	// maxBodyBytes matches the control plane's default request limit (16 MiB, DECISIONS.md D13).
	maxBodyBytes = 16 << 20
)

// Fixed response bodies, built once.
var (
	healthBody = []byte(`{"status":"ok"}`)
)

// ServeHTTP routes /invoke and /health; anything else is 404, a non-POST /invoke is 405.
func (rt *Runtime) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/invoke":
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, http.StatusMethodNotAllowed, "Method not allowed")
			return
		}
		rt.invoke(w, r)
	case "/health":
		writeJSON(w, http.StatusOK, healthBody)
	default:
		writeError(w, http.StatusNotFound, "Not found")
	}
}

// envelope is the invoke request body. A metadata map with non-string values fails to decode,
// which makes it a malformed body (400), as in the reference Go SDK.
type envelope struct {
	Input    json.RawMessage   `json:"input"`
	Metadata map[string]string `json:"metadata"`
}

// outcome is what one invocation produced: the HTTP answer and, unless the caller went away,
// the callback result.
type outcome struct {
	status   int
	body     []byte // response body (JSON)
	output   []byte // encoded output on success
	code     string // callback error code on failure
	message  string // callback error message on failure
	callback bool
}

func (rt *Runtime) invoke(w http.ResponseWriter, r *http.Request) {
	arrival := rt.now()
	id := r.Header.Get(headerExecutionID)
	if id == "" {
		writeError(w, http.StatusBadRequest, msgMissingID)
		return
	}
	raw, err := readBody(w, r)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, msgBodyTooLarge)
			return
		}
		writeError(w, http.StatusBadRequest, msgMalformedBody)
		return
	}
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		writeError(w, http.StatusBadRequest, msgMalformedBody)
		return
	}
	if len(env.Input) == 0 {
		env.Input = json.RawMessage("null")
	}
	attemptHeader := r.Header.Get(headerAttempt)
	attempt, _ := strconv.Atoi(attemptHeader)
	req := Request{
		Input:       env.Input,
		Metadata:    env.Metadata,
		ExecutionID: id,
		TraceID:     r.Header.Get(headerTraceID),
		Attempt:     attempt,
	}
	if req.TraceID == "" {
		req.TraceID = rt.cfg.TraceID
	}

	if !rt.beginHandler() {
		writeError(w, http.StatusServiceUnavailable, msgShuttingDown)
		return
	}
	cold := !rt.coldDone.Swap(true)
	out := rt.run(r.Context(), req)

	h := w.Header()
	if cold {
		// Set on every outcome: the process was cold whatever the handler did, and the control
		// plane reads these headers on any status (spec-core §6.8).
		h[headerColdStart] = []string{"true"}
		h[headerInitMs] = []string{strconv.FormatInt(max(arrival.Sub(rt.start).Milliseconds(), 0), 10)}
	}
	writeJSON(w, out.status, out.body)
	if out.callback && rt.cb.enabled() {
		// The response goes out first so that the control plane normally completes the execution
		// from it (it alone carries the cold-start headers); the callback is the backup path.
		_ = http.NewResponseController(w).Flush()
		rt.submitCallback(id, req.TraceID, attemptHeader, out)
	}
}

// beginHandler registers a handler goroutine unless the runtime is closed.
func (rt *Runtime) beginHandler() bool {
	rt.mu.RLock()
	defer rt.mu.RUnlock()
	if rt.closed {
		return false
	}
	rt.handlers.Add(1)
	return true
}

type handlerResult struct {
	output any
	err    error
}

// run calls the handler in its own goroutine so that a handler ignoring its context still gets
// a 504 at the deadline; the goroutine is tracked (rt.handlers) until it returns.
func (rt *Runtime) run(parent context.Context, req Request) outcome {
	ctx, cancel := context.WithCancel(parent)
	if rt.cfg.Timeout > 0 {
		ctx, cancel = context.WithTimeout(parent, rt.cfg.Timeout)
	}
	defer cancel()
	done := make(chan handlerResult, 1) // buffered: an abandoned handler never blocks
	go func() {
		defer rt.handlers.Done()
		defer func() {
			if p := recover(); p != nil {
				rt.log.Error("handler panicked", "executionId", req.ExecutionID, "panic", p, "stack", string(debug.Stack()))
				done <- handlerResult{err: fmt.Errorf("handler panic: %v", p)}
			}
		}()
		o, err := rt.handler(ctx, req)
		done <- handlerResult{output: o, err: err}
	}()

	select {
	case res := <-done:
		return rt.encode(req.ExecutionID, res)
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) && parent.Err() == nil {
			rt.log.Warn("handler timed out", "executionId", req.ExecutionID, "timeout", rt.cfg.Timeout)
			return outcome{status: http.StatusGatewayTimeout, body: errorBody(msgTimedOut),
				code: codeHandlerTimeout, message: msgTimeoutDetail, callback: true}
		}
		// The caller went away: nobody reads the answer and the control plane has already
		// settled the attempt (its own timeout), so no callback either.
		return outcome{status: http.StatusInternalServerError, body: errorBody("Handler execution cancelled")}
	}
}

func (rt *Runtime) encode(id string, res handlerResult) outcome {
	if res.err != nil {
		msg := res.err.Error()
		rt.log.Warn("handler failed", "executionId", id, "error", msg)
		return outcome{status: http.StatusInternalServerError, body: errorBody(msg),
			code: codeHandlerError, message: msg, callback: true}
	}
	b, err := json.Marshal(res.output)
	if err != nil {
		msg := "Output serialization failed: " + err.Error()
		rt.log.Warn("handler output not serializable", "executionId", id, "error", err)
		return outcome{status: http.StatusInternalServerError, body: errorBody(msg),
			code: codeSerialization, message: msg, callback: true}
	}
	return outcome{status: http.StatusOK, body: b, output: b, callback: true}
}

// readBody reads the whole request body, sized from Content-Length when known.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body := http.MaxBytesReader(w, r.Body, maxBodyBytes)
	if r.ContentLength > 0 && r.ContentLength <= maxBodyBytes {
		buf := bytes.NewBuffer(make([]byte, 0, r.ContentLength+1)) // +1: ReadFrom needs room to see EOF
		_, err := buf.ReadFrom(body)
		return buf.Bytes(), err
	}
	return io.ReadAll(body)
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody(msg))
}

// errorBody renders {"error": msg}.
func errorBody(msg string) []byte {
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	return b
}
