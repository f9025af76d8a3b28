package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/nanofaas/control-plane/internal/config"
	"github.com/nanofaas/control-plane/internal/function"
	"github.com/nanofaas/control-plane/internal/runtimeconfig"
)

// RuntimeConfigService is the runtime-config module as its admin API needs it
// (runtimeconfig.Service).
type RuntimeConfigService interface {
	Get() runtimeconfig.Snapshot
	Validate(p runtimeconfig.Patch) []string
	Patch(expectedRevision int64, p runtimeconfig.Patch) (runtimeconfig.Applied, error)
}

// Paths of the runtime-config admin API (spec-modules §4).
const (
	runtimeConfigPath         = "/v1/admin/runtime-config"
	runtimeConfigValidatePath = "/v1/admin/runtime-config/validate"
)

// RuntimeConfigRoutes returns the runtime-config admin API: GET and PATCH
// /v1/admin/runtime-config and POST /v1/admin/runtime-config/validate. They exist only when
// nanofaas.admin.runtime-config.enabled is true; otherwise the caller leaves them out (404).
// maxBodyBytes ≤ 0 means the API listener's default limit.
func RuntimeConfigRoutes(svc RuntimeConfigService, maxBodyBytes int64) []Route {
	if maxBodyBytes <= 0 {
		maxBodyBytes = 16 << 20
	}
	h := runtimeConfigHandlers{svc: svc, body: bodyDecoder{maxBytes: maxBodyBytes}}
	return []Route{
		{Pattern: runtimeConfigPath, Methods: map[string]http.HandlerFunc{
			http.MethodGet: h.get, http.MethodPatch: h.patch,
		}},
		{Pattern: runtimeConfigValidatePath, Methods: map[string]http.HandlerFunc{
			http.MethodPost: h.validate,
		}},
	}
}

type runtimeConfigHandlers struct {
	svc  RuntimeConfigService
	body bodyDecoder
}

// runtimeConfigSnapshotJSON is the snapshot shape of GET and of a PATCH's effectiveConfig;
// durations are ISO-8601 as java.time.Duration prints them.
type runtimeConfigSnapshotJSON struct {
	Revision                   int64  `json:"revision"`
	RateMaxPerSecond           int    `json:"rateMaxPerSecond"`
	SyncQueueEnabled           bool   `json:"syncQueueEnabled"`
	SyncQueueAdmissionEnabled  bool   `json:"syncQueueAdmissionEnabled"`
	SyncQueueMaxEstimatedWait  string `json:"syncQueueMaxEstimatedWait"`
	SyncQueueMaxQueueWait      string `json:"syncQueueMaxQueueWait"`
	SyncQueueRetryAfterSeconds int    `json:"syncQueueRetryAfterSeconds"`
}

func runtimeConfigSnapshotOf(s runtimeconfig.Snapshot) runtimeConfigSnapshotJSON {
	return runtimeConfigSnapshotJSON{
		Revision:                   s.Revision,
		RateMaxPerSecond:           s.RateMaxPerSecond,
		SyncQueueEnabled:           s.SyncQueueEnabled,
		SyncQueueAdmissionEnabled:  s.SyncQueueAdmissionEnabled,
		SyncQueueMaxEstimatedWait:  config.FormatISODuration(s.SyncQueueMaxEstimatedWait),
		SyncQueueMaxQueueWait:      config.FormatISODuration(s.SyncQueueMaxQueueWait),
		SyncQueueRetryAfterSeconds: s.SyncQueueRetryAfterSeconds,
	}
}

type runtimeConfigPatchResponse struct {
	Revision        int64                     `json:"revision"`
	EffectiveConfig runtimeConfigSnapshotJSON `json:"effectiveConfig"`
	AppliedAt       string                    `json:"appliedAt"`
	ChangeID        string                    `json:"changeId"`
	Warnings        []string                  `json:"warnings"`
}

type runtimeConfigDurationError struct {
	Error string `json:"error"`
	Field string `json:"field"`
	Value string `json:"value"`
}

type runtimeConfigErrors struct {
	Errors []string `json:"errors"`
}

type runtimeConfigSimpleError struct {
	Error string `json:"error"`
}

type runtimeConfigMismatch struct {
	Error           string `json:"error"`
	CurrentRevision int64  `json:"currentRevision"`
}

type runtimeConfigApplyFailed struct {
	Error  string `json:"error"`
	Detail string `json:"detail"`
}

type runtimeConfigValid struct {
	Valid bool `json:"valid"`
}

// get serves GET /v1/admin/runtime-config.
func (h runtimeConfigHandlers) get(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, runtimeConfigSnapshotOf(h.svc.Get()))
}

// validate serves POST /v1/admin/runtime-config/validate: 400 for a bad duration, 422 with every
// broken rule of the merged snapshot, else {"valid":true}. Nothing changes.
func (h runtimeConfigHandlers) validate(w http.ResponseWriter, r *http.Request) {
	req, ok := h.decode(w, r)
	if !ok {
		return
	}
	patch, ok := req.patch(w)
	if !ok {
		return
	}
	if errs := h.svc.Validate(patch); len(errs) > 0 {
		writeJSON(w, http.StatusUnprocessableEntity, runtimeConfigErrors{Errors: errs})
		return
	}
	writeJSON(w, http.StatusOK, runtimeConfigValid{Valid: true})
}

