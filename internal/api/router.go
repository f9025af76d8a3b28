package api

import (
	"net/http"
	"strings"
)

// Route is an extra route contributed by a module (runtime-config, build-metadata, …).
type Route struct {
	Pattern string // a ServeMux path pattern without a method, e.g. "/v1/admin/runtime-config"
	Methods map[string]http.HandlerFunc
}

// Deps are what the API listener serves.
type Deps struct {
	Functions    FunctionService
	Invocations  InvocationService
	MaxBodyBytes int64
	Routes       []Route
}

// NewAPIHandler returns the handler of the API listener (spec-core §3).
//
// Go's ServeMux wildcards match whole segments, so the reference's `{name}:invoke` paths are
// matched as one segment and split here: a POST whose last segment ends in `:invoke` or
// `:enqueue` is an invocation of the name before the verb (like Spring's `(.*):invoke`), while
// GET and DELETE take the whole segment as the name (so `GET /v1/functions/echo:invoke` looks
// up a function called `echo:invoke`, as in the reference).
func NewAPIHandler(d Deps) http.Handler {
	body := bodyDecoder{maxBytes: d.MaxBodyBytes}
	if body.maxBytes <= 0 {
		body.maxBytes = 16 << 20
	}
	fh := functionHandlers{svc: d.Functions, body: body}
	ih := invocationHandlers{svc: d.Invocations, body: body}

	mux := http.NewServeMux()
	mux.Handle("/v1/functions", methods{http.MethodGet: fh.list, http.MethodPost: fh.register})
	mux.HandleFunc("/v1/functions/{name}", func(w http.ResponseWriter, r *http.Request) {
		seg := r.PathValue("name")
		switch r.Method {
		case http.MethodPost:
			if name, ok := strings.CutSuffix(seg, ":invoke"); ok {
				ih.invokeSync(w, r, name)
				return
			}
			if name, ok := strings.CutSuffix(seg, ":enqueue"); ok {
				ih.invokeAsync(w, r, name)
				return
			}
		case http.MethodGet, http.MethodHead:
			if blankName(w, seg) {
				return
			}
			fh.get(w, r, seg)
			return
		case http.MethodDelete:
			if blankName(w, seg) {
				return
			}
			fh.remove(w, r, seg)
			return
		}
		allowed := []string{http.MethodGet, http.MethodDelete}
		if strings.HasSuffix(seg, ":invoke") || strings.HasSuffix(seg, ":enqueue") {
			allowed = append(allowed, http.MethodPost) // the verb routes POST too
		}
		methodNotAllowed(w, r, allowed)
	})
	mux.Handle("/v1/functions/{name}/replicas", methods{http.MethodPut: fh.setReplicas})
	mux.Handle("/v1/executions/{executionId}", methods{http.MethodGet: ih.getExecution})
	mux.HandleFunc("/v1/internal/executions/{executionId}", func(w http.ResponseWriter, r *http.Request) {
		id, ok := strings.CutSuffix(r.PathValue("executionId"), ":complete")
		if !ok {
			notFound(w, r)
			return
		}
		if r.Method != http.MethodPost {
			methodNotAllowed(w, r, []string{http.MethodPost})
			return
		}
		ih.complete(w, r, id)
	})
	for _, rt := range d.Routes {
		mux.Handle(rt.Pattern, methods(rt.Methods))
	}
	mux.HandleFunc("/", notFound)
	return recoverer(rejectUncleanPaths(mux))
}

func blankName(w http.ResponseWriter, name string) bool {
	if strings.TrimSpace(name) == "" {
		writeValidationError(w, []string{"name: Function name is required"})
		return true
	}
	return false
}
