package k8s

import (
	"reflect"
	"strings"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/nanofaas/control-plane/internal/config"
	"github.com/nanofaas/control-plane/internal/failure"
	"github.com/nanofaas/control-plane/internal/function"
)

func sp(s string) *string { return &s }

// resolved returns a spec shaped like the registry's resolved DEPLOYMENT spec.
func resolved(name string) *function.Spec {
	mode := function.ModeDeployment
	rt := function.RuntimeHTTP
	strategy := function.StrategyInternal
	return &function.Spec{
		Name: name, Image: "ghcr.io/acme/fn:1", Command: []string{}, Env: map[string]string{},
		TimeoutMs: ptr(30000), Concurrency: ptr(4), QueueSize: ptr(100), MaxRetries: ptr(3),
		ExecutionMode: &mode, RuntimeMode: &rt,
		ScalingConfig: &function.ScalingConfig{
			Strategy: &strategy, MinReplicas: ptr(1), MaxReplicas: ptr(10),
			Metrics: []*function.ScalingMetric{{Type: sp("queue_depth"), Target: sp("5")}},
		},
	}
}

func withHPA(s *function.Spec, min, max int, metrics ...*function.ScalingMetric) *function.Spec {
	hpa := function.StrategyHPA
	s.ScalingConfig = &function.ScalingConfig{Strategy: &hpa, MinReplicas: ptr(min), MaxReplicas: ptr(max), Metrics: metrics}
	return s
}

func TestObjectName_IsFnPrefixWithoutNormalization(t *testing.T) {
	if got := ObjectName("word-stats"); got != "fn-word-stats" {
		t.Fatalf("ObjectName = %q", got)
	}
	if got := ObjectName("myFunc"); got != "fn-myFunc" {
		t.Fatalf("ObjectName must not normalize: %q", got)
	}
}

func TestCheckName_RejectsNamesThatCannotFormADNSLabel(t *testing.T) {
	tests := []struct {
		name    string
		fn      string
		wantErr string // substring; "" = valid
	}{
		{"lowercase with dash", "word-stats", ""},
		{"digits", "fn2", ""},
		{"longest valid (60 chars)", strings.Repeat("a", 60), ""},
		{"too long (61 chars)", strings.Repeat("a", 61), "no more than 63 characters"},
		{"upper case", "myFunc", "lower case alphanumeric"},
		{"underscore", "my_func", "lower case alphanumeric"},
		{"dot", "my.func", "must not contain dots"},
		{"trailing dash", "func-", "must start and end with an alphanumeric"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckName(tc.fn)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckName(%q) = %v, want nil", tc.fn, err)
				}
				return
			}
			if !failure.IsKind(err, failure.InvalidArgument) {
				t.Fatalf("CheckName(%q) = %v, want InvalidArgument", tc.fn, err)
			}
			msg := err.Error()
			for _, want := range []string{"'" + tc.fn + "'", "'fn-" + tc.fn + "'", "DNS-1123 label", tc.wantErr} {
				if !strings.Contains(msg, want) {
					t.Fatalf("message %q does not contain %q", msg, want)
				}
			}
		})
	}
}