// patch serves PATCH /v1/admin/runtime-config, checking in the reference's order: missing
// expectedRevision (400), bad duration (400), invalid merged snapshot (422), stale revision
// (409), failed apply (503, rolled back).
func (h runtimeConfigHandlers) patch(w http.ResponseWriter, r *http.Request) {
	req, ok := h.decode(w, r)
	if !ok {
		return
	}
	if req.expectedRevision == nil {
		writeJSON(w, http.StatusBadRequest, runtimeConfigSimpleError{Error: "expectedRevision is required"})
		return
	}
	patch, ok := req.patch(w)
	if !ok {
		return
	}
	applied, err := h.svc.Patch(*req.expectedRevision, patch)
	var (
		invalid  *runtimeconfig.ValidationError
		mismatch *runtimeconfig.RevisionMismatchError
	)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, runtimeConfigPatchResponse{
			Revision:        applied.Snapshot.Revision,
			EffectiveConfig: runtimeConfigSnapshotOf(applied.Snapshot),
			AppliedAt:       rcFormatInstant(applied.AppliedAt),
			ChangeID:        applied.ChangeID,
			Warnings:        rcNonNil(applied.Warnings),
		})
	case errors.As(err, &invalid):
		writeJSON(w, http.StatusUnprocessableEntity, runtimeConfigErrors{Errors: invalid.Errors})
	case errors.As(err, &mismatch):
		writeJSON(w, http.StatusConflict, runtimeConfigMismatch{Error: mismatch.Error(), CurrentRevision: mismatch.Current})
	case errors.Is(err, runtimeconfig.ErrApplyFailed):
		writeJSON(w, http.StatusServiceUnavailable, runtimeConfigApplyFailed{
			Error: "Apply failed, rolled back", Detail: "Failed to apply runtime config",
		})
	default:
		writeInternalError(w, r, err)
	}
}

func rcNonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// decode reads the request body; a body that is not a JSON object or has a field of the wrong
// type is answered 400 BAD_REQUEST like any other unreadable body.
func (h runtimeConfigHandlers) decode(w http.ResponseWriter, r *http.Request) (runtimeConfigRequest, bool) {
	var raw json.RawMessage
	if err := h.body.decode(w, r, &raw); err != nil {
		return runtimeConfigRequest{}, false
	}
	req, err := decodeRuntimeConfigRequest(raw)
	if err != nil {
		writeBadRequest(w, "Failed to read HTTP message")
		return runtimeConfigRequest{}, false
	}
	return req, true
}

// runtimeConfigRequest is the PATCH / validate body as read; durations stay raw until patch.
type runtimeConfigRequest struct {
	expectedRevision *int64
	rate             *int
	enabled          *bool
	admission        *bool
	estimatedWait    *string
	queueWait        *string
	retryAfter       *int
}

// patch parses the duration fields (ISO-8601 only) into a Patch, or answers the 400 naming the
// first bad field.
func (q runtimeConfigRequest) patch(w http.ResponseWriter) (runtimeconfig.Patch, bool) {
	p := runtimeconfig.Patch{
		RateMaxPerSecond:           q.rate,
		SyncQueueEnabled:           q.enabled,
		SyncQueueAdmissionEnabled:  q.admission,
		SyncQueueRetryAfterSeconds: q.retryAfter,
	}
	for _, f := range []struct {
		name string
		raw  *string
		dst  **time.Duration
	}{
		{"syncQueueMaxEstimatedWait", q.estimatedWait, &p.SyncQueueMaxEstimatedWait},
		{"syncQueueMaxQueueWait", q.queueWait, &p.SyncQueueMaxQueueWait},
	} {
		if f.raw == nil {
			continue
		}
		d, err := config.ParseISODuration(*f.raw)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, runtimeConfigDurationError{
				Error: "Invalid duration for " + f.name, Field: f.name, Value: *f.raw,
			})
			return runtimeconfig.Patch{}, false
		}
		*f.dst = &d
	}
	return p, true
}

// decodeRuntimeConfigRequest reads the body the way the reference's Jackson mapper does: unknown
// properties ignored, null = absent, scalar coercions ("5" → 5, 5.7 → 5, "true" → true, 5 → "5"
// for the string-typed durations, "" → absent for numbers and booleans).
func decodeRuntimeConfigRequest(raw []byte) (runtimeConfigRequest, error) {
	var q runtimeConfigRequest
	obj, err := function.ReadObject(raw)
	if err != nil {
		return q, err
	}
	for obj.Next() {
		key, v := string(obj.Key()), obj.Value()
		var err error
		switch key {
		case "expectedRevision":
			q.expectedRevision, err = function.DecodeInt64(v)
		case "rateMaxPerSecond":
			q.rate, err = function.DecodeInt(v)
		case "syncQueueEnabled":
			q.enabled, err = function.DecodeBool(v)
		case "syncQueueAdmissionEnabled":
			q.admission, err = function.DecodeBool(v)
		case "syncQueueMaxEstimatedWait":
			q.estimatedWait, err = function.DecodeString(v)
		case "syncQueueMaxQueueWait":
			q.queueWait, err = function.DecodeString(v)
		case "syncQueueRetryAfterSeconds":
			q.retryAfter, err = function.DecodeInt(v)
		}
		if err != nil {
			return runtimeConfigRequest{}, fmt.Errorf("%s: %w", key, err)
		}
	}
	return q, nil
}

// rcFormatInstant renders t as java.time.Instant.toString does: UTC, 'Z', and 0, 3, 6 or 9
// fractional digits.
func rcFormatInstant(t time.Time) string {
	t = t.UTC()
	ns := t.Nanosecond()
	layout := "2006-01-02T15:04:05Z"
	switch {
	case ns == 0:
	case ns%1_000_000 == 0:
		layout = "2006-01-02T15:04:05.000Z"
	case ns%1_000 == 0:
		layout = "2006-01-02T15:04:05.000000Z"
	default:
		layout = "2006-01-02T15:04:05.000000000Z"
	}
	return t.Format(layout)
}
