// Package dispatch owns how one attempt of an execution reaches the function (spec-core §6.8):
// the Dispatcher contract, the LOCAL echo dispatcher, the POOL/DEPLOYMENT HTTP dispatcher with its
// response decoding rules (DECISIONS.md D3), the process-wide tuned HTTP client, and the Router
// that picks a dispatcher by execution mode.
package dispatch

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/nanofaas/control-plane/internal/execution"
	"github.com/nanofaas/control-plane/internal/function"
)

// Error codes of the results produced by the pool dispatcher.
const (
	CodePoolError       = "POOL_ERROR"
	CodePoolTimeout     = "POOL_TIMEOUT"
	CodeEndpointMissing = "POOL_ENDPOINT_MISSING"
)

// errNoSpec is returned for tasks that cannot be routed at all (a programming error upstream).
var errNoSpec = errors.New("dispatch: task has no function spec")

// Dispatcher runs one attempt of an execution and blocks until its outcome is known; callers run it
// in their own goroutine. Every outcome of talking to the function (including HTTP errors and
// timeouts) is a Result; a non-nil error means an unexpected failure, which the caller maps to
// "<MODE>_ERROR".
type Dispatcher interface {
	Dispatch(ctx context.Context, task *execution.Task) (execution.DispatchResult, error)
}

// Local is the LOCAL-mode dispatcher: it echoes the request input as the output. No user code runs
// in the control plane; this mode exists for tests and demos.
type Local struct{}

// Dispatch returns warm(success(task.Request.Input)).
func (Local) Dispatch(_ context.Context, task *execution.Task) (execution.DispatchResult, error) {
	if task == nil {
		return execution.DispatchResult{}, errors.New("dispatch: nil task")
	}
	var in json.RawMessage
	if task.Request != nil {
		in = task.Request.Input
	}
	return execution.Warm(execution.SuccessResult(in)), nil
}

// Router is the reference's DispatcherRouter: LOCAL goes to the local dispatcher, everything else
// (POOL, DEPLOYMENT) to the pool dispatcher.
type Router struct {
	local Dispatcher
	pool  Dispatcher
}

// NewRouter returns a Router over the given LOCAL and POOL/DEPLOYMENT dispatchers.
func NewRouter(local, pool Dispatcher) *Router {
	return &Router{local: local, pool: pool}
}

// Dispatch forwards the task to the dispatcher for its spec's execution mode. As in the
// reference, any mode other than LOCAL (including an unset one) goes to the pool dispatcher.
func (r *Router) Dispatch(ctx context.Context, task *execution.Task) (execution.DispatchResult, error) {
	if task == nil || task.Spec == nil {
		return execution.DispatchResult{}, errNoSpec
	}
	if task.Spec.Mode() == function.ModeLocal {
		return r.local.Dispatch(ctx, task)
	}
	return r.pool.Dispatch(ctx, task)
}
