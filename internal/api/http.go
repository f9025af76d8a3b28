// Package api owns the HTTP surface of the control plane: routing of the API listener (including
// the reference's `{name}:verb` paths), request decoding with the reference's framework behaviour
// (JSON-only bodies, size limit, decode errors), the exact error bodies of spec-core §3.10, the
// endpoint handlers, and the management listener (health probes and Prometheus).
package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/nanofaas/control-plane/internal/failure"
)

const (
	contentTypeJSON = "application/json"
	contentTypeText = "text/plain;charset=UTF-8"
)

// errorBody is the JSON error shape of spec-core §3.10.
type errorBody struct {
	Error   string   `json:"error"`
	Message string   `json:"message"`
	Details []string `json:"details,omitempty"`
}

// writeJSON writes v as JSON with the given status. Like Jackson, it does not HTML-escape
// (`<`, `>` and `&` stay as they are, in messages and in pass-through function output).
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		writeInternalError(w, nil, err)
		return
	}
	writeRaw(w, status, bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

// writeRaw writes an already encoded JSON body.
func writeRaw(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", contentTypeJSON)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeText writes a plain-text message, as the reference does for IllegalArgument/IllegalState.
func writeText(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", contentTypeText)
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg)
}

// writeEmpty writes a status with no body (the reference's empty 404/409/429/501 answers).
func writeEmpty(w http.ResponseWriter, status int) {
	w.WriteHeader(status)
}

// writeStatusError writes the ResponseStatusException shape: {"error":"<code> <REASON>","message":…}.
func writeStatusError(w http.ResponseWriter, status int, msg string) {
	if msg == "" {
		msg = "Request error"
	}
	writeJSON(w, status, errorBody{Error: strconv.Itoa(status) + " " + reasonEnum(status), Message: msg})
}

// writeBadRequest writes the ServerWebInputException shape: {"error":"BAD_REQUEST","message":…}.
func writeBadRequest(w http.ResponseWriter, msg string) {
	if msg == "" {
		msg = "Invalid request"
	}
	writeJSON(w, http.StatusBadRequest, errorBody{Error: "BAD_REQUEST", Message: msg})
}

// writeValidationError writes the bean-validation shape with its details.
func writeValidationError(w http.ResponseWriter, details []string) {
	writeJSON(w, http.StatusBadRequest, errorBody{
		Error: "VALIDATION_ERROR", Message: "Request validation failed", Details: details,
	})
}

// writeInternalError logs err and writes the generic 500 body; clients never see internals.
func writeInternalError(w http.ResponseWriter, r *http.Request, err error) {
	attrs := []any{"error", err}
	if r != nil {
		attrs = append(attrs, "method", r.Method, "path", r.URL.Path)
	}
	slog.Error("unexpected error while handling request", attrs...)
	writeRaw(w, http.StatusInternalServerError, []byte(`{"error":"INTERNAL_ERROR","message":"An unexpected error occurred"}`))
}

// writeClassifiedError maps the core's classified failures: IllegalArgument → 400 text,
// IllegalState → 503 text, image validation → its JSON code; failure.Internal and anything
// else → the generic 500, with the error (message and cause) logged only.
func writeClassifiedError(w http.ResponseWriter, r *http.Request, err error) {
	var fe *failure.Error
	var iv *failure.ImageValidation
	switch {
	case errors.As(err, &iv):
		writeJSON(w, iv.Status, errorBody{Error: iv.Code, Message: iv.Message})
	case errors.As(err, &fe) && fe.Kind == failure.InvalidArgument:
		writeText(w, http.StatusBadRequest, fe.Message)
	case errors.As(err, &fe) && fe.Kind == failure.Unavailable:
		writeText(w, http.StatusServiceUnavailable, fe.Message)
	default: // includes failure.Internal
		writeInternalError(w, r, err)
	}
}

// reasonEnum renders a status the way Spring's HttpStatus enum names it (e.g. METHOD_NOT_ALLOWED).
func reasonEnum(status int) string {
	switch status {
	case http.StatusRequestEntityTooLarge:
		return "PAYLOAD_TOO_LARGE"
	case http.StatusRequestURITooLong:
		return "URI_TOO_LONG"
	}
	text := http.StatusText(status)
	if text == "" {
		return "UNKNOWN"
	}
	return strings.ToUpper(strings.NewReplacer(" ", "_", "-", "_", "'", "").Replace(text))
}

// bodyDecoder reads JSON request bodies with the reference's framework behaviour.
type bodyDecoder struct {
	maxBytes int64
}

// errBodyWritten signals that decode already answered the request.
var errBodyWritten = errors.New("response already written")

// decode reads the body (see read) and decodes it into v with encoding/json. On failure it
// writes the reference's error response and returns errBodyWritten.
func (d bodyDecoder) decode(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := d.read(w, r)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		writeBadRequest(w, "Failed to read HTTP message")
		return errBodyWritten
	}
	return nil
}

