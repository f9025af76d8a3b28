package deploytest

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Names and values of spec-modules §12.
const (
	nsName          = "nanofaas"
	saName          = "nanofaas-control-plane"
	roleName        = "nanofaas-control-plane"
	deploymentName  = "nanofaas-control-plane"
	serviceName     = "control-plane"
	containerName   = "control-plane"
	defaultImage    = "ghcr.io/miciav/nanofaas/control-plane:v0.17.0"
	nonRootUID      = 65532
	readinessPath   = "/actuator/health/readiness"
	livenessPath    = "/actuator/health/liveness"
	prometheusPath  = "/actuator/prometheus"
	httpPort        = 8080
	actuatorPort    = 8081
	podNamespaceEnv = "POD_NAMESPACE"
)

// selectorLabels select the control-plane pod (Deployment selector, pod labels, Service selector).
var selectorLabels = map[string]string{"app": "nanofaas-control-plane"}

// scrapeAnnotations are on the pod template and the Service when scraping is enabled.
var scrapeAnnotations = map[string]string{
	"prometheus.io/scrape": "true",
	"prometheus.io/path":   prometheusPath,
	"prometheus.io/port":   "8081",
}

// objectLabels are on every control-plane object (release = app.kubernetes.io/instance).
func objectLabels(release string) map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":      "nanofaas",
		"app.kubernetes.io/component": "control-plane",
		"app.kubernetes.io/instance":  release,
	}
}

// wantRules is the Role: exactly the calls of internal/deploy/k8s and internal/imagevalidator
// (TestRole_GrantsExactlyTheCallsOfTheControlPlane proves it against a real apiserver).
var wantRules = []rbacv1.PolicyRule{
	{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"create", "delete", "get", "list", "patch", "watch"}},
	{APIGroups: []string{"apps"}, Resources: []string{"deployments/scale"}, Verbs: []string{"update"}},
	{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"create", "delete", "patch"}},
	{APIGroups: []string{"autoscaling"}, Resources: []string{"horizontalpodautoscalers"}, Verbs: []string{"create", "delete", "patch"}},
	{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"create", "delete", "get"}},
}

// facts is what differs between the raw manifests and renderings of the chart.
type facts struct {
	namespace     string // of every namespaced object
	release       string // app.kubernetes.io/instance
	withNamespace bool   // a Namespace object is part of the set
	image         string
	pullPolicy    corev1.PullPolicy
	limits        corev1.ResourceList
	extraEnv      []corev1.EnvVar // after POD_NAMESPACE
	scrape        bool            // prometheus.io annotations present
	serviceType   corev1.ServiceType
	nodePorts     [2]int32 // http, actuator; 0 = unset
}

// rawFacts are the facts of deploy/k8s.
func rawFacts() facts {
	return facts{
		namespace: nsName, release: "nanofaas", withNamespace: true,
		image: defaultImage, pullPolicy: corev1.PullIfNotPresent,
		limits: resources("500m", "1Gi"), scrape: true, serviceType: corev1.ServiceTypeClusterIP,
	}
}

// chartFacts are the facts of the chart with its default values and release name release.
func chartFacts(release string) facts {
	f := rawFacts()
	f.release = release
	f.limits = resources("1", "2Gi")
	return f
}

func resources(cpu, memory string) corev1.ResourceList {
	return corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse(cpu),
		corev1.ResourceMemory: resource.MustParse(memory),
	}
}

// checkFacts fails t with every §12 fact a control-plane object set breaks.
func checkFacts(t *testing.T, m manifest, f facts) {
	t.Helper()
	for _, p := range factProblems(m, f) {
		t.Error(p)
	}
}

// problems collects the broken facts of one check.
type problems []string

func (p *problems) addf(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// equal records got != want as a problem naming field.
func equal[T any](p *problems, field string, got, want T) {
	if !reflect.DeepEqual(got, want) {
		p.addf("%s = %+v, want %+v", field, got, want)
	}
}

// factProblems checks every §12 fact of a control-plane object set, field by field.
func factProblems(m manifest, f facts) []string {
	var p problems
	wantKeys := []string{"ServiceAccount/" + saName, "Role/" + roleName, "RoleBinding/" + roleName,
		"Deployment/" + deploymentName, "Service/" + serviceName}
	if f.withNamespace {
		wantKeys = append(wantKeys, "Namespace/"+f.namespace) // created by the set itself
	}
	if got := m.keys(); !sameSet(got, wantKeys) {
		p.addf("objects = %v, want exactly %v", got, wantKeys)
		return p
	}
	for _, u := range m {
		if u.GetKind() == "Namespace" {
			continue
		}
		equal(&p, key(u)+" namespace", u.GetNamespace(), f.namespace)
		equal(&p, key(u)+" labels", u.GetLabels(), objectLabels(f.release))
	}
	checkRBAC(&p, m, f)
	checkDeployment(&p, m, f)
	checkService(&p, m, f)
	return p
}

func checkRBAC(p *problems, m manifest, f facts) {
	role, err := typed[rbacv1.Role](m, "Role", roleName)
	if err != nil {
		p.addf("%v", err)
		return
	}
	if !reflect.DeepEqual(role.Rules, wantRules) {
		p.addf("Role rules =\n%swant\n%s", formatRules(role.Rules), formatRules(wantRules))
	}
	rb, err := typed[rbacv1.RoleBinding](m, "RoleBinding", roleName)
	if err != nil {
		p.addf("%v", err)
		return
	}
	equal(p, "RoleBinding roleRef", rb.RoleRef, rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: roleName})
	equal(p, "RoleBinding subjects", rb.Subjects, []rbacv1.Subject{{Kind: "ServiceAccount", Name: saName, Namespace: f.namespace}})
}