func TestBuildDeployment_Shape(t *testing.T) {
	d, err := BuildDeployment(resolved("echo"), Config{Namespace: "ns", CallbackURL: "http://cb/v1/internal/executions"})
	if err != nil {
		t.Fatal(err)
	}
	wantLabels := map[string]string{"app": "nanofaas", "function": "echo"}
	wantAnn := map[string]string{"prometheus.io/scrape": "true", "prometheus.io/path": "/metrics", "prometheus.io/port": "8080"}
	checks := []struct {
		field     string
		got, want any
	}{
		{"name", d.Name, "fn-echo"},
		{"namespace (from the request path)", d.Namespace, ""},
		{"labels", d.Labels, wantLabels},
		{"deployment annotations", len(d.Annotations), 0},
		{"replicas", *d.Spec.Replicas, int32(1)},
		{"selector", d.Spec.Selector.MatchLabels, map[string]string{"function": "echo"}},
		{"template labels", d.Spec.Template.Labels, wantLabels},
		{"template annotations", d.Spec.Template.Annotations, wantAnn},
		{"containers", len(d.Spec.Template.Spec.Containers), 1},
		{"restartPolicy", d.Spec.Template.Spec.RestartPolicy, corev1.RestartPolicyAlways},
		{"pull secrets", len(d.Spec.Template.Spec.ImagePullSecrets), 0},
		{"service account", d.Spec.Template.Spec.ServiceAccountName, ""},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.field, c.got, c.want)
		}
	}
	c := d.Spec.Template.Spec.Containers[0]
	cchecks := []struct {
		field     string
		got, want any
	}{
		{"container name", c.Name, "function"},
		{"image", c.Image, "ghcr.io/acme/fn:1"},
		{"pull policy default", c.ImagePullPolicy, corev1.PullAlways},
		{"command (empty spec command → none)", c.Command, []string(nil)},
		{"args", c.Args, []string(nil)},
		{"ports", c.Ports, []corev1.ContainerPort{{ContainerPort: 8080, Protocol: corev1.ProtocolTCP}}},
		{"probe path", c.ReadinessProbe.HTTPGet.Path, "/health"},
		{"probe port", c.ReadinessProbe.HTTPGet.Port, intstr.FromInt32(8080)},
		{"probe initial delay", c.ReadinessProbe.InitialDelaySeconds, int32(2)},
		{"probe period", c.ReadinessProbe.PeriodSeconds, int32(5)},
		{"probe other fields defaulted by the API", c.ReadinessProbe.TimeoutSeconds, int32(0)},
		{"liveness probe", c.LivenessProbe, (*corev1.Probe)(nil)},
		{"resources", c.Resources, corev1.ResourceRequirements{}},
	}
	for _, cc := range cchecks {
		if !reflect.DeepEqual(cc.got, cc.want) {
			t.Errorf("%s = %#v, want %#v", cc.field, cc.got, cc.want)
		}
	}
}

func TestBuildDeployment_ReplicasPullPolicyCommandSecrets(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*function.Spec)
		cfg    Config
		check  func(t *testing.T, s *function.Spec, cfg Config)
	}{
		{"replicas = minReplicas", func(s *function.Spec) { s.ScalingConfig.MinReplicas = ptr(3) }, Config{}, nil},
		{"replicas may be 0", func(s *function.Spec) { s.ScalingConfig.MinReplicas = ptr(0) }, Config{}, nil},
		{"replicas 1 without scalingConfig", func(s *function.Spec) { s.ScalingConfig = nil }, Config{}, nil},
		{"pull policy override", nil, Config{ImagePullPolicy: "IfNotPresent"}, nil},
		{"blank pull policy → Always", nil, Config{ImagePullPolicy: "  "}, nil},
		{"command", func(s *function.Spec) { s.Command = []string{"/bin/fn", "--serve"} }, Config{}, nil},
		{"pull secrets trimmed, blanks dropped", func(s *function.Spec) { s.ImagePullSecrets = []string{" regcred ", "", "  ", "other"} }, Config{}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := resolved("echo")
			if tc.mutate != nil {
				tc.mutate(s)
			}
			d, err := BuildDeployment(s, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			c := d.Spec.Template.Spec.Containers[0]
			wantReplicas := int32(1)
			if s.ScalingConfig != nil {
				wantReplicas = int32(*s.ScalingConfig.MinReplicas)
			}
			if *d.Spec.Replicas != wantReplicas {
				t.Errorf("replicas = %d, want %d", *d.Spec.Replicas, wantReplicas)
			}
			wantPolicy := corev1.PullAlways
			if p := strings.TrimSpace(tc.cfg.ImagePullPolicy); p != "" {
				wantPolicy = corev1.PullPolicy(p)
			}
			if c.ImagePullPolicy != wantPolicy {
				t.Errorf("pull policy = %q, want %q", c.ImagePullPolicy, wantPolicy)
			}
			if len(s.Command) > 0 && !reflect.DeepEqual(c.Command, s.Command) {
				t.Errorf("command = %v, want %v", c.Command, s.Command)
			}
			if s.ImagePullSecrets != nil {
				want := []corev1.LocalObjectReference{{Name: "regcred"}, {Name: "other"}}
				if !reflect.DeepEqual(d.Spec.Template.Spec.ImagePullSecrets, want) {
					t.Errorf("pull secrets = %v, want %v", d.Spec.Template.Spec.ImagePullSecrets, want)
				}
			}
		})
	}
}

