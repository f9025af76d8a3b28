package execution

import (
	"encoding/json"
	"time"

	"github.com/nanofaas/control-plane/internal/function"
)

// ErrorInfo is the error object of results and responses: {"code","message"}.
type ErrorInfo struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Request is an InvocationRequest: the invoke/enqueue body and the body sent to function
// runtimes. Input is kept as raw JSON so pass-through payloads are never decoded into maps.
type Request struct {
	Input    json.RawMessage   `json:"input"`
	Metadata map[string]string `json:"metadata"`
}

// Result is an InvocationResult: the outcome of one attempt (from a dispatcher or a callback).
// A nil Output means JSON null.
type Result struct {
	Success bool            `json:"success"`
	Output  json.RawMessage `json:"output"`
	Error   *ErrorInfo      `json:"error"`
}

// SuccessResult returns a successful Result with the given raw JSON output.
func SuccessResult(output json.RawMessage) Result { return Result{Success: true, Output: output} }

// ErrorResult returns a failed Result with the given error code and message.
func ErrorResult(code, message string) Result {
	return Result{Error: &ErrorInfo{Code: code, Message: message}}
}

// DispatchResult is a Result plus the cold-start facts reported by the runtime.
type DispatchResult struct {
	Result         Result
	ColdStart      bool
	InitDurationMs *int64
}

// Warm wraps a Result as a warm-start DispatchResult.
func Warm(r Result) DispatchResult { return DispatchResult{Result: r} }

// Task is an InvocationTask: one attempt of an execution, with a snapshot of the function's
// effective spec at admission.
type Task struct {
	ExecutionID    string
	FunctionName   string
	Spec           *function.Spec
	Request        *Request
	IdempotencyKey string  // "" = none (retries never carry one)
	TraceID        *string // nil = no X-Trace-Id header; "" is forwarded as an empty header
	EnqueuedAt     time.Time
	Attempt        int // starts at 1
}
