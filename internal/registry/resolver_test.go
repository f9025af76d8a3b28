package registry

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/nanofaas/control-plane/internal/failure"
	"github.com/nanofaas/control-plane/internal/function"
)

// resolveJSON decodes body as a registration request and resolves it with the reference defaults.
func resolveJSON(t *testing.T, body string) (*function.Spec, error) {
	t.Helper()
	spec, err := function.DecodeSpec([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return NewResolver(ReferenceDefaults()).Resolve(&spec)
}

func scalingJSON(t *testing.T, s *function.Spec) string {
	t.Helper()
	b, err := json.Marshal(s.ScalingConfig)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const fixedCC = `"concurrencyControl":{"mode":"FIXED","targetInFlightPerPod":null,"minTargetInFlightPerPod":null,` +
	`"maxTargetInFlightPerPod":null,"upscaleCooldownMs":null,"downscaleCooldownMs":null,"highLoadThreshold":null,"lowLoadThreshold":null}`

func TestResolve_FillsDefaults(t *testing.T) {
	got, err := resolveJSON(t, `{"name":"f","image":"i"}`)
	if err != nil {
		t.Fatal(err)
	}
	if got.Mode() != function.ModeDeployment || *got.RuntimeMode != function.RuntimeHTTP {
		t.Fatalf("modes = %s/%s, want DEPLOYMENT/HTTP", got.Mode(), *got.RuntimeMode)
	}
	if got.Command == nil || len(got.Command) != 0 || got.Env == nil || len(got.Env) != 0 {
		t.Fatalf("command/env = %#v/%#v, want empty non-nil", got.Command, got.Env)
	}
	if got.Timeout() != 30000 || got.ConcurrencyLimit() != 4 || got.QueueCapacity() != 100 || got.Retries() != 3 {
		t.Fatalf("numbers = %d/%d/%d/%d", got.Timeout(), got.ConcurrencyLimit(), got.QueueCapacity(), got.Retries())
	}
	if got.Resources != nil || got.EndpointURL != nil || got.RuntimeCommand != nil || got.ImagePullSecrets != nil {
		t.Fatalf("pass-through fields were invented: %+v", got)
	}
	want := `{"strategy":"INTERNAL","minReplicas":1,"maxReplicas":10,"metrics":[{"type":"queue_depth","target":"5","query":null}],` + fixedCC + `}`
	if s := scalingJSON(t, got); s != want {
		t.Fatalf("scaling = %s\nwant      %s", s, want)
	}
}

func TestResolve_UsesConfiguredDefaultsAndKeepsExplicitValues(t *testing.T) {
	r := NewResolver(Defaults{TimeoutMs: 7, Concurrency: 8, QueueSize: 9, MaxRetries: 0})
	got, err := r.Resolve(&function.Spec{Name: "f", Image: "i", ExecutionMode: ptr(function.ModeLocal)})
	if err != nil {
		t.Fatal(err)
	}
	if got.Timeout() != 7 || got.ConcurrencyLimit() != 8 || got.QueueCapacity() != 9 || got.Retries() != 0 {
		t.Fatalf("defaults not applied: %d/%d/%d/%d", got.Timeout(), got.ConcurrencyLimit(), got.QueueCapacity(), got.Retries())
	}

	in := &function.Spec{Name: "f", Image: "i", Command: []string{"a"}, Env: map[string]string{"K": "V"},
		TimeoutMs: ptr(1), Concurrency: ptr(2), QueueSize: ptr(3), MaxRetries: ptr(5),
		ExecutionMode: ptr(function.ModePool), RuntimeMode: ptr(function.RuntimeFILE),
		EndpointURL: ptr("http://x"), RuntimeCommand: ptr("cmd"), ImagePullSecrets: []string{"s"},
		Resources: &function.ResourceSpec{CPU: ptr("1")}}
	got, err = r.Resolve(in)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, in) {
		t.Fatalf("explicit values changed:\n got %+v\nwant %+v", got, in)
	}
	got.Command[0], got.Env["K"], *got.TimeoutMs = "changed", "changed", 99
	if in.Command[0] != "a" || in.Env["K"] != "V" || *in.TimeoutMs != 1 {
		t.Fatal("resolved spec aliases the input")
	}
}

func TestResolve_NonDeploymentScalingPassesThroughUnvalidated(t *testing.T) {
	for _, mode := range []string{"LOCAL", "POOL"} {
		got, err := resolveJSON(t, `{"name":"f","image":"i","executionMode":"`+mode+
			`","scalingConfig":{"minReplicas":5,"maxReplicas":1,"metrics":[{"type":"bogus"}]}}`)
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		want := `{"strategy":null,"minReplicas":5,"maxReplicas":1,"metrics":[{"type":"bogus","target":null,"query":null}],"concurrencyControl":null}`
		if s := scalingJSON(t, got); s != want {
			t.Fatalf("%s scaling = %s, want %s", mode, s, want)
		}
		if got, _ := resolveJSON(t, `{"name":"f","image":"i","executionMode":"`+mode+`"}`); got.ScalingConfig != nil {
			t.Fatalf("%s: scaling config invented", mode)
		}
	}
}

func TestResolve_DeploymentScalingConfig(t *testing.T) {
	tests := []struct {
		name    string
		scaling string
		want    string // JSON of the resolved scalingConfig
	}{
		{"partial config gets strategy, metrics and replica defaults", `{"maxReplicas":4}`,
			`{"strategy":"INTERNAL","minReplicas":1,"maxReplicas":4,"metrics":[{"type":"queue_depth","target":"5","query":null}],` + fixedCC + `}`},
		{"empty metrics replaced", `{"strategy":"INTERNAL","minReplicas":0,"metrics":[]}`,
			`{"strategy":"INTERNAL","minReplicas":0,"maxReplicas":10,"metrics":[{"type":"queue_depth","target":"5","query":null}],` + fixedCC + `}`},
		{"supported INTERNAL metrics kept", `{"metrics":[{"type":"in_flight","target":"3"},{"type":"rps","target":"100","query":"q"}]}`,
			`{"strategy":"INTERNAL","minReplicas":1,"maxReplicas":10,"metrics":[{"type":"in_flight","target":"3","query":null},` +
				`{"type":"rps","target":"100","query":"q"}],` + fixedCC + `}`},
		{"HPA metrics not validated", `{"strategy":"HPA","metrics":[{"type":"cpu"},null]}`,
			`{"strategy":"HPA","minReplicas":1,"maxReplicas":10,"metrics":[{"type":"cpu","target":null,"query":null},null],` + fixedCC + `}`},
		{"NONE metrics not validated", `{"strategy":"NONE","metrics":[{}]}`,
			`{"strategy":"NONE","minReplicas":1,"maxReplicas":10,"metrics":[{"type":null,"target":null,"query":null}],` + fixedCC + `}`},
		{"FIXED drops every other field", `{"concurrencyControl":{"mode":"FIXED","targetInFlightPerPod":9,"highLoadThreshold":0.5}}`,
			`{"strategy":"INTERNAL","minReplicas":1,"maxReplicas":10,"metrics":[{"type":"queue_depth","target":"5","query":null}],` + fixedCC + `}`},
		{"null mode means FIXED", `{"concurrencyControl":{"targetInFlightPerPod":9}}`,
			`{"strategy":"INTERNAL","minReplicas":1,"maxReplicas":10,"metrics":[{"type":"queue_depth","target":"5","query":null}],` + fixedCC + `}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolveJSON(t, `{"name":"f","image":"i","scalingConfig":`+tt.scaling+`}`)
			if err != nil {
				t.Fatal(err)
			}
			if s := scalingJSON(t, got); s != tt.want {
				t.Fatalf("scaling = %s\nwant      %s", s, tt.want)
			}
		})
	}
}

func TestResolve_ConcurrencyControlNormalization(t *testing.T) {
	type cc struct{ target, lo, hi int }
	tests := []struct {
		name string
		in   string
		want cc
	}{
		{"pinned example: target 50, min 10, max 3", `{"mode":"STATIC_PER_POD","targetInFlightPerPod":50,"minTargetInFlightPerPod":10,"maxTargetInFlightPerPod":3}`, cc{3, 3, 3}},
		{"all defaults", `{"mode":"STATIC_PER_POD"}`, cc{2, 1, 8}},
		{"adaptive defaults", `{"mode":"ADAPTIVE_PER_POD"}`, cc{2, 1, 8}},
		{"target clamped up to min", `{"mode":"STATIC_PER_POD","targetInFlightPerPod":1,"minTargetInFlightPerPod":4}`, cc{4, 4, 8}},
		{"target clamped down to max", `{"mode":"STATIC_PER_POD","targetInFlightPerPod":100}`, cc{8, 1, 8}},
		{"bounds raised to at least 1", `{"mode":"STATIC_PER_POD","targetInFlightPerPod":-5,"minTargetInFlightPerPod":0,"maxTargetInFlightPerPod":-2}`, cc{1, 1, 1}},
		{"explicit target within bounds kept", `{"mode":"ADAPTIVE_PER_POD","targetInFlightPerPod":5,"minTargetInFlightPerPod":2,"maxTargetInFlightPerPod":6}`, cc{5, 2, 6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolveJSON(t, `{"name":"f","image":"i","scalingConfig":{"concurrencyControl":`+tt.in+`}}`)
			if err != nil {
				t.Fatal(err)
			}
			c := got.ScalingConfig.ConcurrencyControl
			if g := (cc{*c.TargetInFlightPerPod, *c.MinTargetInFlightPerPod, *c.MaxTargetInFlightPerPod}); g != tt.want {
				t.Fatalf("target/min/max = %v, want %v", g, tt.want)
			}
			if *c.UpscaleCooldownMs != 30000 || *c.DownscaleCooldownMs != 60000 || *c.HighLoadThreshold != 0.85 || *c.LowLoadThreshold != 0.35 {
				t.Fatalf("cooldown/threshold defaults = %d/%d/%v/%v", *c.UpscaleCooldownMs, *c.DownscaleCooldownMs, *c.HighLoadThreshold, *c.LowLoadThreshold)
			}
		})
	}

	got, err := resolveJSON(t, `{"name":"f","image":"i","scalingConfig":{"concurrencyControl":{"mode":"ADAPTIVE_PER_POD",`+
		`"upscaleCooldownMs":1,"downscaleCooldownMs":2,"highLoadThreshold":0.9,"lowLoadThreshold":0.1}}}`)
	if err != nil {
		t.Fatal(err)
	}
	want := `"concurrencyControl":{"mode":"ADAPTIVE_PER_POD","targetInFlightPerPod":2,"minTargetInFlightPerPod":1,` +
		`"maxTargetInFlightPerPod":8,"upscaleCooldownMs":1,"downscaleCooldownMs":2,"highLoadThreshold":0.9,"lowLoadThreshold":0.1}}`
	if s := scalingJSON(t, got); len(s) < len(want) || s[len(s)-len(want):] != want {
		t.Fatalf("explicit cooldowns/thresholds not kept: %s", s)
	}
}

func TestResolve_RejectsInvalidScalingWithReferenceMessages(t *testing.T) {
	tests := []struct {
		scaling string
		want    string
	}{
		{`{"metrics":[{"type":"cpu"}]}`, "Unsupported INTERNAL scaling metric: cpu"},
		{`{"strategy":"INTERNAL","metrics":[{"type":"queue_depth"},{"target":"1"}]}`, "Unsupported INTERNAL scaling metric: null"},
		{`{"metrics":[null]}`, "Unsupported INTERNAL scaling metric: null"},
		{`{"metrics":[{"type":"QUEUE_DEPTH"}]}`, "Unsupported INTERNAL scaling metric: QUEUE_DEPTH"},
		{`{"minReplicas":-1}`, "minReplicas must be >= 0"},
		{`{"minReplicas":-1,"maxReplicas":0}`, "minReplicas must be >= 0"},
		{`{"maxReplicas":0}`, "maxReplicas must be >= 1"},
		{`{"minReplicas":5,"maxReplicas":0}`, "maxReplicas must be >= 1"},
		{`{"minReplicas":11}`, "minReplicas must be <= maxReplicas"},
		{`{"minReplicas":3,"maxReplicas":2}`, "minReplicas must be <= maxReplicas"},
		{`{"metrics":[{"type":"cpu"}],"minReplicas":-1}`, "Unsupported INTERNAL scaling metric: cpu"},
	}
	for _, tt := range tests {
		t.Run(tt.want+" "+tt.scaling, func(t *testing.T) {
			_, err := resolveJSON(t, `{"name":"f","image":"i","scalingConfig":`+tt.scaling+`}`)
			if !failure.IsKind(err, failure.InvalidArgument) || err.Error() != tt.want {
				t.Fatalf("err = %v, want InvalidArgument %q", err, tt.want)
			}
		})
	}
}