func envNames(env []corev1.EnvVar) []string {
	out := make([]string, len(env))
	for i, e := range env {
		out[i] = e.Name + "=" + e.Value
	}
	return out
}

func TestBuildDeployment_EnvOrderAndReservedNames(t *testing.T) {
	stdio := function.RuntimeSTDIO
	tests := []struct {
		name     string
		mutate   func(*function.Spec)
		callback string
		want     []string
	}{
		{
			name: "control-plane variables first, user env sorted, reserved dropped",
			mutate: func(s *function.Spec) {
				s.RuntimeMode = &stdio
				s.RuntimeCommand = sp("cat")
				s.Env = map[string]string{
					"ZED": "z", "ALPHA": "a", "FUNCTION_NAME": "x", "WARM": "x", "TIMEOUT_MS": "x",
					"EXECUTION_MODE": "x", "WATCHDOG_CMD": "x", "CALLBACK_URL": "x",
				}
			},
			callback: "http://cb",
			want: []string{"FUNCTION_NAME=echo", "WARM=true", "TIMEOUT_MS=30000", "EXECUTION_MODE=STDIO",
				"WATCHDOG_CMD=cat", "CALLBACK_URL=http://cb", "ALPHA=a", "ZED=z"},
		},
		{
			name:   "blank runtime command and callback URL are not injected",
			mutate: func(s *function.Spec) { s.RuntimeCommand = sp("  ") },
			want:   []string{"FUNCTION_NAME=echo", "WARM=true", "TIMEOUT_MS=30000", "EXECUTION_MODE=HTTP"},
		},
		{
			name:   "no runtime mode → no EXECUTION_MODE",
			mutate: func(s *function.Spec) { s.RuntimeMode = nil; s.TimeoutMs = ptr(1234) },
			want:   []string{"FUNCTION_NAME=echo", "WARM=true", "TIMEOUT_MS=1234"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := resolved("echo")
			tc.mutate(s)
			d, err := BuildDeployment(s, Config{CallbackURL: tc.callback})
			if err != nil {
				t.Fatal(err)
			}
			if got := envNames(d.Spec.Template.Spec.Containers[0].Env); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("env = %v\nwant  %v", got, tc.want)
			}
		})
	}
}

