package api

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Readiness is the application's availability as the health probes report it. It starts as
// Starting (readiness DOWN), becomes Ready once every listener and module is up, and turns
// ShuttingDown on SIGTERM so load balancers stop sending traffic before the listeners close (D18).
type Readiness struct {
	state atomic.Int32
}

const (
	stateStarting int32 = iota
	stateReady
	stateShuttingDown
)

// MarkReady reports the application ready to accept traffic.
func (r *Readiness) MarkReady() { r.state.CompareAndSwap(stateStarting, stateReady) }

// MarkShuttingDown reports the application refusing traffic; it never becomes ready again.
func (r *Readiness) MarkShuttingDown() { r.state.Store(stateShuttingDown) }

// Ready reports whether the application accepts traffic.
func (r *Readiness) Ready() bool { return r.state.Load() == stateReady }

const actuatorContentType = "application/vnd.spring-boot.actuator.v3+json"

// DefaultExposure is management.endpoints.web.exposure.include's default.
const DefaultExposure = "health,prometheus"

// exposed reports whether endpoint id is in a Spring exposure list: comma-separated ids, matched
// case-insensitively, "*" for all. Ids this control plane does not serve are ignored.
func exposed(include, id string) bool {
	for part := range strings.SplitSeq(include, ",") {
		part = strings.TrimSpace(part)
		if part == "*" || strings.EqualFold(part, id) {
			return true
		}
	}
	return false
}

// NewManagementHandler serves the management listener under basePath (default /actuator):
// /health (+ liveness and readiness groups) and /prometheus from gatherer, each only if its id is
// in exposure (management.endpoints.web.exposure.include; "" = DefaultExposure). An endpoint left
// out answers 404, as in Spring.
func NewManagementHandler(basePath, exposure string, readiness *Readiness, gatherer prometheus.Gatherer) http.Handler {
	if basePath == "" {
		basePath = "/actuator"
	}
	basePath = "/" + strings.Trim(basePath, "/")
	if basePath == "/" {
		basePath = ""
	}
	if strings.TrimSpace(exposure) == "" {
		exposure = DefaultExposure
	}
	mux := http.NewServeMux()
	if exposed(exposure, "health") {
		handleHealth(mux, basePath, readiness)
	}
	if exposed(exposure, "prometheus") {
		prom := promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{EnableOpenMetrics: true})
		mux.Handle(basePath+"/prometheus", methods{http.MethodGet: func(w http.ResponseWriter, r *http.Request) {
			tw := &textFormatWriter{ResponseWriter: w}
			prom.ServeHTTP(tw, r)
			tw.fix() // a response that wrote nothing (HEAD) is finalized after this returns
		}})
	}
	mux.HandleFunc("/", notFound)
	return recoverer(rejectUncleanPaths(mux))
}

// handleHealth adds the health endpoint and its liveness and readiness groups.
func handleHealth(mux *http.ServeMux, basePath string, readiness *Readiness) {
	mux.Handle(basePath+"/health", methods{http.MethodGet: func(w http.ResponseWriter, r *http.Request) {
		status, code := "UP", http.StatusOK
		if readiness.state.Load() == stateShuttingDown {
			status, code = "OUT_OF_SERVICE", http.StatusServiceUnavailable
		}
		writeHealth(w, r, code, `{"status":"`+status+`","groups":["liveness","readiness"]}`)
	}})
	mux.Handle(basePath+"/health/liveness", methods{http.MethodGet: func(w http.ResponseWriter, r *http.Request) {
		writeHealth(w, r, http.StatusOK, `{"status":"UP"}`)
	}})
	mux.Handle(basePath+"/health/readiness", methods{http.MethodGet: func(w http.ResponseWriter, r *http.Request) {
		switch readiness.state.Load() {
		case stateReady:
			writeHealth(w, r, http.StatusOK, `{"status":"UP"}`)
		case stateShuttingDown:
			writeHealth(w, r, http.StatusServiceUnavailable, `{"status":"OUT_OF_SERVICE"}`)
		default:
			writeHealth(w, r, http.StatusServiceUnavailable, `{"status":"DOWN"}`)
		}
	}})
}

// writeHealth answers with Spring's actuator media type unless the client asked for plain JSON.
func writeHealth(w http.ResponseWriter, r *http.Request, status int, body string) {
	ct := actuatorContentType
	accept := r.Header.Get("Accept")
	if strings.Contains(accept, contentTypeJSON) && !strings.Contains(accept, "actuator") {
		ct = contentTypeJSON
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// textFormat is the reference's Content-Type for the Prometheus text format (spec-core §1).
const textFormat = "text/plain; version=0.0.4; charset=utf-8"

// textFormatWriter rewrites promhttp's text-format Content-Type, which carries an extra
// `escaping=underscores` parameter, to the reference's exact value; other formats (OpenMetrics)
// pass through unchanged.
type textFormatWriter struct {
	http.ResponseWriter
	fixed bool
}

func (w *textFormatWriter) fix() {
	if w.fixed {
		return
	}
	w.fixed = true
	if h := w.Header(); strings.HasPrefix(h.Get("Content-Type"), "text/plain; version=0.0.4") {
		h.Set("Content-Type", textFormat)
	}
}

func (w *textFormatWriter) WriteHeader(code int) {
	w.fix()
	w.ResponseWriter.WriteHeader(code)
}

func (w *textFormatWriter) Write(b []byte) (int, error) {
	w.fix()
	return w.ResponseWriter.Write(b)
}
