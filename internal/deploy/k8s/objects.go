package k8s

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/nanofaas/control-plane/internal/deploy"
	"github.com/nanofaas/control-plane/internal/failure"
	"github.com/nanofaas/control-plane/internal/function"
)

// Object shape constants (spec-modules §6).
const (
	// NamePrefix prefixes every object name: Deployment, Service and HPA are all "fn-<name>".
	NamePrefix = "fn-"
	// LabelApp / AppValue mark every object the control plane creates; the informer selects on it.
	LabelApp = "app"
	AppValue = "nanofaas"
	// LabelFunction carries the function name; it is the Deployment and Service selector.
	LabelFunction = "function"
	// ContainerName is the single container of a function pod.
	ContainerName = "function"
	// Port is the function runtime's HTTP port (container, Service and probe).
	Port = 8080
	// DefaultImagePullPolicy applies when the configured policy is blank.
	DefaultImagePullPolicy = corev1.PullAlways
	// defaultMetricTarget replaces a missing or non-integer HPA metric target.
	defaultMetricTarget = 50
)

// ObjectName returns the name of a function's Deployment, Service and HPA: "fn-<name>", not
// normalized (the reference does not normalize either; CheckName rejects what cannot work).
func ObjectName(fn string) string { return NamePrefix + fn }

// CheckName returns a failure.InvalidArgument (400) when "fn-<name>" is not a valid DNS-1123
// label of at most 63 characters, saying why (D10); nil otherwise.
func CheckName(fn string) error {
	obj := ObjectName(fn)
	if errs := validation.IsDNS1123Label(obj); len(errs) > 0 {
		return failure.Invalidf("Function name '%s' cannot be deployed on Kubernetes: object name '%s' is not a valid DNS-1123 label: %s",
			fn, obj, strings.Join(errs, "; "))
	}
	return nil
}

// Labels returns the labels of every object of function fn.
func Labels(fn string) map[string]string {
	return map[string]string{LabelApp: AppValue, LabelFunction: fn}
}

// selector selects the pods of function fn (function label only, as in the reference).
func selector(fn string) map[string]string {
	return map[string]string{LabelFunction: fn}
}

// prometheusAnnotations tell the bundled Prometheus to scrape function pods on :8080/metrics.
func prometheusAnnotations() map[string]string {
	return map[string]string{
		"prometheus.io/scrape": "true",
		"prometheus.io/path":   "/metrics",
		"prometheus.io/port":   strconv.Itoa(Port),
	}
}

// PullSecrets turns spec imagePullSecrets into references: names trimmed, blanks dropped; nil
// when none remain.
func PullSecrets(names []string) []corev1.LocalObjectReference {
	var out []corev1.LocalObjectReference
	for _, n := range names {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, corev1.LocalObjectReference{Name: n})
		}
	}
	return out
}

// BuildDeployment returns the desired Deployment of a resolved spec. Namespace is left empty (it
// is the request path's). An unparseable resources.cpu/memory is a failure.InvalidArgument.
func BuildDeployment(spec *function.Spec, cfg Config) (*appsv1.Deployment, error) {
	res, err := buildResources(spec.Resources)
	if err != nil {
		return nil, err
	}
	policy := corev1.PullPolicy(strings.TrimSpace(cfg.ImagePullPolicy))
	if policy == "" {
		policy = DefaultImagePullPolicy
	}
	c := corev1.Container{
		Name:            ContainerName,
		Image:           spec.Image,
		ImagePullPolicy: policy,
		Env:             buildEnv(spec, cfg.CallbackURL),
		Resources:       res,
		Ports:           []corev1.ContainerPort{{ContainerPort: Port, Protocol: corev1.ProtocolTCP}},
		ReadinessProbe: &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: "/health", Port: intstr.FromInt32(Port),
			}},
			InitialDelaySeconds: 2,
			PeriodSeconds:       5,
		},
	}
	if len(spec.Command) > 0 {
		c.Command = slices.Clone(spec.Command)
	}
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: ObjectName(spec.Name), Labels: Labels(spec.Name)},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(initialReplicas(spec)),
			Selector: &metav1.LabelSelector{MatchLabels: selector(spec.Name)},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: Labels(spec.Name), Annotations: prometheusAnnotations()},
				Spec: corev1.PodSpec{
					Containers:       []corev1.Container{c},
					ImagePullSecrets: PullSecrets(spec.ImagePullSecrets),
					RestartPolicy:    corev1.RestartPolicyAlways,
				},
			},
		},
	}, nil
}

// initialReplicas is minReplicas when a scaling config is present (0 allowed), else 1.
func initialReplicas(spec *function.Spec) int32 {
	if sc := spec.ScalingConfig; sc != nil && sc.MinReplicas != nil {
		return int32(*sc.MinReplicas)
	}
	return 1
}

// buildEnv returns the container env: deploy.ReplicaEnv as corev1 variables.
func buildEnv(spec *function.Spec, callbackURL string) []corev1.EnvVar {
	vars := deploy.ReplicaEnv(spec, callbackURL)
	env := make([]corev1.EnvVar, len(vars))
	for i, v := range vars {
		env[i] = corev1.EnvVar{Name: v.Name, Value: v.Value}
	}
	return env
}

