package function

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

func ptr[T any](v T) *T { return &v }

func TestDecodeSpec_FullBodyDecodesEveryField(t *testing.T) {
	body := `{"name":"fn","image":"img:1","command":["run","x"],"env":{"A":"1"},
	 "resources":{"cpu":"250m","memory":"64Mi"},"timeoutMs":1000,"concurrency":2,"queueSize":3,
	 "maxRetries":0,"endpointUrl":"http://e/invoke","executionMode":"POOL","runtimeMode":"STDIO",
	 "runtimeCommand":"cat","imagePullSecrets":["s1"],
	 "scalingConfig":{"strategy":"HPA","minReplicas":0,"maxReplicas":5,
	   "metrics":[{"type":"cpu","target":"80","query":"q"}],
	   "concurrencyControl":{"mode":"ADAPTIVE_PER_POD","targetInFlightPerPod":4,
	     "minTargetInFlightPerPod":1,"maxTargetInFlightPerPod":9,"upscaleCooldownMs":10,
	     "downscaleCooldownMs":20,"highLoadThreshold":0.9,"lowLoadThreshold":0.1}}}`
	got, err := DecodeSpec([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	want := Spec{
		Name: "fn", Image: "img:1", Command: []string{"run", "x"}, Env: map[string]string{"A": "1"},
		Resources: &ResourceSpec{CPU: ptr("250m"), Memory: ptr("64Mi")},
		TimeoutMs: ptr(1000), Concurrency: ptr(2), QueueSize: ptr(3), MaxRetries: ptr(0),
		EndpointURL: ptr("http://e/invoke"), ExecutionMode: ptr(ModePool), RuntimeMode: ptr(RuntimeSTDIO),
		RuntimeCommand: ptr("cat"), ImagePullSecrets: []string{"s1"},
		ScalingConfig: &ScalingConfig{
			Strategy: ptr(StrategyHPA), MinReplicas: ptr(0), MaxReplicas: ptr(5),
			Metrics: []*ScalingMetric{{Type: ptr("cpu"), Target: ptr("80"), Query: ptr("q")}},
			ConcurrencyControl: &ConcurrencyControlConfig{
				Mode: ptr(ConcurrencyAdaptivePerPod), TargetInFlightPerPod: ptr(4),
				MinTargetInFlightPerPod: ptr(1), MaxTargetInFlightPerPod: ptr(9),
				UpscaleCooldownMs: ptr(int64(10)), DownscaleCooldownMs: ptr(int64(20)),
				HighLoadThreshold: ptr(0.9), LowLoadThreshold: ptr(0.1),
			},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded spec mismatch\n got: %+v\nwant: %+v", got, want)
	}
}

func TestDecodeSpec_IntegerCoercions(t *testing.T) {
	tests := []struct {
		name    string
		value   string
		want    *int
		wantErr bool
	}{
		{"integer", `5`, ptr(5), false},
		{"string integer", `"5"`, ptr(5), false},
		{"string with blanks", `" 7 "`, ptr(7), false},
		{"signed string", `"-3"`, ptr(-3), false},
		{"float truncated", `5.7`, ptr(5), false},
		{"negative float truncated toward zero", `-5.7`, ptr(-5), false},
		{"exponent", `1e3`, ptr(1000), false},
		{"empty string is null", `""`, nil, false},
		{"null is absent", `null`, nil, false},
		{"max int32", `2147483647`, ptr(2147483647), false},
		{"int32 overflow", `2147483648`, nil, true},
		{"float overflow", `3e9`, nil, true},
		{"fractional string", `"5.7"`, nil, true},
		{"word string", `"five"`, nil, true},
		{"boolean", `true`, nil, true},
		{"object", `{}`, nil, true},
		{"array", `[5]`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeSpec([]byte(`{"name":"f","timeoutMs":` + tt.value + `}`))
			if tt.wantErr {
				var de *DecodeError
				if !errors.As(err, &de) || de.Field != "timeoutMs" {
					t.Fatalf("want DecodeError on timeoutMs, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.TimeoutMs, tt.want) {
				t.Fatalf("timeoutMs = %v, want %v", deref(got.TimeoutMs), deref(tt.want))
			}
		})
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestDecodeSpec_NestedNumericCoercions(t *testing.T) {
	body := `{"scalingConfig":{"minReplicas":"2","maxReplicas":3.9,"concurrencyControl":{
		"upscaleCooldownMs":"9000000000","downscaleCooldownMs":1.5,"highLoadThreshold":"0.75","lowLoadThreshold":1}}}`
	got, err := DecodeSpec([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	sc := got.ScalingConfig
	cc := sc.ConcurrencyControl
	if *sc.MinReplicas != 2 || *sc.MaxReplicas != 3 {
		t.Fatalf("replicas = %d/%d, want 2/3", *sc.MinReplicas, *sc.MaxReplicas)
	}
	if *cc.UpscaleCooldownMs != 9000000000 || *cc.DownscaleCooldownMs != 1 {
		t.Fatalf("cooldowns = %d/%d", *cc.UpscaleCooldownMs, *cc.DownscaleCooldownMs)
	}
	if *cc.HighLoadThreshold != 0.75 || *cc.LowLoadThreshold != 1 {
		t.Fatalf("thresholds = %v/%v", *cc.HighLoadThreshold, *cc.LowLoadThreshold)
	}
}

func TestDecodeSpec_ScalarsCoercedToStrings(t *testing.T) {
	body := `{"name":42,"image":true,"command":[1,null,"x"],"env":{"N":5,"B":false,"Z":null},
		"scalingConfig":{"metrics":[{"type":"queue_depth","target":5}]}}`
	got, err := DecodeSpec([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "42" || got.Image != "true" {
		t.Fatalf("name/image = %q/%q", got.Name, got.Image)
	}
	if !reflect.DeepEqual(got.Command, []string{"1", "", "x"}) {
		t.Fatalf("command = %q", got.Command)
	}
	if !reflect.DeepEqual(got.Env, map[string]string{"N": "5", "B": "false", "Z": ""}) {
		t.Fatalf("env = %v", got.Env)
	}
	if *got.ScalingConfig.Metrics[0].Target != "5" {
		t.Fatalf("target = %q", *got.ScalingConfig.Metrics[0].Target)
	}
}

func TestDecodeSpec_EnumsAreCaseSensitive(t *testing.T) {
	tests := []struct {
		body    string
		field   string
		wantErr bool
	}{
		{`{"executionMode":"DEPLOYMENT"}`, "executionMode", false},
		{`{"executionMode":"deployment"}`, "executionMode", true},
		{`{"executionMode":"Local"}`, "executionMode", true},
		{`{"executionMode":""}`, "executionMode", true},
		{`{"executionMode":0}`, "executionMode", true},
		{`{"runtimeMode":"stdio"}`, "runtimeMode", true},
		{`{"runtimeMode":"FILE"}`, "runtimeMode", false},
		{`{"scalingConfig":{"strategy":"internal"}}`, "scalingConfig.strategy", true},
		{`{"scalingConfig":{"strategy":"NONE"}}`, "scalingConfig.strategy", false},
		{`{"scalingConfig":{"concurrencyControl":{"mode":"fixed"}}}`, "scalingConfig.concurrencyControl.mode", true},
		{`{"scalingConfig":{"concurrencyControl":{"mode":"STATIC_PER_POD"}}}`, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			_, err := DecodeSpec([]byte(tt.body))
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			var de *DecodeError
			if !errors.As(err, &de) || de.Field != tt.field {
				t.Fatalf("want DecodeError on %q, got %v", tt.field, err)
			}
		})
	}
}

func TestDecodeSpec_UnknownAndDifferentlyCasedPropertiesAreIgnored(t *testing.T) {
	got, err := DecodeSpec([]byte(`{"name":"f","NAME":"g","Image":"x","extra":{"a":[1,2]},
		"scalingConfig":{"bogus":1,"metrics":[{"type":"rps","resource":"cpu"}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "f" || got.Image != "" {
		t.Fatalf("name/image = %q/%q, want f/\"\"", got.Name, got.Image)
	}
	m := got.ScalingConfig.Metrics[0]
	if *m.Type != "rps" || m.Target != nil || m.Query != nil {
		t.Fatalf("metric = %+v", m)
	}
}

func TestDecodeSpec_NullIsAbsent(t *testing.T) {
	got, err := DecodeSpec([]byte(`{"name":null,"image":"i","command":null,"env":null,"resources":null,
		"timeoutMs":null,"executionMode":null,"scalingConfig":{"strategy":null,"metrics":[null],
		"concurrencyControl":null}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Spec{Image: "i", ScalingConfig: &ScalingConfig{Metrics: []*ScalingMetric{nil}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestDecodeSpec_MalformedBodiesAreErrors(t *testing.T) {
	for _, body := range []string{``, `null`, `[]`, `"x"`, `{`, `{"name":"a"} x`, `{"command":"ls"}`,
		`{"env":["a"]}`, `{"name":{}}`, `{"name":["a"]}`, `{"scalingConfig":[]}`, `{"scalingConfig":{"metrics":{}}}`,
		`{"scalingConfig":{"concurrencyControl":{"highLoadThreshold":"NaN"}}}`, `{"resources":"big"}`} {
		t.Run(body, func(t *testing.T) {
			_, err := DecodeSpec([]byte(body))
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("want DecodeError, got %v", err)
			}
		})
	}
}

func TestSpecUnmarshalJSON_WorksThroughEncodingJSON(t *testing.T) {
	var s Spec
	if err := json.Unmarshal([]byte(`{"name":"f","timeoutMs":"12","executionMode":"LOCAL"}`), &s); err != nil {
		t.Fatal(err)
	}
	if s.Name != "f" || *s.TimeoutMs != 12 || s.Mode() != ModeLocal {
		t.Fatalf("got %+v", s)
	}
	var m ExecutionMode
	if err := json.Unmarshal([]byte(`"pool"`), &m); err == nil {
		t.Fatal("lower-case execution mode accepted")
	}
}

func TestSpecJSON_RoundTripsThroughMarshal(t *testing.T) {
	in := `{"name":"f","image":"i","command":[],"env":{},"resources":null,"timeoutMs":1,"concurrency":2,` +
		`"queueSize":3,"maxRetries":4,"endpointUrl":null,"executionMode":"DEPLOYMENT","runtimeMode":"HTTP",` +
		`"runtimeCommand":null,"scalingConfig":null,"imagePullSecrets":null}`
	s, err := DecodeSpec([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(&s)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != in {
		t.Fatalf("round trip\n got: %s\nwant: %s", out, in)
	}
}

func TestEnumUnmarshalJSON_AcceptsOnlyExactConstants(t *testing.T) {
	var (
		em ExecutionMode
		rm RuntimeMode
		ss ScalingStrategy
		cm ConcurrencyControlMode
	)
	tests := []struct {
		dst  any
		in   string
		ok   bool
		want any
	}{
		{&em, `"DEPLOYMENT"`, true, ModeDeployment},
		{&em, `"Deployment"`, false, nil},
		{&rm, `"STDIO"`, true, RuntimeSTDIO},
		{&rm, `"http"`, false, nil},
		{&ss, `"HPA"`, true, StrategyHPA},
		{&ss, `1`, false, nil},
		{&cm, `"ADAPTIVE_PER_POD"`, true, ConcurrencyAdaptivePerPod},
		{&cm, `"ADAPTIVE"`, false, nil},
	}
	for _, tt := range tests {
		err := json.Unmarshal([]byte(tt.in), tt.dst)
		if (err == nil) != tt.ok {
			t.Errorf("Unmarshal(%s into %T) err = %v", tt.in, tt.dst, err)
			continue
		}
		if tt.ok {
			if got := reflect.ValueOf(tt.dst).Elem().Interface(); got != tt.want {
				t.Errorf("Unmarshal(%s) = %v, want %v", tt.in, got, tt.want)
			}
		}
	}
	// null leaves the value untouched, per encoding/json convention.
	em = ModePool
	if err := json.Unmarshal([]byte(`null`), &em); err != nil || em != ModePool {
		t.Fatalf("null: %v, %v", em, err)
	}
}

func TestDecodeError_NamesTheFieldPath(t *testing.T) {
	_, err := DecodeSpec([]byte(`{"scalingConfig":{"metrics":[{"type":"rps"},{"target":{}}]}}`))
	want := "function spec: scalingConfig.metrics[1].target: expected a string"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
	var de *DecodeError
	if !errors.As(err, &de) || errors.Unwrap(err) == nil {
		t.Fatalf("not an unwrappable DecodeError: %#v", err)
	}
}

func TestDecodeBool_JacksonCoercions(t *testing.T) {
	tests := []struct {
		raw     string
		want    *bool
		wantErr bool
	}{
		{`true`, ptr(true), false},
		{` false `, ptr(false), false},
		{`"True"`, ptr(true), false},
		{`" FALSE "`, ptr(false), false},
		{`0`, ptr(false), false},
		{`-3`, ptr(true), false},
		{`null`, nil, false},
		{`"  "`, nil, false},
		{`"yes"`, nil, true},
		{`1.5`, nil, true},
		{`{}`, nil, true},
	}
	for _, tc := range tests {
		got, err := DecodeBool(json.RawMessage(tc.raw))
		if (err != nil) != tc.wantErr || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("DecodeBool(%s) = %v, %v; want %v, error %v", tc.raw, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestDecodeScalars_NullIsNil(t *testing.T) {
	raw := json.RawMessage(` null `)
	i, errI := DecodeInt(raw)
	l, errL := DecodeInt64(raw)
	s, errS := DecodeString(raw)
	if i != nil || l != nil || s != nil || errI != nil || errL != nil || errS != nil {
		t.Fatalf("null decoded to %v/%v/%v, errors %v/%v/%v", i, l, s, errI, errL, errS)
	}
}
