package api_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/nanofaas/control-plane/internal/failure"
	"github.com/nanofaas/control-plane/internal/function"
	"github.com/nanofaas/control-plane/internal/registry"
)

const echoResponse = `{"name":"echo","image":"local","command":[],"env":{},"timeoutMs":30000,"concurrency":4,` +
	`"queueSize":100,"maxRetries":3,"requestedExecutionMode":"LOCAL","effectiveExecutionMode":"LOCAL","runtimeMode":"HTTP"}`

func TestList_EmptyRegistryIsEmptyArray(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	assertJSON(t, h.do(http.MethodGet, "/v1/functions", ""), http.StatusOK, `[]`)
}

func TestList_SortedByNameWithFunctionResponseShape(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	for _, name := range []string{"zeta", "echo", "alpha.fn-1", "Beta"} {
		h.registerLocal(name)
	}
	got := decodeInto[[]map[string]any](t, h.do(http.MethodGet, "/v1/functions", ""))
	want := []string{"Beta", "alpha.fn-1", "echo", "zeta"} // byte order, like the registry's sort
	if len(got) != len(want) {
		t.Fatalf("got %d functions, want %d", len(got), len(want))
	}
	for i, fn := range got {
		if fn["name"] != want[i] {
			t.Errorf("list[%d].name = %v, want %s", i, fn["name"], want[i])
		}
		if fn["requestedExecutionMode"] != "LOCAL" || fn["effectiveExecutionMode"] != "LOCAL" {
			t.Errorf("list[%d] modes = %v/%v, want LOCAL/LOCAL", i, fn["requestedExecutionMode"], fn["effectiveExecutionMode"])
		}
	}
	rec := h.do(http.MethodGet, "/v1/functions", "")
	// The echo entry is byte-identical to the single-function response.
	if body := rec.Body.String(); !strings.Contains(body, echoResponse) {
		t.Errorf("list %s does not contain %s", body, echoResponse)
	}
}

func TestRegister_LocalReturns201WithNullFieldsOmitted(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	rec := h.do(http.MethodPost, "/v1/functions", `{"name":"echo","image":"local","executionMode":"LOCAL"}`)
	assertJSON(t, rec, http.StatusCreated, echoResponse)
	assertJSON(t, h.do(http.MethodGet, "/v1/functions/echo", ""), http.StatusOK, echoResponse)
}

func TestRegister_DeploymentWithoutProviderDegradesToPoolWhenEndpointGiven(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	rec := h.do(http.MethodPost, "/v1/functions",
		`{"name":"fn","image":"img:1","endpointUrl":"http://external:8080/invoke"}`)
	want := `{"name":"fn","image":"img:1","command":[],"env":{},"timeoutMs":30000,"concurrency":4,"queueSize":100,` +
		`"maxRetries":3,"endpointUrl":"http://external:8080/invoke","requestedExecutionMode":"DEPLOYMENT",` +
		`"effectiveExecutionMode":"POOL","degradationReason":"No managed deployment provider available for function 'fn'",` +
		`"runtimeMode":"HTTP","scalingConfig":{"strategy":"INTERNAL","minReplicas":1,"maxReplicas":10,` +
		`"metrics":[{"type":"queue_depth","target":"5","query":null}],` +
		`"concurrencyControl":{"mode":"FIXED","targetInFlightPerPod":null,"minTargetInFlightPerPod":null,` +
		`"maxTargetInFlightPerPod":null,"upscaleCooldownMs":null,"downscaleCooldownMs":null,` +
		`"highLoadThreshold":null,"lowLoadThreshold":null}}}`
	assertJSON(t, rec, http.StatusCreated, want)
	// GET shows the same degraded function: requested DEPLOYMENT, effective POOL, reason.
	assertJSON(t, h.do(http.MethodGet, "/v1/functions/fn", ""), http.StatusOK, want)
}