// buildResources sets requests == limits for each of cpu and memory that is given.
func buildResources(r *function.ResourceSpec) (corev1.ResourceRequirements, error) {
	var out corev1.ResourceRequirements
	if r == nil {
		return out, nil
	}
	for _, e := range []struct {
		name  corev1.ResourceName
		field string
		value *string
	}{{corev1.ResourceCPU, "cpu", r.CPU}, {corev1.ResourceMemory, "memory", r.Memory}} {
		if e.value == nil || strings.TrimSpace(*e.value) == "" {
			continue
		}
		q, err := resource.ParseQuantity(strings.TrimSpace(*e.value))
		if err != nil {
			return out, failure.Invalidf("Invalid resources.%s '%s': %v", e.field, *e.value, err)
		}
		if out.Requests == nil {
			out.Requests, out.Limits = corev1.ResourceList{}, corev1.ResourceList{}
		}
		out.Requests[e.name] = q
		out.Limits[e.name] = q.DeepCopy()
	}
	return out, nil
}

// BuildService returns the desired ClusterIP Service of function fn.
func BuildService(fn string) *corev1.Service {
	return &corev1.Service{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{
			Name: ObjectName(fn), Labels: Labels(fn), Annotations: prometheusAnnotations(),
		},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: selector(fn),
			Ports: []corev1.ServicePort{{
				Port: Port, TargetPort: intstr.FromInt32(Port), Protocol: corev1.ProtocolTCP,
			}},
		},
	}
}

// WantsHPA reports whether spec's scaling strategy is HPA.
func WantsHPA(spec *function.Spec) bool {
	sc := spec.ScalingConfig
	return sc != nil && sc.Strategy != nil && *sc.Strategy == function.StrategyHPA
}

// BuildHPA returns the desired HorizontalPodAutoscaler of spec, or nil when its strategy is not
// HPA.
func BuildHPA(spec *function.Spec) *autoscalingv2.HorizontalPodAutoscaler {
	if !WantsHPA(spec) {
		return nil
	}
	sc := spec.ScalingConfig
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		TypeMeta:   metav1.TypeMeta{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler"},
		ObjectMeta: metav1.ObjectMeta{Name: ObjectName(spec.Name), Labels: Labels(spec.Name)},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{
				APIVersion: "apps/v1", Kind: "Deployment", Name: ObjectName(spec.Name),
			},
			Metrics: TranslateMetrics(spec.Name, sc.Metrics),
		},
	}
	if sc.MinReplicas != nil {
		hpa.Spec.MinReplicas = ptr(int32(*sc.MinReplicas))
	}
	if sc.MaxReplicas != nil {
		hpa.Spec.MaxReplicas = int32(*sc.MaxReplicas)
	}
	return hpa
}

// TranslateMetrics maps scaling metrics of function fn to HPA metrics: cpu/memory → Resource
// Utilization; queue_depth/in_flight/rps → External "nanofaas_<type>"; prometheus → External
// "nanofaas_custom_<fn>" (query ignored); anything else (and null entries) skipped. Targets are
// integers; a missing or unparseable one is 50.
func TranslateMetrics(fn string, metrics []*function.ScalingMetric) []autoscalingv2.MetricSpec {
	var out []autoscalingv2.MetricSpec
	for _, m := range metrics {
		if m == nil || m.Type == nil {
			continue
		}
		target := metricTarget(m.Target)
		switch typ := *m.Type; typ {
		case "cpu", "memory":
			out = append(out, autoscalingv2.MetricSpec{
				Type: autoscalingv2.ResourceMetricSourceType,
				Resource: &autoscalingv2.ResourceMetricSource{
					Name:   corev1.ResourceName(typ),
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr(target)},
				},
			})
		case "queue_depth", "in_flight", "rps":
			out = append(out, externalMetric(fn, "nanofaas_"+typ, target))
		case "prometheus":
			out = append(out, externalMetric(fn, "nanofaas_custom_"+fn, target))
		}
	}
	return out
}

func externalMetric(fn, name string, target int32) autoscalingv2.MetricSpec {
	return autoscalingv2.MetricSpec{
		Type: autoscalingv2.ExternalMetricSourceType,
		External: &autoscalingv2.ExternalMetricSource{
			Metric: autoscalingv2.MetricIdentifier{
				Name:     name,
				Selector: &metav1.LabelSelector{MatchLabels: selector(fn)},
			},
			Target: autoscalingv2.MetricTarget{
				Type:  autoscalingv2.ValueMetricType,
				Value: resource.NewQuantity(int64(target), resource.DecimalSI),
			},
		},
	}
}

// metricTarget parses a target like Java's Integer.parseInt (sign allowed, 32-bit), else 50.
func metricTarget(s *string) int32 {
	if s == nil {
		return defaultMetricTarget
	}
	v, err := strconv.ParseInt(*s, 10, 32)
	if err != nil {
		return defaultMetricTarget
	}
	return int32(v)
}

// EndpointURL is the in-cluster URL of function fn's Service in namespace ns.
func EndpointURL(fn, ns string) string {
	return fmt.Sprintf("http://%s.%s.svc.cluster.local:%d/invoke", ObjectName(fn), ns, Port)
}

func ptr[T any](v T) *T { return &v }