func checkDeployment(p *problems, m manifest, f facts) {
	d, err := typed[appsv1.Deployment](m, "Deployment", deploymentName)
	if err != nil {
		p.addf("%v", err)
		return
	}
	equal(p, "replicas", d.Spec.Replicas, ptr(int32(1)))
	equal(p, "selector", d.Spec.Selector, &metav1.LabelSelector{MatchLabels: selectorLabels})
	tpl := d.Spec.Template
	equal(p, "pod labels", tpl.Labels, selectorLabels)
	equal(p, "pod annotations", tpl.Annotations, wantAnnotations(f))
	pod := tpl.Spec
	equal(p, "serviceAccountName", pod.ServiceAccountName, saName)
	if len(pod.Containers) != 1 || len(pod.InitContainers) != 0 {
		p.addf("want one container, got %d (+%d init)", len(pod.Containers), len(pod.InitContainers))
		return
	}
	c := pod.Containers[0]
	equal(p, "container name", c.Name, containerName)
	equal(p, "image", c.Image, f.image)
	equal(p, "imagePullPolicy", c.ImagePullPolicy, f.pullPolicy)
	equal(p, "command+args", append(c.Command, c.Args...), []string(nil)) // the image's ENTRYPOINT
	equal(p, "ports", c.Ports, []corev1.ContainerPort{
		{Name: "http", ContainerPort: httpPort, Protocol: corev1.ProtocolTCP},
		{Name: "actuator", ContainerPort: actuatorPort, Protocol: corev1.ProtocolTCP},
	})
	wantEnv := append([]corev1.EnvVar{{Name: podNamespaceEnv, ValueFrom: &corev1.EnvVarSource{
		FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"},
	}}}, f.extraEnv...)
	equal(p, "env", c.Env, wantEnv)
	equal(p, "envFrom", c.EnvFrom, []corev1.EnvFromSource(nil))
	checkQuantities(p, "requests", c.Resources.Requests, resources("250m", "512Mi"))
	checkQuantities(p, "limits", c.Resources.Limits, f.limits)

	// Probes: HTTP GET on the actuator port with K8s default timings; no startup probe.
	equal(p, "readinessProbe", c.ReadinessProbe, httpProbe(readinessPath))
	equal(p, "livenessProbe", c.LivenessProbe, httpProbe(livenessPath))
	equal(p, "startupProbe", c.StartupProbe, nil)

	// Non-root with a read-only root file system; /tmp is the one writable path.
	equal(p, "pod securityContext", pod.SecurityContext, &corev1.PodSecurityContext{
		RunAsNonRoot: ptr(true), RunAsUser: ptr(int64(nonRootUID)), RunAsGroup: ptr(int64(nonRootUID)),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	})
	equal(p, "container securityContext", c.SecurityContext, &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr(false), ReadOnlyRootFilesystem: ptr(true),
		Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	})
	equal(p, "volumeMounts", c.VolumeMounts, []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}})
	equal(p, "volumes", pod.Volumes, []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}})
	// Longer than nanofaas.shutdown.grace (30s), so in-flight requests finish before SIGKILL.
	equal(p, "terminationGracePeriodSeconds", pod.TerminationGracePeriodSeconds, ptr(int64(40)))
}

func httpProbe(path string) *corev1.Probe {
	return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
		Path: path, Port: intstr.FromInt32(actuatorPort),
	}}}
}

func checkService(p *problems, m manifest, f facts) {
	s, err := typed[corev1.Service](m, "Service", serviceName)
	if err != nil {
		p.addf("%v", err)
		return
	}
	equal(p, "Service annotations", s.Annotations, wantAnnotations(f))
	equal(p, "Service type", s.Spec.Type, f.serviceType)
	equal(p, "Service selector", s.Spec.Selector, selectorLabels)
	equal(p, "Service ports", s.Spec.Ports, []corev1.ServicePort{
		{Name: "http", Port: httpPort, TargetPort: intstr.FromInt32(httpPort), Protocol: corev1.ProtocolTCP, NodePort: f.nodePorts[0]},
		{Name: "actuator", Port: actuatorPort, TargetPort: intstr.FromInt32(actuatorPort), Protocol: corev1.ProtocolTCP, NodePort: f.nodePorts[1]},
	})
}

func wantAnnotations(f facts) map[string]string {
	if !f.scrape {
		return nil
	}
	return scrapeAnnotations
}

