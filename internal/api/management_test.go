package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nanofaas/control-plane/internal/api"
)

const actuatorJSON = "application/vnd.spring-boot.actuator.v3+json"

func newManagement(t *testing.T, basePath string, gatherer prometheus.Gatherer) (http.Handler, *api.Readiness) {
	t.Helper()
	r := &api.Readiness{}
	if gatherer == nil {
		gatherer = prometheus.NewRegistry()
	}
	return api.NewManagementHandler(basePath, "", r, gatherer), r
}

func assertHealth(t *testing.T, rec *recorder, status int, contentType, body string) {
	t.Helper()
	assertStatus(t, rec, status)
	if ct := rec.Header().Get("Content-Type"); ct != contentType {
		t.Errorf("Content-Type = %q, want %q", ct, contentType)
	}
	if got := rec.Body.String(); got != body {
		t.Errorf("body = %s, want %s", got, body)
	}
}

func TestManagement_HealthFollowsReadiness(t *testing.T) {
	handler, readiness := newManagement(t, "", nil)
	type probe struct {
		path   string
		status int
		body   string
	}
	check := func(phase string, probes ...probe) {
		t.Helper()
		for _, p := range probes {
			t.Run(phase+" "+p.path, func(t *testing.T) {
				assertHealth(t, serve(t, handler, http.MethodGet, p.path, ""), p.status, actuatorJSON, p.body)
			})
		}
	}
	check("starting",
		probe{"/actuator/health", http.StatusOK, `{"status":"UP","groups":["liveness","readiness"]}`},
		probe{"/actuator/health/liveness", http.StatusOK, `{"status":"UP"}`},
		probe{"/actuator/health/readiness", http.StatusServiceUnavailable, `{"status":"DOWN"}`},
	)
	if readiness.Ready() {
		t.Fatal("ready before MarkReady")
	}
	readiness.MarkReady()
	check("ready",
		probe{"/actuator/health", http.StatusOK, `{"status":"UP","groups":["liveness","readiness"]}`},
		probe{"/actuator/health/liveness", http.StatusOK, `{"status":"UP"}`},
		probe{"/actuator/health/readiness", http.StatusOK, `{"status":"UP"}`},
	)
	readiness.MarkShuttingDown()
	readiness.MarkReady() // never ready again
	check("shutting down",
		probe{"/actuator/health", http.StatusServiceUnavailable, `{"status":"OUT_OF_SERVICE","groups":["liveness","readiness"]}`},
		probe{"/actuator/health/liveness", http.StatusOK, `{"status":"UP"}`},
		probe{"/actuator/health/readiness", http.StatusServiceUnavailable, `{"status":"OUT_OF_SERVICE"}`},
	)
	if readiness.Ready() {
		t.Error("ready after MarkShuttingDown")
	}
}

func TestManagement_HealthContentNegotiation(t *testing.T) {
	handler, readiness := newManagement(t, "", nil)
	readiness.MarkReady()
	for _, tc := range []struct{ accept, want string }{
		{"", actuatorJSON},
		{"*/*", actuatorJSON},
		{"application/json", "application/json"},
		{"application/json, text/plain", "application/json"},
		{actuatorJSON, actuatorJSON},
		{actuatorJSON + ", application/json", actuatorJSON},
	} {
		t.Run(tc.accept, func(t *testing.T) {
			var hdr []string
			if tc.accept != "" {
				hdr = []string{"Accept", tc.accept}
			}
			assertHealth(t, serve(t, handler, http.MethodGet, "/actuator/health/readiness", "", hdr...),
				http.StatusOK, tc.want, `{"status":"UP"}`)
		})
	}
}