func TestRegister_ManagedDeploymentShowsBackendAndProviderEndpoint(t *testing.T) {
	p := &fakeProvider{id: "fake", endpoint: "http://fn-svc:8080/invoke"}
	h := newHarness(t, harnessOpts{providers: toProviders(p)})
	rec := h.do(http.MethodPost, "/v1/functions",
		`{"name":"fn","image":"img:1","endpointUrl":"http://user-supplied/invoke"}`)
	assertStatus(t, rec, http.StatusCreated)
	got := decodeInto[map[string]any](t, rec)
	checks := map[string]any{
		"endpointUrl":            "http://fn-svc:8080/invoke",
		"requestedExecutionMode": "DEPLOYMENT",
		"effectiveExecutionMode": "DEPLOYMENT",
		"deploymentBackend":      "fake",
	}
	for k, v := range checks {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	for _, absent := range []string{"degradationReason", "resources", "runtimeCommand", "imagePullSecrets"} {
		if _, ok := got[absent]; ok {
			t.Errorf("%s present, want omitted", absent)
		}
	}
}

func TestRegister_ConcurrencyControlIsEchoedNormalized(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	rec := h.do(http.MethodPost, "/v1/functions", `{"name":"fn","image":"i","endpointUrl":"http://x/",
		"scalingConfig":{"strategy":"INTERNAL","concurrencyControl":{"mode":"ADAPTIVE_PER_POD"}}}`)
	assertStatus(t, rec, http.StatusCreated)
	got := decodeInto[struct {
		ScalingConfig function.ScalingConfig `json:"scalingConfig"`
	}](t, rec)
	cc := got.ScalingConfig.ConcurrencyControl
	if cc == nil || cc.Mode == nil || *cc.Mode != function.ConcurrencyAdaptivePerPod {
		t.Fatalf("concurrencyControl = %+v, want mode ADAPTIVE_PER_POD", cc)
	}
	if cc.TargetInFlightPerPod == nil || cc.HighLoadThreshold == nil {
		t.Errorf("concurrencyControl %+v lacks its per-pod defaults", cc)
	}
}

func TestRegister_Outcomes(t *testing.T) {
	tests := []struct {
		name  string
		opts  func() harnessOpts
		body  string
		check func(t *testing.T, h *harness, rec *recorder)
	}{
		{
			name: "resolver rejects scaling config: 400 text",
			body: `{"name":"fn","image":"i","scalingConfig":{"maxReplicas":0}}`,
			check: func(t *testing.T, h *harness, rec *recorder) {
				assertText(t, rec, http.StatusBadRequest, "maxReplicas must be >= 1")
			},
		},
		{
			name: "no provider and no endpoint: 503 text",
			body: `{"name":"fn","image":"i","executionMode":"DEPLOYMENT"}`,
			check: func(t *testing.T, h *harness, rec *recorder) {
				assertText(t, rec, http.StatusServiceUnavailable, "No managed deployment provider available for function 'fn'")
			},
		},
		{
			name: "provisioning unavailable without endpoint: 503 text",
			opts: func() harnessOpts {
				return harnessOpts{providers: toProviders(&fakeProvider{id: "fake", provisionErr: failure.Unavailablef("cluster is on fire")})}
			},
			body: `{"name":"fn","image":"i"}`,
			check: func(t *testing.T, h *harness, rec *recorder) {
				assertText(t, rec, http.StatusServiceUnavailable, "cluster is on fire")
			},
		},
		{
			name: "provisioning invalid argument: 400 text",
			opts: func() harnessOpts {
				return harnessOpts{providers: toProviders(&fakeProvider{id: "fake", provisionErr: failure.Invalidf("bad name for backend")})}
			},
			body: `{"name":"fn","image":"i"}`,
			check: func(t *testing.T, h *harness, rec *recorder) {
				assertText(t, rec, http.StatusBadRequest, "bad name for backend")
			},
		},
		{
			name: "unexpected provisioning error: 500 without internals",
			opts: func() harnessOpts {
				return harnessOpts{providers: toProviders(&fakeProvider{id: "fake", provisionErr: errors.New("dial tcp 10.0.0.7:6443: secret")})}
			},
			body: `{"name":"fn","image":"i","endpointUrl":"http://x/"}`,
			check: func(t *testing.T, h *harness, rec *recorder) {
				assertJSON(t, rec, http.StatusInternalServerError, internalErrorBody)
			},
		},
		{
			name: "listener unavailable: 503 text",
			opts: func() harnessOpts {
				return harnessOpts{listeners: []registry.Listener{fakeListener{registerErr: failure.Unavailablef("queue module busy")}}}
			},
			body: `{"name":"fn","image":"i","executionMode":"LOCAL"}`,
			check: func(t *testing.T, h *harness, rec *recorder) {
				assertText(t, rec, http.StatusServiceUnavailable, "queue module busy")
			},
		},
		{
			name: "listener unexpected error: 500",
			opts: func() harnessOpts {
				return harnessOpts{listeners: []registry.Listener{fakeListener{registerErr: errors.New("nil map write")}}}
			},
			body: `{"name":"fn","image":"i","executionMode":"LOCAL"}`,
			check: func(t *testing.T, h *harness, rec *recorder) {
				assertJSON(t, rec, http.StatusInternalServerError, internalErrorBody)
			},
		},
		{
			name: "image not found: 422 JSON",
			opts: k8sWithImages(failure.ImageNotFound("i")),
			body: `{"name":"fn","image":"i"}`,
			check: func(t *testing.T, h *harness, rec *recorder) {
				assertJSON(t, rec, 422, `{"error":"IMAGE_NOT_FOUND","message":"Image not found in registry: i"}`)
			},
		},
		{
			name: "image pull auth: 424 JSON",
			opts: k8sWithImages(failure.ImagePullAuthRequired("i")),
			body: `{"name":"fn","image":"i"}`,
			check: func(t *testing.T, h *harness, rec *recorder) {
				assertJSON(t, rec, 424, `{"error":"IMAGE_PULL_AUTH_REQUIRED","message":"Image pull authentication failed for: i"}`)
			},
		},
		{
			name: "image registry unavailable: 503 JSON",
			opts: k8sWithImages(failure.ImageRegistryUnavailable("i", "timeout")),
			body: `{"name":"fn","image":"i"}`,
			check: func(t *testing.T, h *harness, rec *recorder) {
				assertJSON(t, rec, http.StatusServiceUnavailable,
					`{"error":"IMAGE_REGISTRY_UNAVAILABLE","message":"Unable to validate image in registry: i (timeout)"}`)
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var o harnessOpts
			if tc.opts != nil {
				o = tc.opts()
			}
			h := newHarness(t, o)
			tc.check(t, h, h.do(http.MethodPost, "/v1/functions", tc.body))
			// A failed registration leaves nothing behind.
			assertEmpty(t, h.do(http.MethodGet, "/v1/functions/fn", ""), http.StatusNotFound)
		})
	}
}

func k8sWithImages(err error) func() harnessOpts {
	return func() harnessOpts {
		return harnessOpts{
			providers: toProviders(&fakeProvider{id: "k8s", endpoint: "http://fn-fn:8080/invoke"}),
			images:    fakeImages{err: err},
		}
	}
}

func TestRegister_DuplicateNameReturns409Empty(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.registerLocal("echo")
	assertEmpty(t, h.do(http.MethodPost, "/v1/functions", `{"name":"echo","image":"other"}`), http.StatusConflict)
	// Validation and spec resolution come before the name check.
	assertError(t, h.do(http.MethodPost, "/v1/functions", `{"name":"echo","image":""}`), http.StatusBadRequest,
		"VALIDATION_ERROR", "Request validation failed", "image: must not be blank")
	assertText(t, h.do(http.MethodPost, "/v1/functions", `{"name":"echo","image":"i","scalingConfig":{"minReplicas":-1}}`),
		http.StatusBadRequest, "minReplicas must be >= 0")
	// The original registration is untouched.
	assertJSON(t, h.do(http.MethodGet, "/v1/functions/echo", ""), http.StatusOK, echoResponse)
}

func TestGet_UnknownFunctionReturns404Empty(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	assertEmpty(t, h.do(http.MethodGet, "/v1/functions/nope", ""), http.StatusNotFound)
}

func TestDelete_RemovesFunction(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.registerLocal("echo")
	assertEmpty(t, h.do(http.MethodDelete, "/v1/functions/echo", ""), http.StatusNoContent)
	assertEmpty(t, h.do(http.MethodGet, "/v1/functions/echo", ""), http.StatusNotFound)
	assertEmpty(t, h.do(http.MethodDelete, "/v1/functions/echo", ""), http.StatusNotFound)
}

func TestDelete_ManagedDeploymentIsDeprovisioned(t *testing.T) {
	p := &fakeProvider{id: "fake", endpoint: "http://fn:8080/"}
	h := newHarness(t, harnessOpts{providers: toProviders(p)})
	h.register(`{"name":"fn","image":"i"}`)
	assertEmpty(t, h.do(http.MethodDelete, "/v1/functions/fn", ""), http.StatusNoContent)
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.removed) != 1 || p.removed[0] != "fn" {
		t.Errorf("deprovisioned %v, want [fn]", p.removed)
	}
}