// checkQuantities compares resource lists by value ("1" == "1000m").
func checkQuantities(p *problems, field string, got, want corev1.ResourceList) {
	if !sameSet(slices.Collect(maps.Keys(got)), slices.Collect(maps.Keys(want))) {
		p.addf("%s = %v, want %v", field, got, want)
		return
	}
	for name, w := range want {
		if g := got[name]; g.Cmp(w) != 0 {
			p.addf("%s.%s = %s, want %s", field, name, g.String(), w.String())
		}
	}
}

func ptr[T any](v T) *T { return &v }

func sameSet[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	count := map[T]int{}
	for _, x := range a {
		count[x]++
	}
	for _, x := range b {
		if count[x]--; count[x] < 0 {
			return false
		}
	}
	return true
}

func formatRules(rules []rbacv1.PolicyRule) string {
	var b strings.Builder
	for _, r := range rules {
		fmt.Fprintf(&b, "  apiGroups=%q resources=%q verbs=%q", r.APIGroups, r.Resources, r.Verbs)
		if len(r.ResourceNames)+len(r.NonResourceURLs) > 0 {
			fmt.Fprintf(&b, " resourceNames=%q nonResourceURLs=%q", r.ResourceNames, r.NonResourceURLs)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func TestRawManifests_HaveTheDeploymentFactsOfSpec12(t *testing.T) {
	checkFacts(t, loadRaw(t), rawFacts())
}

func TestRawManifests_NamespaceComesFirstAndDeploymentAfterItsRBAC(t *testing.T) {
	// `kubectl apply -f deploy/k8s/` creates in file-name order: the namespace must exist before
	// anything is created in it, and the service account before the pod that uses it.
	got := loadRaw(t).keys()
	index := func(k string) int { return slices.Index(got, k) }
	if index("Namespace/"+nsName) != 0 {
		t.Errorf("order = %v, want the Namespace first", got)
	}
	for _, before := range []string{"ServiceAccount/" + saName, "Role/" + roleName, "RoleBinding/" + roleName} {
		if index(before) > index("Deployment/"+deploymentName) {
			t.Errorf("order = %v, want %s before the Deployment", got, before)
		}
	}
}

func TestRawManifests_ScrapeAndProbePortsAreTheActuatorContainerPort(t *testing.T) {
	m := loadRaw(t)
	d := mustTyped[appsv1.Deployment](t, m, "Deployment", deploymentName)
	s := mustTyped[corev1.Service](t, m, "Service", serviceName)
	c := d.Spec.Template.Spec.Containers[0]
	var actuator string
	for _, port := range c.Ports {
		if port.Name == "actuator" {
			actuator = fmt.Sprint(port.ContainerPort)
		}
	}
	var p problems
	equal(&p, "pod prometheus.io/port", d.Spec.Template.Annotations["prometheus.io/port"], actuator)
	equal(&p, "Service prometheus.io/port", s.Annotations["prometheus.io/port"], actuator)
	equal(&p, "readiness port", c.ReadinessProbe.HTTPGet.Port.String(), actuator)
	equal(&p, "liveness port", c.LivenessProbe.HTTPGet.Port.String(), actuator)
	for _, msg := range p {
		t.Error(msg)
	}
}

func TestFactProblems_ReportEveryDriftedField(t *testing.T) {
	// The checker must fail on a drifted manifest, or a green run proves nothing.
	container := func(m manifest) map[string]any {
		spec := m.find("Deployment", deploymentName).Object["spec"].(map[string]any)
		return spec["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
	}
	cases := []struct {
		name   string
		mutate func(m manifest)
		want   string // in one of the problems
	}{
		{"extra verb", func(m manifest) {
			r := m.find("Role", roleName).Object["rules"].([]any)[2].(map[string]any)
			r["verbs"] = append(r["verbs"].([]any), "update")
		}, "Role rules"},
		{"liveness on the API port", func(m manifest) {
			container(m)["livenessProbe"].(map[string]any)["httpGet"].(map[string]any)["port"] = int64(8080)
		}, "livenessProbe"},
		{"extra env", func(m manifest) {
			c := container(m)
			c["env"] = append(c["env"].([]any), map[string]any{"name": "X", "value": "y"})
		}, "env"},
		{"service port renamed", func(m manifest) {
			m.find("Service", serviceName).Object["spec"].(map[string]any)["ports"].([]any)[1].(map[string]any)["name"] = "metrics"
		}, "Service ports"},
		{"misspelled field", func(m manifest) {
			container(m)["readinesProbe"] = map[string]any{}
		}, "unknown field"},
		{"object in another namespace", func(m manifest) {
			m.find("Service", serviceName).SetNamespace("default")
		}, "Service/control-plane namespace"},
		{"missing object", func(m manifest) {
			m[len(m)-1].SetName("renamed")
		}, "want exactly"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := loadRaw(t).deepCopy()
			tc.mutate(m)
			got := factProblems(m, rawFacts())
			if !slices.ContainsFunc(got, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Errorf("problems = %q, want one mentioning %q", got, tc.want)
			}
		})
	}
}