func TestBuildDeployment_ResourcesRequestsEqualLimits(t *testing.T) {
	tests := []struct {
		name     string
		res      *function.ResourceSpec
		want     corev1.ResourceList // nil = no requests/limits
		wantErr  string
		errField string
	}{
		{"none", nil, nil, "", ""},
		{"both nil", &function.ResourceSpec{}, nil, "", ""},
		{"cpu only", &function.ResourceSpec{CPU: sp("250m")}, corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")}, "", ""},
		{"memory only", &function.ResourceSpec{Memory: sp("128Mi")}, corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")}, "", ""},
		{"both", &function.ResourceSpec{CPU: sp("1"), Memory: sp("1Gi")},
			corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")}, "", ""},
		{"blank is unset", &function.ResourceSpec{CPU: sp(" ")}, nil, "", ""},
		{"invalid quantity is 400", &function.ResourceSpec{Memory: sp("lots")}, nil, "Invalid resources.memory 'lots'", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := resolved("echo")
			s.Resources = tc.res
			d, err := BuildDeployment(s, Config{})
			if tc.wantErr != "" {
				if !failure.IsKind(err, failure.InvalidArgument) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want InvalidArgument containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			r := d.Spec.Template.Spec.Containers[0].Resources
			if tc.want == nil {
				if r.Requests != nil || r.Limits != nil {
					t.Fatalf("resources = %v, want none", r)
				}
				return
			}
			for _, list := range []corev1.ResourceList{r.Requests, r.Limits} {
				if len(list) != len(tc.want) {
					t.Fatalf("resources = %v, want %v in requests and limits", r, tc.want)
				}
				for k, v := range tc.want {
					if got := list[k]; got.Cmp(v) != 0 {
						t.Fatalf("%s = %s, want %s", k, got.String(), v.String())
					}
				}
			}
		})
	}
}

func TestBuildService_Shape(t *testing.T) {
	s := BuildService("echo")
	checks := []struct {
		field     string
		got, want any
	}{
		{"name", s.Name, "fn-echo"},
		{"labels", s.Labels, map[string]string{"app": "nanofaas", "function": "echo"}},
		{"annotations", s.Annotations, map[string]string{"prometheus.io/scrape": "true", "prometheus.io/path": "/metrics", "prometheus.io/port": "8080"}},
		{"type", s.Spec.Type, corev1.ServiceTypeClusterIP},
		{"selector", s.Spec.Selector, map[string]string{"function": "echo"}},
		{"ports", s.Spec.Ports, []corev1.ServicePort{{Port: 8080, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}}},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.field, c.got, c.want)
		}
	}
}

func TestBuildHPA_OnlyForHPAStrategy(t *testing.T) {
	none := function.StrategyNone
	for name, s := range map[string]*function.Spec{
		"INTERNAL":         resolved("echo"),
		"no scalingConfig": func() *function.Spec { s := resolved("echo"); s.ScalingConfig = nil; return s }(),
		"NONE":             func() *function.Spec { s := resolved("echo"); s.ScalingConfig.Strategy = &none; return s }(),
		"nil strategy":     func() *function.Spec { s := resolved("echo"); s.ScalingConfig.Strategy = nil; return s }(),
	} {
		if h := BuildHPA(s); h != nil {
			t.Errorf("%s: BuildHPA = %v, want nil", name, h)
		}
	}

	h := BuildHPA(withHPA(resolved("echo"), 2, 7, &function.ScalingMetric{Type: sp("cpu"), Target: sp("70")}))
	if h == nil {
		t.Fatal("BuildHPA = nil for HPA strategy")
	}
	checks := []struct {
		field     string
		got, want any
	}{
		{"name", h.Name, "fn-echo"},
		{"labels", h.Labels, map[string]string{"app": "nanofaas", "function": "echo"}},
		{"target", h.Spec.ScaleTargetRef, autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "fn-echo"}},
		{"min", *h.Spec.MinReplicas, int32(2)},
		{"max", h.Spec.MaxReplicas, int32(7)},
		{"metrics", len(h.Spec.Metrics), 1},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.field, c.got, c.want)
		}
	}
}