// read checks the content type, enforces the size limit and returns the non-blank body, for a
// caller that decodes it itself (answering 400 "Failed to read HTTP message" when it cannot).
// On failure it writes the reference's error response and returns errBodyWritten.
func (d bodyDecoder) read(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if !isJSONContentType(r.Header.Get("Content-Type")) {
		ct := r.Header.Get("Content-Type")
		if ct == "" {
			ct = "application/octet-stream"
		}
		writeStatusError(w, http.StatusUnsupportedMediaType, "Content type '"+ct+"' not supported")
		return nil, errBodyWritten
	}
	if r.ContentLength > d.maxBytes {
		d.writeTooLarge(w)
		return nil, errBodyWritten
	}
	body, err := readAll(http.MaxBytesReader(w, r.Body, d.maxBytes), r.ContentLength)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			d.writeTooLarge(w)
			return nil, errBodyWritten
		}
		writeBadRequest(w, "Failed to read HTTP message")
		return nil, errBodyWritten
	}
	if len(bytes.TrimSpace(body)) == 0 {
		writeBadRequest(w, "Required request body is missing")
		return nil, errBodyWritten
	}
	return body, nil
}

// readAll reads body to the end. With a known Content-Length it reads into a buffer of exactly
// that size: decoded requests keep raw slices of it (an invocation's input) for the execution's
// lifetime, and io.ReadAll's buffer starts at 512 bytes however small the body.
func readAll(body io.Reader, contentLength int64) ([]byte, error) {
	if contentLength < 0 {
		return io.ReadAll(body)
	}
	b := make([]byte, contentLength)
	if _, err := io.ReadFull(body, b); err != nil {
		return nil, err
	}
	return b, nil
}

func (d bodyDecoder) writeTooLarge(w http.ResponseWriter) {
	writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{
		Error:   "PAYLOAD_TOO_LARGE",
		Message: "Request body exceeds the limit of " + strconv.FormatInt(d.maxBytes, 10) + " bytes",
	})
}

// isJSONContentType accepts application/json and application/*+json (any parameters).
func isJSONContentType(ct string) bool {
	if ct == "" {
		return false
	}
	if strings.EqualFold(ct, contentTypeJSON) {
		return true // the common case, without ParseMediaType's allocation
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == contentTypeJSON || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// methods routes one path by method and answers other methods with the JSON 405 of D16.
type methods map[string]http.HandlerFunc

func (m methods) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h, ok := m[r.Method]; ok {
		h(w, r)
		return
	}
	if r.Method == http.MethodHead {
		if h, ok := m[http.MethodGet]; ok {
			h(w, r)
			return
		}
	}
	allowed := make([]string, 0, len(m))
	for k := range m {
		allowed = append(allowed, k)
	}
	methodNotAllowed(w, r, allowed)
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request, allowed []string) {
	sort.Strings(allowed)
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	writeStatusError(w, http.StatusMethodNotAllowed, "Request method '"+r.Method+"' is not supported.")
}

// notFound is the catch-all for unknown routes (D16).
func notFound(w http.ResponseWriter, r *http.Request) {
	writeStatusError(w, http.StatusNotFound, "No endpoint "+r.Method+" "+r.URL.Path+".")
}

// rejectUncleanPaths answers paths with empty, `.` or `..` segments as unknown routes. Spring
// matches the path segments as sent, while ServeMux would redirect such paths to their cleaned
// form with an HTML body (and a 307 makes clients re-send a POST elsewhere). A trailing slash is
// left to the routes, which never match it.
func rejectUncleanPaths(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := strings.TrimSuffix(r.URL.Path, "/")
		if p != "" && path.Clean(p) != p {
			notFound(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// recoverer turns a panic in a handler into the generic 500 body instead of a dropped connection.
func recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				slog.Error("panic while handling request", "panic", v, "method", r.Method, "path", r.URL.Path)
				writeInternalError(w, nil, errors.New("panic"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}
