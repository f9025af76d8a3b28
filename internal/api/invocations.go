package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/nanofaas/control-plane/internal/execution"
	"github.com/nanofaas/control-plane/internal/invocation"
)

// InvocationService is the invocation API the handlers need (invocation.Service).
type InvocationService interface {
	InvokeSync(ctx context.Context, name string, req *execution.Request, opt invocation.Options) (invocation.Response, error)
	InvokeAsync(ctx context.Context, name string, req *execution.Request, opt invocation.Options) (string, error)
	Execution(id string) (execution.Status, bool)
	CompleteCallback(executionID string, r execution.Result, attempt int)
}

type invocationHandlers struct {
	svc  InvocationService
	body bodyDecoder
}

// decodeInvocation decodes (with Jackson's semantics, §1) and validates an InvocationRequest
// body (§2.3).
func (h invocationHandlers) decodeInvocation(w http.ResponseWriter, r *http.Request) (*execution.Request, bool) {
	body, err := h.body.read(w, r)
	if err != nil {
		return nil, false
	}
	req, err := execution.DecodeRequest(body)
	if err != nil {
		writeBadRequest(w, "Failed to read HTTP message")
		return nil, false
	}
	if len(req.Input) == 0 {
		writeValidationError(w, []string{"input: Input payload is required"})
		return nil, false
	}
	return req, true
}

// options reads Idempotency-Key and X-Trace-Id (blank keys are absent; an empty trace id is kept).
func options(r *http.Request) invocation.Options {
	opt := invocation.Options{IdempotencyKey: strings.TrimSpace(r.Header.Get("Idempotency-Key"))}
	if v, ok := r.Header["X-Trace-Id"]; ok && len(v) > 0 {
		trace := v[0]
		opt.TraceID = &trace
	}
	return opt
}

// invokeSync serves POST /v1/functions/{name}:invoke (§3.6).
func (h invocationHandlers) invokeSync(w http.ResponseWriter, r *http.Request, name string) {
	req, ok := h.decodeInvocation(w, r)
	if !ok {
		return
	}
	opt := options(r)
	if v := strings.TrimSpace(r.Header.Get("X-Timeout-Ms")); v != "" {
		// A Java int: values beyond 32 bits are a type mismatch too.
		ms, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			writeBadRequest(w, "Type mismatch.")
			return
		}
		timeoutMs := int(ms)
		opt.TimeoutMs = &timeoutMs
	}
	if strings.TrimSpace(name) == "" {
		writeValidationError(w, []string{"name: Function name is required"})
		return
	}
	resp, err := h.svc.InvokeSync(r.Context(), name, req, opt)
	if err != nil {
		writeInvocationError(w, r, err)
		return
	}
	w.Header().Set("X-Execution-Id", resp.ExecutionID)
	writeRaw(w, http.StatusOK, resp.AppendJSON(make([]byte, 0, 128+len(resp.Output))))
}

// invokeAsync serves POST /v1/functions/{name}:enqueue (§3.7).
func (h invocationHandlers) invokeAsync(w http.ResponseWriter, r *http.Request, name string) {
	req, ok := h.decodeInvocation(w, r)
	if !ok {
		return
	}
	if strings.TrimSpace(name) == "" {
		writeValidationError(w, []string{"name: Function name is required"})
		return
	}
	id, err := h.svc.InvokeAsync(r.Context(), name, req, options(r))
	if err != nil {
		writeInvocationError(w, r, err)
		return
	}
	writeRaw(w, http.StatusAccepted, invocation.Response{ExecutionID: id, Status: invocation.StatusQueued}.AppendJSON(make([]byte, 0, 128)))
}

// writeInvocationError maps the invocation flows' rejections (§3.6, §3.7).
func writeInvocationError(w http.ResponseWriter, r *http.Request, err error) {
	var rejected *invocation.SyncQueueRejectedError
	switch {
	case errors.Is(err, invocation.ErrRateLimited), errors.Is(err, invocation.ErrQueueFull):
		writeEmpty(w, http.StatusTooManyRequests)
	case errors.Is(err, invocation.ErrFunctionNotFound):
		writeEmpty(w, http.StatusNotFound)
	case errors.Is(err, invocation.ErrAsyncQueueUnavailable):
		writeEmpty(w, http.StatusNotImplemented)
	case errors.As(err, &rejected):
		w.Header().Set("Retry-After", strconv.Itoa(rejected.RetryAfterSeconds))
		w.Header().Set("X-Queue-Reject-Reason", strings.ToLower(string(rejected.Reason)))
		writeEmpty(w, http.StatusTooManyRequests)
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away while waiting; nobody reads this answer.
		writeEmpty(w, 499)
	default:
		writeInternalError(w, r, err)
	}
}

// getExecution serves GET /v1/executions/{executionId} (§3.8).
func (h invocationHandlers) getExecution(w http.ResponseWriter, r *http.Request) {
	id, ok := pathName(w, r, "executionId", "Execution ID is required")
	if !ok {
		return
	}
	st, found := h.svc.Execution(id)
	if !found {
		writeEmpty(w, http.StatusNotFound)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// complete serves POST /v1/internal/executions/{executionId}:complete (§3.9, §6.10): always 204
// once the body decodes (with Jackson's semantics; an absent success is resolved per D4).
func (h invocationHandlers) complete(w http.ResponseWriter, r *http.Request, id string) {
	body, err := h.body.read(w, r)
	if err != nil {
		return
	}
	res, err := execution.DecodeResult(body)
	if err != nil {
		writeBadRequest(w, "Failed to read HTTP message")
		return
	}
	if strings.TrimSpace(id) == "" {
		writeValidationError(w, []string{"executionId: Execution ID is required"})
		return
	}
	attempt := 0 // absent, blank, non-numeric, beyond a Java int or <= 0: legacy, no attempt
	if v, err := strconv.ParseInt(strings.TrimSpace(r.Header.Get("X-Dispatch-Attempt")), 10, 32); err == nil && v > 0 {
		attempt = int(v)
	}
	h.svc.CompleteCallback(id, res, attempt)
	writeEmpty(w, http.StatusNoContent)
}