func TestTranslateMetrics(t *testing.T) {
	type want struct {
		typ      autoscalingv2.MetricSourceType
		name     string // resource name or external metric name
		target   int64
		resource bool
	}
	tests := []struct {
		name    string
		metrics []*function.ScalingMetric
		want    []want
	}{
		{"cpu", []*function.ScalingMetric{{Type: sp("cpu"), Target: sp("80")}},
			[]want{{autoscalingv2.ResourceMetricSourceType, "cpu", 80, true}}},
		{"memory", []*function.ScalingMetric{{Type: sp("memory"), Target: sp("60")}},
			[]want{{autoscalingv2.ResourceMetricSourceType, "memory", 60, true}}},
		{"queue_depth", []*function.ScalingMetric{{Type: sp("queue_depth"), Target: sp("5")}},
			[]want{{autoscalingv2.ExternalMetricSourceType, "nanofaas_queue_depth", 5, false}}},
		{"in_flight", []*function.ScalingMetric{{Type: sp("in_flight"), Target: sp("2")}},
			[]want{{autoscalingv2.ExternalMetricSourceType, "nanofaas_in_flight", 2, false}}},
		{"rps", []*function.ScalingMetric{{Type: sp("rps"), Target: sp("100")}},
			[]want{{autoscalingv2.ExternalMetricSourceType, "nanofaas_rps", 100, false}}},
		{"prometheus uses the function name, query ignored", []*function.ScalingMetric{{Type: sp("prometheus"), Target: sp("9"), Query: sp("sum(x)")}},
			[]want{{autoscalingv2.ExternalMetricSourceType, "nanofaas_custom_echo", 9, false}}},
		{"unknown and null entries skipped", []*function.ScalingMetric{{Type: sp("gpu"), Target: sp("1")}, nil, {Target: sp("3")}, {Type: sp("CPU")}}, nil},
		{"invalid target → 50", []*function.ScalingMetric{{Type: sp("cpu"), Target: sp("7.5")}},
			[]want{{autoscalingv2.ResourceMetricSourceType, "cpu", 50, true}}},
		{"null target → 50", []*function.ScalingMetric{{Type: sp("rps")}},
			[]want{{autoscalingv2.ExternalMetricSourceType, "nanofaas_rps", 50, false}}},
		{"out of int32 range → 50", []*function.ScalingMetric{{Type: sp("rps"), Target: sp("3000000000")}},
			[]want{{autoscalingv2.ExternalMetricSourceType, "nanofaas_rps", 50, false}}},
		{"signed integer accepted like parseInt", []*function.ScalingMetric{{Type: sp("rps"), Target: sp("+7")}},
			[]want{{autoscalingv2.ExternalMetricSourceType, "nanofaas_rps", 7, false}}},
		{"multiple keep order", []*function.ScalingMetric{{Type: sp("rps"), Target: sp("1")}, {Type: sp("cpu"), Target: sp("2")}},
			[]want{{autoscalingv2.ExternalMetricSourceType, "nanofaas_rps", 1, false}, {autoscalingv2.ResourceMetricSourceType, "cpu", 2, true}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := TranslateMetrics("echo", tc.metrics)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d metrics (%v), want %d", len(got), got, len(tc.want))
			}
			for i, w := range tc.want {
				m := got[i]
				if m.Type != w.typ {
					t.Fatalf("[%d] type = %s, want %s", i, m.Type, w.typ)
				}
				if w.resource {
					if m.Resource == nil || m.External != nil {
						t.Fatalf("[%d] want only a Resource source: %+v", i, m)
					}
					r := m.Resource
					if string(r.Name) != w.name || r.Target.Type != autoscalingv2.UtilizationMetricType ||
						r.Target.AverageUtilization == nil || int64(*r.Target.AverageUtilization) != w.target ||
						r.Target.Value != nil || r.Target.AverageValue != nil {
						t.Fatalf("[%d] resource = %+v, want %s utilization %d", i, r, w.name, w.target)
					}
					continue
				}
				e := m.External
				if e == nil || m.Resource != nil {
					t.Fatalf("[%d] want only an External source: %+v", i, m)
				}
				if e.Metric.Name != w.name || !reflect.DeepEqual(e.Metric.Selector.MatchLabels, map[string]string{"function": "echo"}) {
					t.Fatalf("[%d] metric = %+v, want %s with function selector", i, e.Metric, w.name)
				}
				if e.Target.Type != autoscalingv2.ValueMetricType || e.Target.Value == nil || e.Target.Value.Value() != w.target ||
					e.Target.AverageUtilization != nil {
					t.Fatalf("[%d] target = %+v, want Value %d", i, e.Target, w.target)
				}
			}
		})
	}
}

func TestConfigFrom_AppliesD9CallbackAndNamespaceFallbacks(t *testing.T) {
	tests := []struct {
		name string
		in   config.K8s
		want Config
	}{
		{"defaults", config.K8s{ImagePullPolicy: "Always"}, Config{
			Namespace:       "default",
			CallbackURL:     "http://control-plane.default.svc.cluster.local:8080/v1/internal/executions",
			ImagePullPolicy: "Always"}},
		{"pod namespace drives the callback URL", config.K8s{PodNamespace: "nanofaas"}, Config{
			Namespace:   "nanofaas",
			CallbackURL: "http://control-plane.nanofaas.svc.cluster.local:8080/v1/internal/executions"}},
		{"explicit values win", config.K8s{Namespace: "fns", PodNamespace: "nanofaas", CallbackURL: "http://cb", ImagePullPolicy: "IfNotPresent"}, Config{
			Namespace: "fns", CallbackURL: "http://cb", ImagePullPolicy: "IfNotPresent"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ConfigFrom(tc.in); got != tc.want {
				t.Fatalf("ConfigFrom = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestEndpointURL(t *testing.T) {
	if got := EndpointURL("echo", "nanofaas"); got != "http://fn-echo.nanofaas.svc.cluster.local:8080/invoke" {
		t.Fatalf("EndpointURL = %q", got)
	}
}
