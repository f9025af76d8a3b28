package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/nanofaas/control-plane/internal/function"
	"github.com/nanofaas/control-plane/internal/registry"
)

// FunctionService is the function registry API the handlers need (registry.Service).
type FunctionService interface {
	Register(ctx context.Context, spec function.Spec) (*registry.Registered, error)
	Remove(ctx context.Context, name string) (*registry.Registered, error)
	SetReplicas(ctx context.Context, name string, replicas int) (int, error)
	Get(name string) (*registry.Registered, bool)
	List() []*registry.Registered
}

type functionHandlers struct {
	svc  FunctionService
	body bodyDecoder
}

// list serves GET /v1/functions: every function, sorted by name (D14).
func (h functionHandlers) list(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, registry.Responses(h.svc.List()))
}

// register serves POST /v1/functions (§3.2).
func (h functionHandlers) register(w http.ResponseWriter, r *http.Request) {
	var raw json.RawMessage
	if err := h.body.decode(w, r, &raw); err != nil {
		return
	}
	spec, err := function.DecodeSpec(raw)
	if err != nil {
		writeBadRequest(w, "Failed to read HTTP message")
		return
	}
	if details := spec.Validate(); len(details) > 0 {
		writeValidationError(w, details)
		return
	}
	// A client that disconnects must not abort a registration half-way: provisioning and
	// listeners run to completion (or roll back) on their own.
	reg, err := h.svc.Register(context.WithoutCancel(r.Context()), spec)
	switch {
	case err == nil:
		writeJSON(w, http.StatusCreated, reg.Response())
	case errors.Is(err, registry.ErrAlreadyRegistered):
		writeEmpty(w, http.StatusConflict)
	default:
		writeClassifiedError(w, r, err)
	}
}

// get serves GET /v1/functions/{name}.
func (h functionHandlers) get(w http.ResponseWriter, _ *http.Request, name string) {
	reg, ok := h.svc.Get(name)
	if !ok {
		writeEmpty(w, http.StatusNotFound)
		return
	}
	writeJSON(w, http.StatusOK, reg.Response())
}

// remove serves DELETE /v1/functions/{name}. Unlike register, a classified failure here is not
// mapped: the reference's controller lets it through to the generic 500 (§3.4).
func (h functionHandlers) remove(w http.ResponseWriter, r *http.Request, name string) {
	_, err := h.svc.Remove(context.WithoutCancel(r.Context()), name)
	switch {
	case err == nil:
		writeEmpty(w, http.StatusNoContent)
	case errors.Is(err, registry.ErrNotFound):
		writeEmpty(w, http.StatusNotFound)
	default:
		writeInternalError(w, r, err)
	}
}

// setReplicas serves PUT /v1/functions/{name}/replicas (§3.5). As in the reference, the body
// is decoded and validated while resolving arguments, before the path-variable constraint.
func (h functionHandlers) setReplicas(w http.ResponseWriter, r *http.Request) {
	var raw json.RawMessage
	if err := h.body.decode(w, r, &raw); err != nil {
		return
	}
	replicas, present, err := decodeReplicas(raw)
	if err != nil {
		writeBadRequest(w, "Failed to read HTTP message")
		return
	}
	switch {
	case !present:
		writeValidationError(w, []string{"replicas: must not be null"})
		return
	case replicas < 0:
		writeValidationError(w, []string{"replicas: must be greater than or equal to 0"})
		return
	}
	name, ok := pathName(w, r, "name", "Function name is required")
	if !ok {
		return
	}
	n, err := h.svc.SetReplicas(context.WithoutCancel(r.Context()), name, replicas)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, struct {
			Function string `json:"function"`
			Replicas int    `json:"replicas"`
		}{name, n})
	case errors.Is(err, registry.ErrNotFound):
		writeEmpty(w, http.StatusNotFound)
	default:
		writeClassifiedError(w, r, err)
	}
}

// decodeReplicas reads {"replicas": n} with Jackson's coercions, as function.DecodeSpec does
// for integer fields: numeric strings (trimmed), fractions truncated toward zero, and an empty
// or blank string read as null. present is false for an absent or null value.
func decodeReplicas(raw []byte) (n int, present bool, err error) {
	obj, err := function.ReadObject(raw)
	if err != nil {
		return 0, false, err
	}
	var p *int
	for obj.Next() {
		if string(obj.Key()) == "replicas" { // the last occurrence wins, as in Jackson
			if p, err = function.DecodeInt(obj.Value()); err != nil {
				return 0, false, err
			}
		}
	}
	if p == nil {
		return 0, false, nil
	}
	return *p, true, nil
}

// pathName reads a path variable and answers the reference's @NotBlank violation when blank.
func pathName(w http.ResponseWriter, r *http.Request, param, msg string) (string, bool) {
	v := r.PathValue(param)
	if strings.TrimSpace(v) == "" {
		writeValidationError(w, []string{param + ": " + msg})
		return "", false
	}
	return v, true
}
