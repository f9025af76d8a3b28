package api_test

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nanofaas/control-plane/internal/api"
	"github.com/nanofaas/control-plane/internal/ratelimit"
	"github.com/nanofaas/control-plane/internal/runtimeconfig"
)

// rcFixture is the runtime-config admin API over a real Service and a real rate limiter.
type rcFixture struct {
	t       *testing.T
	handler http.Handler
	svc     *runtimeconfig.Service
	limiter *ratelimit.Limiter
	reg     *prometheus.Registry
	now     time.Time
}

type rcOpts struct {
	appliers  []runtimeconfig.Applier
	syncQueue *runtimeconfig.SyncQueueDefaults
	now       time.Time
	changeID  func() string
}

func newRCFixture(t *testing.T, o rcOpts) *rcFixture {
	t.Helper()
	f := &rcFixture{t: t, reg: prometheus.NewRegistry(), now: o.now}
	if f.now.IsZero() {
		f.now = time.Date(2026, 3, 1, 10, 0, 0, 123_000_000, time.UTC)
	}
	clock := func() time.Time { return f.now }
	f.limiter = ratelimit.New(ratelimit.DefaultMaxPerSecond, clock)
	sq := runtimeconfig.SyncQueueDefaults{
		Enabled: true, AdmissionEnabled: true,
		MaxEstimatedWait: 2 * time.Second, MaxQueueWait: 2 * time.Second, RetryAfterSeconds: 2,
	}
	if o.syncQueue != nil {
		sq = *o.syncQueue
	}
	changeID := o.changeID
	if changeID == nil {
		changeID = func() string { return "3f2b9c1e-0000-4000-8000-000000000001" }
	}
	svc, err := runtimeconfig.New(runtimeconfig.Deps{
		Limiter: f.limiter, SyncQueue: sq, Registerer: f.reg, Appliers: o.appliers,
		Clock: clock, NewChangeID: changeID, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	f.handler = api.NewAPIHandler(api.Deps{Routes: api.RuntimeConfigRoutes(svc, 0)})
	return f
}

// do sends a request; a non-empty body is sent as application/json.
func (f *rcFixture) do(method, target, body string) *httptest.ResponseRecorder {
	f.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	f.handler.ServeHTTP(rec, req)
	return rec
}

func rcAssertJSON(t *testing.T, rec *httptest.ResponseRecorder, status int, want string) {
	t.Helper()
	if rec.Code != status {
		t.Errorf("status = %d, want %d (body %s)", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if got := rec.Body.String(); got != want {
		t.Errorf("body =\n%s\nwant\n%s", got, want)
	}
}

const rcInitialBody = `{"revision":0,"rateMaxPerSecond":1000000,"syncQueueEnabled":true,"syncQueueAdmissionEnabled":true,` +
	`"syncQueueMaxEstimatedWait":"PT2S","syncQueueMaxQueueWait":"PT2S","syncQueueRetryAfterSeconds":2}`

func TestRuntimeConfigGet_ReturnsInitialSnapshot(t *testing.T) {
	f := newRCFixture(t, rcOpts{})
	rcAssertJSON(t, f.do(http.MethodGet, "/v1/admin/runtime-config", ""), http.StatusOK, rcInitialBody)
}

func TestRuntimeConfigGet_CoreDefaultsWithoutSyncQueueModule(t *testing.T) {
	core := runtimeconfig.CoreSyncQueueDefaults()
	f := newRCFixture(t, rcOpts{syncQueue: &core})
	rcAssertJSON(t, f.do(http.MethodGet, "/v1/admin/runtime-config", ""), http.StatusOK,
		`{"revision":0,"rateMaxPerSecond":1000000,"syncQueueEnabled":false,"syncQueueAdmissionEnabled":false,`+
			`"syncQueueMaxEstimatedWait":"PT2S","syncQueueMaxQueueWait":"PT2S","syncQueueRetryAfterSeconds":2}`)
}

func TestRuntimeConfigPatch_AppliesAndReturnsEffectiveConfig(t *testing.T) {
	f := newRCFixture(t, rcOpts{})
	rec := f.do(http.MethodPatch, "/v1/admin/runtime-config",
		`{"expectedRevision":0,"rateMaxPerSecond":500,"syncQueueEnabled":false,"syncQueueAdmissionEnabled":false,`+
			`"syncQueueMaxEstimatedWait":"PT5S","syncQueueMaxQueueWait":"PT10S","syncQueueRetryAfterSeconds":4}`)
	const effective = `{"revision":1,"rateMaxPerSecond":500,"syncQueueEnabled":false,"syncQueueAdmissionEnabled":false,` +
		`"syncQueueMaxEstimatedWait":"PT5S","syncQueueMaxQueueWait":"PT10S","syncQueueRetryAfterSeconds":4}`
	rcAssertJSON(t, rec, http.StatusOK, `{"revision":1,"effectiveConfig":`+effective+
		`,"appliedAt":"2026-03-01T10:00:00.123Z","changeId":"3f2b9c1e-0000-4000-8000-000000000001","warnings":[]}`)
	rcAssertJSON(t, f.do(http.MethodGet, "/v1/admin/runtime-config", ""), http.StatusOK, effective)
	if f.limiter.MaxPerSecond() != 500 {
		t.Errorf("limiter = %d, want 500", f.limiter.MaxPerSecond())
	}
}

func TestRuntimeConfigPatch_PartialPatchKeepsOtherFieldsAndDurationsEcho(t *testing.T) {
	f := newRCFixture(t, rcOpts{})
	rec := f.do(http.MethodPatch, "/v1/admin/runtime-config",
		`{"expectedRevision":0,"syncQueueMaxQueueWait":"PT1M30S","syncQueueMaxEstimatedWait":"PT0.5S"}`)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	rcAssertJSON(t, f.do(http.MethodGet, "/v1/admin/runtime-config", ""), http.StatusOK,
		`{"revision":1,"rateMaxPerSecond":1000000,"syncQueueEnabled":true,"syncQueueAdmissionEnabled":true,`+
			`"syncQueueMaxEstimatedWait":"PT0.5S","syncQueueMaxQueueWait":"PT1M30S","syncQueueRetryAfterSeconds":2}`)
}

func TestRuntimeConfigPatch_Rejections(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		status int
		want   string
	}{
		{"expectedRevision missing", `{"rateMaxPerSecond":5}`,
			400, `{"error":"expectedRevision is required"}`},
		{"expectedRevision null", `{"expectedRevision":null,"rateMaxPerSecond":5}`,
			400, `{"error":"expectedRevision is required"}`},
		{"expectedRevision checked before durations", `{"syncQueueMaxQueueWait":"2s"}`,
			400, `{"error":"expectedRevision is required"}`},
		{"non-ISO duration", `{"expectedRevision":0,"syncQueueMaxEstimatedWait":"2s"}`,
			400, `{"error":"Invalid duration for syncQueueMaxEstimatedWait","field":"syncQueueMaxEstimatedWait","value":"2s"}`},
		{"number as duration", `{"expectedRevision":0,"syncQueueMaxQueueWait":5}`,
			400, `{"error":"Invalid duration for syncQueueMaxQueueWait","field":"syncQueueMaxQueueWait","value":"5"}`},
		{"empty duration", `{"expectedRevision":0,"syncQueueMaxQueueWait":""}`,
			400, `{"error":"Invalid duration for syncQueueMaxQueueWait","field":"syncQueueMaxQueueWait","value":""}`},
		{"bad duration checked before validation", `{"expectedRevision":0,"rateMaxPerSecond":0,"syncQueueMaxQueueWait":"soon"}`,
			400, `{"error":"Invalid duration for syncQueueMaxQueueWait","field":"syncQueueMaxQueueWait","value":"soon"}`},
		{"partial patch makes estimated exceed queue wait", `{"expectedRevision":0,"syncQueueMaxEstimatedWait":"PT10S"}`,
			422, `{"errors":["syncQueueMaxEstimatedWait must be <= syncQueueMaxQueueWait"]}`},
		{"validation wins over stale revision", `{"expectedRevision":9,"rateMaxPerSecond":-1}`,
			422, `{"errors":["rateMaxPerSecond must be > 0, got -1"]}`},
		{"every rule broken", `{"expectedRevision":0,"rateMaxPerSecond":0,"syncQueueMaxEstimatedWait":"PT0S",` +
			`"syncQueueMaxQueueWait":"-PT1S","syncQueueRetryAfterSeconds":0}`,
			422, `{"errors":["rateMaxPerSecond must be > 0, got 0","syncQueueMaxEstimatedWait must be > 0",` +
				`"syncQueueMaxQueueWait must be > 0","syncQueueRetryAfterSeconds must be >= 1, got 0"]}`},
		{"stale revision", `{"expectedRevision":7,"rateMaxPerSecond":5}`,
			409, `{"error":"Revision mismatch: expected 7 but current is 0","currentRevision":0}`},
		{"malformed JSON", `{"expectedRevision":0,`,
			400, `{"error":"BAD_REQUEST","message":"Failed to read HTTP message"}`},
		{"wrong type for an integer", `{"expectedRevision":0,"rateMaxPerSecond":"lots"}`,
			400, `{"error":"BAD_REQUEST","message":"Failed to read HTTP message"}`},
		{"wrong type for a boolean", `{"expectedRevision":0,"syncQueueEnabled":{}}`,
			400, `{"error":"BAD_REQUEST","message":"Failed to read HTTP message"}`},
		{"wrong type for a duration", `{"expectedRevision":0,"syncQueueMaxQueueWait":["PT1S"]}`,
			400, `{"error":"BAD_REQUEST","message":"Failed to read HTTP message"}`},
		{"integer out of range", `{"expectedRevision":0,"rateMaxPerSecond":3000000000}`,
			400, `{"error":"BAD_REQUEST","message":"Failed to read HTTP message"}`},
		{"not an object", `[1]`,
			400, `{"error":"BAD_REQUEST","message":"Failed to read HTTP message"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newRCFixture(t, rcOpts{})
			rcAssertJSON(t, f.do(http.MethodPatch, "/v1/admin/runtime-config", tt.body), tt.status, tt.want)
			rcAssertJSON(t, f.do(http.MethodGet, "/v1/admin/runtime-config", ""), http.StatusOK, rcInitialBody)
			if f.limiter.MaxPerSecond() != ratelimit.DefaultMaxPerSecond {
				t.Errorf("limiter changed to %d", f.limiter.MaxPerSecond())
			}
		})
	}
}

func TestRuntimeConfigPatch_FrameworkBodyErrors(t *testing.T) {
	f := newRCFixture(t, rcOpts{})
	req := httptest.NewRequest(http.MethodPatch, "/v1/admin/runtime-config", nil)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	f.handler.ServeHTTP(rec, req)
	rcAssertJSON(t, rec, http.StatusBadRequest, `{"error":"BAD_REQUEST","message":"Required request body is missing"}`)

	req = httptest.NewRequest(http.MethodPatch, "/v1/admin/runtime-config", strings.NewReader(`{"expectedRevision":0}`))
	rec = httptest.NewRecorder()
	f.handler.ServeHTTP(rec, req)
	rcAssertJSON(t, rec, http.StatusUnsupportedMediaType,
		`{"error":"415 UNSUPPORTED_MEDIA_TYPE","message":"Content type 'application/octet-stream' not supported"}`)
}

func TestRuntimeConfigPatch_StaleAfterSuccessfulUpdate(t *testing.T) {
	f := newRCFixture(t, rcOpts{})
	if rec := f.do(http.MethodPatch, "/v1/admin/runtime-config", `{"expectedRevision":0}`); rec.Code != http.StatusOK {
		t.Fatalf("first patch: status %d", rec.Code)
	}
	rcAssertJSON(t, f.do(http.MethodPatch, "/v1/admin/runtime-config", `{"expectedRevision":0}`), http.StatusConflict,
		`{"error":"Revision mismatch: expected 0 but current is 1","currentRevision":1}`)
	// An empty patch still bumps the revision.
	rec := f.do(http.MethodPatch, "/v1/admin/runtime-config", `{"expectedRevision":1,"unknownField":true}`)
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Body.String(), `{"revision":2,`) {
		t.Errorf("empty patch on revision 1: %d %s", rec.Code, rec.Body)
	}
}

func TestRuntimeConfigPatch_JacksonScalarCoercions(t *testing.T) {
	f := newRCFixture(t, rcOpts{})
	rec := f.do(http.MethodPatch, "/v1/admin/runtime-config",
		`{"expectedRevision":"0","rateMaxPerSecond":7.9,"syncQueueEnabled":"false","syncQueueAdmissionEnabled":0,`+
			`"syncQueueRetryAfterSeconds":"3","syncQueueMaxQueueWait":null}`)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	rcAssertJSON(t, f.do(http.MethodGet, "/v1/admin/runtime-config", ""), http.StatusOK,
		`{"revision":1,"rateMaxPerSecond":7,"syncQueueEnabled":false,"syncQueueAdmissionEnabled":false,`+
			`"syncQueueMaxEstimatedWait":"PT2S","syncQueueMaxQueueWait":"PT2S","syncQueueRetryAfterSeconds":3}`)
}

func TestRuntimeConfigPatch_AppliedAtUsesJavaInstantFormat(t *testing.T) {
	tests := []struct {
		nanos int
		want  string
	}{
		{0, "2026-03-01T10:00:00Z"},
		{120_000_000, "2026-03-01T10:00:00.120Z"},
		{123_456_000, "2026-03-01T10:00:00.123456Z"},
		{1, "2026-03-01T10:00:00.000000001Z"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			f := newRCFixture(t, rcOpts{now: time.Date(2026, 3, 1, 11, 0, 0, tt.nanos, time.FixedZone("CET", 3600))})
			rec := f.do(http.MethodPatch, "/v1/admin/runtime-config", `{"expectedRevision":0}`)
			if !strings.Contains(rec.Body.String(), `"appliedAt":"`+tt.want+`"`) {
				t.Errorf("body %s lacks appliedAt %s", rec.Body, tt.want)
			}
		})
	}
}

func TestRuntimeConfigPatch_DefaultChangeIDIsRandomUUID(t *testing.T) {
	reg := prometheus.NewRegistry()
	svc, err := runtimeconfig.New(runtimeconfig.Deps{
		Limiter: ratelimit.New(10, nil), SyncQueue: runtimeconfig.CoreSyncQueueDefaults(), Registerer: reg,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	h := api.NewAPIHandler(api.Deps{Routes: api.RuntimeConfigRoutes(svc, 0)})
	uuidRE := regexp.MustCompile(`"changeId":"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"`)
	seen := map[string]bool{}
	for rev := range 2 {
		req := httptest.NewRequest(http.MethodPatch, "/v1/admin/runtime-config",
			strings.NewReader(`{"expectedRevision":`+strconv.Itoa(rev)+`}`))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		id := uuidRE.FindString(rec.Body.String())
		if id == "" || seen[id] {
			t.Fatalf("patch %d: changeId missing, not a UUID or repeated: %s", rev, rec.Body)
		}
		seen[id] = true
	}
}

func TestRuntimeConfigPatch_ApplyFailureRollsBackWith503(t *testing.T) {
	failing := runtimeconfig.ApplierFunc(func(runtimeconfig.Snapshot) error { return errors.New("component refused") })
	f := newRCFixture(t, rcOpts{appliers: []runtimeconfig.Applier{failing}})
	rcAssertJSON(t, f.do(http.MethodPatch, "/v1/admin/runtime-config", `{"expectedRevision":0,"rateMaxPerSecond":5}`),
		http.StatusServiceUnavailable, `{"error":"Apply failed, rolled back","detail":"Failed to apply runtime config"}`)
	rcAssertJSON(t, f.do(http.MethodGet, "/v1/admin/runtime-config", ""), http.StatusOK, rcInitialBody)
	if f.limiter.MaxPerSecond() != ratelimit.DefaultMaxPerSecond {
		t.Errorf("limiter = %d after rollback", f.limiter.MaxPerSecond())
	}
	scrape := rcScrape(t, f.reg)
	if !strings.Contains(scrape, `controlplane_runtime_config_updates_total{status="failure"} 1`+"\n") ||
		!strings.Contains(scrape, "controlplane_runtime_config_revision 0\n") {
		t.Errorf("metrics after rollback:\n%s", scrape)
	}
}

func TestRuntimeConfigPatch_RateIsHotReloadedIntoLimiter(t *testing.T) {
	f := newRCFixture(t, rcOpts{})
	if rec := f.do(http.MethodPatch, "/v1/admin/runtime-config", `{"expectedRevision":0,"rateMaxPerSecond":3}`); rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var got []bool
	for range 5 {
		got = append(got, f.limiter.Allow())
	}
	if want := []bool{true, true, true, false, false}; !slices.Equal(got, want) {
		t.Errorf("Allow sequence = %v, want %v", got, want)
	}
	scrape := rcScrape(t, f.reg)
	for _, line := range []string{
		"controlplane_runtime_config_revision 1",
		`controlplane_runtime_config_updates_total{status="success"} 1`,
		`controlplane_runtime_config_updates_total{status="failure"} 0`,
		"controlplane_runtime_config_apply_duration_seconds_count 1",
		"controlplane_runtime_config_apply_duration_seconds_sum 0",
		"controlplane_runtime_config_apply_duration_seconds_max 0",
	} {
		if !strings.Contains(scrape, line+"\n") {
			t.Errorf("scrape lacks %q", line)
		}
	}
}

func TestRuntimeConfigValidate_Outcomes(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		status int
		want   string
	}{
		{"valid patch", `{"syncQueueMaxEstimatedWait":"PT5S","syncQueueMaxQueueWait":"PT10S"}`, 200, `{"valid":true}`},
		{"empty patch", `{}`, 200, `{"valid":true}`},
		{"expectedRevision is ignored", `{"expectedRevision":99,"rateMaxPerSecond":10}`, 200, `{"valid":true}`},
		{"merged snapshot invalid", `{"syncQueueMaxEstimatedWait":"PT3S"}`,
			422, `{"errors":["syncQueueMaxEstimatedWait must be <= syncQueueMaxQueueWait"]}`},
		{"retry after too small", `{"syncQueueRetryAfterSeconds":0}`,
			422, `{"errors":["syncQueueRetryAfterSeconds must be >= 1, got 0"]}`},
		{"bad duration", `{"syncQueueMaxEstimatedWait":"2s"}`,
			400, `{"error":"Invalid duration for syncQueueMaxEstimatedWait","field":"syncQueueMaxEstimatedWait","value":"2s"}`},
		{"malformed JSON", `{`, 400, `{"error":"BAD_REQUEST","message":"Failed to read HTTP message"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newRCFixture(t, rcOpts{})
			rcAssertJSON(t, f.do(http.MethodPost, "/v1/admin/runtime-config/validate", tt.body), tt.status, tt.want)
			rcAssertJSON(t, f.do(http.MethodGet, "/v1/admin/runtime-config", ""), http.StatusOK, rcInitialBody)
		})
	}
}

func TestRuntimeConfigRoutes_WrongMethodIs405WithAllow(t *testing.T) {
	f := newRCFixture(t, rcOpts{})
	tests := []struct {
		method, target, allow string
	}{
		{http.MethodPut, "/v1/admin/runtime-config", "GET, PATCH"},
		{http.MethodPost, "/v1/admin/runtime-config", "GET, PATCH"},
		{http.MethodGet, "/v1/admin/runtime-config/validate", "POST"},
	}
	for _, tt := range tests {
		rec := f.do(tt.method, tt.target, "")
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != tt.allow {
			t.Errorf("%s %s = %d Allow %q, want 405 Allow %q", tt.method, tt.target, rec.Code, rec.Header().Get("Allow"), tt.allow)
		}
	}
}

func TestRuntimeConfigRoutes_AbsentWhenAdminAPIDisabled(t *testing.T) {
	h := api.NewAPIHandler(api.Deps{})
	for _, target := range []string{"/v1/admin/runtime-config", "/v1/admin/runtime-config/validate"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
		if rec.Code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", target, rec.Code)
		}
	}
}

func rcScrape(t *testing.T, g prometheus.Gatherer) string {
	t.Helper()
	h := api.NewManagementHandler("", "", &api.Readiness{}, g)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/actuator/prometheus", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape status %d", rec.Code)
	}
	return rec.Body.String()
}
