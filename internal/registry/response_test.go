package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/nanofaas/control-plane/internal/function"
)

func registerJSON(t *testing.T, s *Service, body string) *Registered {
	t.Helper()
	spec, err := function.DecodeSpec([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := s.Register(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func marshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func compact(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestResponseJSON_MatchesReferenceExamples(t *testing.T) {
	j := &journal{}
	k8s := &fakeProvider{id: "k8s", j: j, url: "http://fn-managed.ns.svc:8080/invoke"}
	tests := []struct {
		name      string
		providers bool
		body      string
		want      string
	}{
		{"LOCAL function omits null top-level fields", false,
			`{"name":"echo","image":"local","executionMode":"LOCAL"}`,
			`{"name":"echo","image":"local","command":[],"env":{},"timeoutMs":30000,"concurrency":4,"queueSize":100,
			 "maxRetries":3,"requestedExecutionMode":"LOCAL","effectiveExecutionMode":"LOCAL","runtimeMode":"HTTP"}`},
		{"DEPLOYMENT degraded to POOL", false,
			`{"name":"fn","image":"img:1","endpointUrl":"http://external:8080/invoke"}`,
			`{"name":"fn","image":"img:1","command":[],"env":{},"timeoutMs":30000,"concurrency":4,"queueSize":100,
			 "maxRetries":3,"endpointUrl":"http://external:8080/invoke","requestedExecutionMode":"DEPLOYMENT",
			 "effectiveExecutionMode":"POOL","degradationReason":"No managed deployment provider available for function 'fn'",
			 "runtimeMode":"HTTP","scalingConfig":{"strategy":"INTERNAL","minReplicas":1,"maxReplicas":10,
			 "metrics":[{"type":"queue_depth","target":"5","query":null}],
			 "concurrencyControl":{"mode":"FIXED","targetInFlightPerPod":null,"minTargetInFlightPerPod":null,
			 "maxTargetInFlightPerPod":null,"upscaleCooldownMs":null,"downscaleCooldownMs":null,
			 "highLoadThreshold":null,"lowLoadThreshold":null}}}`},
		{"managed DEPLOYMENT shows backend, no reason, provider endpoint", true,
			`{"name":"managed","image":"img","endpointUrl":"http://user-supplied/invoke","scalingConfig":{"strategy":"NONE",
			  "concurrencyControl":{"mode":"STATIC_PER_POD","targetInFlightPerPod":50,"minTargetInFlightPerPod":10,"maxTargetInFlightPerPod":3}},
			  "runtimeCommand":"cat","imagePullSecrets":["pull"],"resources":{"cpu":"250m"}}`,
			`{"name":"managed","image":"img","command":[],"env":{},"resources":{"cpu":"250m","memory":null},"timeoutMs":30000,
			 "concurrency":4,"queueSize":100,"maxRetries":3,"endpointUrl":"http://fn-managed.ns.svc:8080/invoke",
			 "requestedExecutionMode":"DEPLOYMENT","effectiveExecutionMode":"DEPLOYMENT","deploymentBackend":"k8s",
			 "runtimeMode":"HTTP","runtimeCommand":"cat","scalingConfig":{"strategy":"NONE","minReplicas":1,"maxReplicas":10,
			 "metrics":[{"type":"queue_depth","target":"5","query":null}],"concurrencyControl":{"mode":"STATIC_PER_POD",
			 "targetInFlightPerPod":3,"minTargetInFlightPerPod":3,"maxTargetInFlightPerPod":3,"upscaleCooldownMs":30000,
			 "downscaleCooldownMs":60000,"highLoadThreshold":0.85,"lowLoadThreshold":0.35}},"imagePullSecrets":["pull"]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newService(t, "", nil, nil)
			if tt.providers {
				s = newService(t, "", nil, nil, k8s)
			}
			reg := registerJSON(t, s, tt.body)
			if got, want := marshal(t, reg.Response()), compact(t, tt.want); got != want {
				t.Fatalf("response JSON\n got: %s\nwant: %s", got, want)
			}
		})
	}
}

func TestNewResponse_EffectiveEndpointWinsOverUserSupplied(t *testing.T) {
	spec := &function.Spec{Name: "f", Image: "i", EndpointURL: ptr("http://user")}
	got := NewResponse(spec, DeploymentMetadata{RequestedMode: function.ModeDeployment,
		EffectiveMode: function.ModeDeployment, Backend: "k8s", EffectiveEndpointURL: "http://effective"})
	if got.EndpointURL == nil || *got.EndpointURL != "http://effective" {
		t.Fatalf("endpointUrl = %v", got.EndpointURL)
	}
	got = NewResponse(spec, DeploymentMetadata{})
	if *got.EndpointURL != "http://user" {
		t.Fatalf("endpointUrl without metadata = %v", *got.EndpointURL)
	}
	if s := marshal(t, got); s != `{"name":"f","image":"i","endpointUrl":"http://user"}` {
		t.Fatalf("sparse response = %s", s)
	}
}

func TestResponses_ListIsJSONArrayOfSameShape(t *testing.T) {
	s := newService(t, "", nil, nil)
	if got := marshal(t, Responses(s.List())); got != `[]` {
		t.Fatalf("empty list = %s", got)
	}
	a := registerJSON(t, s, `{"name":"b","image":"i","executionMode":"POOL","endpointUrl":"http://b"}`)
	b := registerJSON(t, s, `{"name":"a","image":"i","executionMode":"LOCAL"}`)
	want := "[" + marshal(t, b.Response()) + "," + marshal(t, a.Response()) + "]"
	if got := marshal(t, Responses(s.List())); got != want {
		t.Fatalf("list = %s\nwant  %s", got, want)
	}
	if !strings.Contains(want, `"requestedExecutionMode":"POOL","effectiveExecutionMode":"POOL"`) {
		t.Fatalf("POOL modes missing: %s", want)
	}
}