func TestManagement_PrometheusTextExposition(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.registerLocal("echo")
	assertStatus(t, h.do(http.MethodPost, "/v1/functions/echo:invoke", `{"input":1}`), http.StatusOK)
	handler, _ := newManagement(t, "", h.prom)

	rec := serve(t, handler, http.MethodGet, "/actuator/prometheus", "")
	assertStatus(t, rec, http.StatusOK)
	if ct := rec.Header().Get("Content-Type"); ct != "text/plain; version=0.0.4; charset=utf-8" {
		t.Errorf("Content-Type = %q, want the 0.0.4 text format", ct)
	}
	body := rec.Body.String()
	for _, want := range []string{`function_dispatch_total{function="echo"} 1`, `function_success_total{function="echo"} 1`, "go_goroutines"} {
		if !strings.Contains(body, want) {
			t.Errorf("exposition lacks %q", want)
		}
	}

	for _, tc := range []struct{ method, encoding string }{{http.MethodHead, ""}, {http.MethodGet, "gzip"}} {
		rec := serve(t, handler, tc.method, "/actuator/prometheus", "", "Accept-Encoding", tc.encoding)
		if ct := rec.Header().Get("Content-Type"); ct != "text/plain; version=0.0.4; charset=utf-8" {
			t.Errorf("%s %s Content-Type = %q", tc.method, tc.encoding, ct)
		}
	}

	om := serve(t, handler, http.MethodGet, "/actuator/prometheus", "", "Accept", "application/openmetrics-text; version=1.0.0")
	assertStatus(t, om, http.StatusOK)
	if ct := om.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text") {
		t.Errorf("OpenMetrics Content-Type = %q", ct)
	}
	if !strings.HasSuffix(om.Body.String(), "# EOF\n") {
		t.Errorf("OpenMetrics body does not end with # EOF")
	}
}

func TestManagement_CustomBasePath(t *testing.T) {
	for _, base := range []string{"/manage", "manage/", "/manage/"} {
		t.Run(base, func(t *testing.T) {
			handler, _ := newManagement(t, base, nil)
			assertStatus(t, serve(t, handler, http.MethodGet, "/manage/health/liveness", ""), http.StatusOK)
			assertError(t, serve(t, handler, http.MethodGet, "/actuator/health", ""), http.StatusNotFound, "404 NOT_FOUND", "")
		})
	}
}

func TestManagement_UnknownPathAndWrongMethod(t *testing.T) {
	handler, _ := newManagement(t, "", nil)
	for _, path := range []string{"/", "/actuator", "/actuator/", "/actuator/info", "/actuator/health/", "/v1/functions"} {
		t.Run("GET "+path, func(t *testing.T) {
			assertError(t, serve(t, handler, http.MethodGet, path, ""), http.StatusNotFound, "404 NOT_FOUND", "")
		})
	}
	for _, path := range []string{"/actuator/health", "/actuator/health/readiness", "/actuator/prometheus"} {
		t.Run("POST "+path, func(t *testing.T) {
			rec := serve(t, handler, http.MethodPost, path, "")
			assertError(t, rec, http.StatusMethodNotAllowed, "405 METHOD_NOT_ALLOWED", "Request method 'POST' is not supported.")
			if got := rec.Header().Get("Allow"); got != "GET" {
				t.Errorf("Allow = %q, want GET", got)
			}
		})
	}
}

func TestManagement_ExposureIncludeSelectsTheEndpoints(t *testing.T) {
	for _, tc := range []struct {
		include         string
		health, metrics int
	}{
		{"", http.StatusOK, http.StatusOK},
		{"health,prometheus", http.StatusOK, http.StatusOK},
		{"*", http.StatusOK, http.StatusOK},
		{"health", http.StatusOK, http.StatusNotFound},
		{" Prometheus , info", http.StatusNotFound, http.StatusOK},
		{"info", http.StatusNotFound, http.StatusNotFound},
	} {
		t.Run(tc.include, func(t *testing.T) {
			r := &api.Readiness{}
			r.MarkReady()
			handler := api.NewManagementHandler("", tc.include, r, prometheus.NewRegistry())
			for path, want := range map[string]int{
				"/actuator/health": tc.health, "/actuator/health/readiness": tc.health, "/actuator/prometheus": tc.metrics,
			} {
				rec := serve(t, handler, http.MethodGet, path, "")
				if want == http.StatusNotFound {
					assertError(t, rec, http.StatusNotFound, "404 NOT_FOUND", "")
				} else {
					assertStatus(t, rec, want)
				}
			}
		})
	}
}