// A failing removal is never mapped to 503 text (even an IllegalStateException): the
// reference lets it through to the generic 500, and the function stays registered.
func TestDelete_FailureIs500AndRollsBack(t *testing.T) {
	tests := []struct {
		name string
		opts harnessOpts
		body string
	}{
		{
			name: "listener unavailable",
			opts: harnessOpts{listeners: []registry.Listener{fakeListener{removeErr: failure.Unavailablef("busy")}}},
			body: `{"name":"fn","image":"i","executionMode":"LOCAL"}`,
		},
		{
			name: "deprovision fails",
			opts: harnessOpts{providers: toProviders(&fakeProvider{id: "fake", endpoint: "http://fn/", deprovisionErr: failure.Invalidf("nope")})},
			body: `{"name":"fn","image":"i"}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.opts)
			h.register(tc.body)
			assertJSON(t, h.do(http.MethodDelete, "/v1/functions/fn", ""), http.StatusInternalServerError, internalErrorBody)
			assertStatus(t, h.do(http.MethodGet, "/v1/functions/fn", ""), http.StatusOK)
		})
	}
}

func TestSetReplicas_Outcomes(t *testing.T) {
	type setup struct {
		provider *fakeProvider
		register string // body registered before the PUT ("" = nothing)
	}
	managed := func(p *fakeProvider) setup { return setup{provider: p, register: `{"name":"fn","image":"i"}`} }
	tests := []struct {
		name  string
		setup setup
		path  string
		body  string
		check func(t *testing.T, rec *recorder, p *fakeProvider)
	}{
		{
			name:  "managed deployment scaled",
			setup: managed(&fakeProvider{id: "fake", endpoint: "http://fn/"}),
			body:  `{"replicas":3}`,
			check: func(t *testing.T, rec *recorder, p *fakeProvider) {
				assertJSON(t, rec, http.StatusOK, `{"function":"fn","replicas":3}`)
				if n, ok := p.replicasOf("fn"); !ok || n != 3 {
					t.Errorf("provider replicas = %d,%v, want 3", n, ok)
				}
			},
		},
		{
			name:  "zero allowed",
			setup: managed(&fakeProvider{id: "fake", endpoint: "http://fn/"}),
			body:  `{"replicas":0}`,
			check: func(t *testing.T, rec *recorder, p *fakeProvider) {
				assertJSON(t, rec, http.StatusOK, `{"function":"fn","replicas":0}`)
				if n, ok := p.replicasOf("fn"); !ok || n != 0 {
					t.Errorf("provider replicas = %d,%v, want 0", n, ok)
				}
			},
		},
		{
			name:  "numeric string coerced",
			setup: managed(&fakeProvider{id: "fake", endpoint: "http://fn/"}),
			body:  `{"replicas":"5"}`,
			check: func(t *testing.T, rec *recorder, _ *fakeProvider) {
				assertJSON(t, rec, http.StatusOK, `{"function":"fn","replicas":5}`)
			},
		},
		{
			name:  "fraction truncated",
			setup: managed(&fakeProvider{id: "fake", endpoint: "http://fn/"}),
			body:  `{"replicas":2.9}`,
			check: func(t *testing.T, rec *recorder, _ *fakeProvider) {
				assertJSON(t, rec, http.StatusOK, `{"function":"fn","replicas":2}`)
			},
		},
		{
			name: "unknown function: 404 empty",
			body: `{"replicas":1}`,
			check: func(t *testing.T, rec *recorder, _ *fakeProvider) {
				assertEmpty(t, rec, http.StatusNotFound)
			},
		},
		{
			name:  "LOCAL function: 400 text",
			setup: setup{register: `{"name":"fn","image":"i","executionMode":"LOCAL"}`},
			body:  `{"replicas":1}`,
			check: func(t *testing.T, rec *recorder, _ *fakeProvider) {
				assertText(t, rec, http.StatusBadRequest, "Function 'fn' is not in DEPLOYMENT mode")
			},
		},
		{
			name:  "POOL function: 400 text",
			setup: setup{register: `{"name":"fn","image":"i","executionMode":"POOL","endpointUrl":"http://x/"}`},
			body:  `{"replicas":1}`,
			check: func(t *testing.T, rec *recorder, _ *fakeProvider) {
				assertText(t, rec, http.StatusBadRequest, "Function 'fn' is not in DEPLOYMENT mode")
			},
		},
		{
			name:  "DEPLOYMENT degraded to POOL: 400 text",
			setup: setup{register: `{"name":"fn","image":"i","endpointUrl":"http://x/"}`},
			body:  `{"replicas":1}`,
			check: func(t *testing.T, rec *recorder, _ *fakeProvider) {
				assertText(t, rec, http.StatusBadRequest, "Function 'fn' is not in DEPLOYMENT mode")
			},
		},
		{
			name:  "effective DEPLOYMENT without backend: 503 text",
			setup: managed(&fakeProvider{id: "fake", endpoint: "http://fn/", noBackend: true}),
			body:  `{"replicas":1}`,
			check: func(t *testing.T, rec *recorder, _ *fakeProvider) {
				assertText(t, rec, http.StatusServiceUnavailable, "Function 'fn' is not a managed deployment")
			},
		},
		{
			name:  "provider unavailable: 503 text",
			setup: managed(&fakeProvider{id: "fake", endpoint: "http://fn/", setReplicasErr: failure.Unavailablef("Deployment fn-fn not found")}),
			body:  `{"replicas":1}`,
			check: func(t *testing.T, rec *recorder, _ *fakeProvider) {
				assertText(t, rec, http.StatusServiceUnavailable, "Deployment fn-fn not found")
			},
		},
		{
			name:  "provider invalid argument: 400 text",
			setup: managed(&fakeProvider{id: "fake", endpoint: "http://fn/", setReplicasErr: failure.Invalidf("too many replicas")}),
			body:  `{"replicas":1}`,
			check: func(t *testing.T, rec *recorder, _ *fakeProvider) {
				assertText(t, rec, http.StatusBadRequest, "too many replicas")
			},
		},
		{
			name:  "provider unexpected error: 500",
			setup: managed(&fakeProvider{id: "fake", endpoint: "http://fn/", setReplicasErr: errors.New("connection reset by 10.1.1.1")}),
			body:  `{"replicas":1}`,
			check: func(t *testing.T, rec *recorder, _ *fakeProvider) {
				assertJSON(t, rec, http.StatusInternalServerError, internalErrorBody)
			},
		},
		{
			name:  "replicas absent: validation",
			setup: managed(&fakeProvider{id: "fake", endpoint: "http://fn/"}),
			body:  `{}`,
			check: func(t *testing.T, rec *recorder, _ *fakeProvider) {
				assertError(t, rec, http.StatusBadRequest, "VALIDATION_ERROR", "Request validation failed", "replicas: must not be null")
			},
		},
		{
			name:  "replicas null: validation",
			setup: managed(&fakeProvider{id: "fake", endpoint: "http://fn/"}),
			body:  `{"replicas":null}`,
			check: func(t *testing.T, rec *recorder, _ *fakeProvider) {
				assertError(t, rec, http.StatusBadRequest, "VALIDATION_ERROR", "Request validation failed", "replicas: must not be null")
			},
		},
		{
			name:  "replicas empty string is null: validation",
			setup: managed(&fakeProvider{id: "fake", endpoint: "http://fn/"}),
			body:  `{"replicas":""}`,
			check: func(t *testing.T, rec *recorder, _ *fakeProvider) {
				assertError(t, rec, http.StatusBadRequest, "VALIDATION_ERROR", "Request validation failed", "replicas: must not be null")
			},
		},
		{
			name:  "replicas negative: validation",
			setup: managed(&fakeProvider{id: "fake", endpoint: "http://fn/"}),
			body:  `{"replicas":-1}`,
			check: func(t *testing.T, rec *recorder, p *fakeProvider) {
				assertError(t, rec, http.StatusBadRequest, "VALIDATION_ERROR", "Request validation failed",
					"replicas: must be greater than or equal to 0")
				if _, ok := p.replicasOf("fn"); ok {
					t.Errorf("provider was called")
				}
			},
		},
		{
			name:  "replicas not a number: bad request",
			setup: managed(&fakeProvider{id: "fake", endpoint: "http://fn/"}),
			body:  `{"replicas":"many"}`,
			check: func(t *testing.T, rec *recorder, _ *fakeProvider) {
				assertError(t, rec, http.StatusBadRequest, "BAD_REQUEST", "Failed to read HTTP message")
			},
		},
		{
			name:  "replicas beyond int: bad request",
			setup: managed(&fakeProvider{id: "fake", endpoint: "http://fn/"}),
			body:  `{"replicas":3000000000}`,
			check: func(t *testing.T, rec *recorder, _ *fakeProvider) {
				assertError(t, rec, http.StatusBadRequest, "BAD_REQUEST", "Failed to read HTTP message")
			},
		},
		{
			name: "blank name: validation",
			path: "/v1/functions/%20/replicas",
			body: `{"replicas":1}`,
			check: func(t *testing.T, rec *recorder, _ *fakeProvider) {
				assertError(t, rec, http.StatusBadRequest, "VALIDATION_ERROR", "Request validation failed", "name: Function name is required")
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var o harnessOpts
			p := tc.setup.provider
			if p != nil {
				o.providers = toProviders(p)
			}
			h := newHarness(t, o)
			if tc.setup.register != "" {
				h.register(tc.setup.register)
			}
			path := tc.path
			if path == "" {
				path = "/v1/functions/fn/replicas"
			}
			tc.check(t, h.do(http.MethodPut, path, tc.body), p)
		})
	}
}

// A function provisioned by a backend that the serving process no longer has (two services
// over one registry) answers 503 with the reference's text.
func TestSetReplicas_BackendGoneReturns503Text(t *testing.T) {
	provisioner := newHarness(t, harnessOpts{providers: toProviders(&fakeProvider{id: "fake", endpoint: "http://fn/"})})
	provisioner.register(`{"name":"fn","image":"i"}`)
	h := newHarness(t, harnessOpts{registry: provisioner.registry})
	assertText(t, h.do(http.MethodPut, "/v1/functions/fn/replicas", `{"replicas":1}`),
		http.StatusServiceUnavailable, "No managed deployment provider with id 'fake' found")
}

// writeOnlyFunctions is the real service with its reads disabled.
type writeOnlyFunctions struct{ *registry.Service }

func (writeOnlyFunctions) Get(string) (*registry.Registered, bool) {
	panic("registry read during registration")
}

func TestRegister_ResponseIsBuiltFromRegistrationNotARegistryRead(t *testing.T) {
	backing := newHarness(t, harnessOpts{})
	h := newHarness(t, harnessOpts{functions: writeOnlyFunctions{backing.functions}})
	assertJSON(t, h.do(http.MethodPost, "/v1/functions", `{"name":"echo","image":"local","executionMode":"LOCAL"}`),
		http.StatusCreated, echoResponse)
}
