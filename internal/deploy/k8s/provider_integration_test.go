package k8s

import (
	"context"
	"errors"
	"github.com/nanofaas/control-plane/internal/kubeclient"
	"github.com/nanofaas/control-plane/internal/kubetest"
	"reflect"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/nanofaas/control-plane/internal/failure"
	"github.com/nanofaas/control-plane/internal/function"
)

// realProvider returns a provider in a fresh namespace of the shared real apiserver.
func realProvider(t *testing.T) (*Provider, kubernetes.Interface, string) {
	t.Helper()
	c := kube.Cluster(t)
	ns := c.Namespace(t)
	return New(Config{Namespace: ns, CallbackURL: "http://control-plane." + ns + ".svc.cluster.local:8080/v1/internal/executions"},
		productionClient(t, c), nil), c.Clientset, ns
}

// runCache runs p's informer for the rest of the test and waits for it to sync.
func runCache(t *testing.T, p *Provider) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	syncCtx, syncCancel := context.WithTimeout(ctx, 30*time.Second)
	defer syncCancel()
	if !p.WaitForCacheSync(syncCtx) {
		t.Fatal("informer cache did not sync")
	}
}

func fullSpec() *function.Spec {
	s := withHPA(resolved("word-stats"), 2, 6,
		&function.ScalingMetric{Type: sp("cpu"), Target: sp("75")},
		&function.ScalingMetric{Type: sp("in_flight"), Target: sp("3")},
		&function.ScalingMetric{Type: sp("prometheus"), Target: sp("bogus"), Query: sp("sum(x)")})
	s.Command = []string{"/app/fn", "--serve"}
	s.Env = map[string]string{"B": "2", "A": "1", "WARM": "false"}
	s.Resources = &function.ResourceSpec{CPU: sp("250m"), Memory: sp("64Mi")}
	s.ImagePullSecrets = []string{" regcred ", ""}
	return s
}

func TestIntegration_ProvisionCreatesObjectsFieldByField(t *testing.T) {
	p, client, ns := realProvider(t)
	ctx := t.Context()
	pr, err := p.Provision(ctx, fullSpec())
	if err != nil {
		t.Fatal(err)
	}
	if want := "http://fn-word-stats." + ns + ".svc.cluster.local:8080/invoke"; pr.EndpointURL != want || pr.BackendID != "k8s" {
		t.Fatalf("result = %+v, want %s from k8s", pr, want)
	}

	d, err := client.AppsV1().Deployments(ns).Get(ctx, "fn-word-stats", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": "nanofaas", "function": "word-stats"}
	ann := map[string]string{"prometheus.io/scrape": "true", "prometheus.io/path": "/metrics", "prometheus.io/port": "8080"}
	c := d.Spec.Template.Spec.Containers[0]
	checks := []struct {
		field     string
		got, want any
	}{
		{"deployment labels", d.Labels, labels},
		{"replicas = minReplicas", *d.Spec.Replicas, int32(2)},
		{"selector", d.Spec.Selector.MatchLabels, map[string]string{"function": "word-stats"}},
		{"template labels", d.Spec.Template.Labels, labels},
		{"template annotations", d.Spec.Template.Annotations, ann},
		{"containers", len(d.Spec.Template.Spec.Containers), 1},
		{"container", c.Name, "function"},
		{"image", c.Image, "ghcr.io/acme/fn:1"},
		{"pull policy", c.ImagePullPolicy, corev1.PullAlways},
		{"command", c.Command, []string{"/app/fn", "--serve"}},
		{"env", envNames(c.Env), []string{"FUNCTION_NAME=word-stats", "WARM=true", "TIMEOUT_MS=30000", "EXECUTION_MODE=HTTP",
			"CALLBACK_URL=http://control-plane." + ns + ".svc.cluster.local:8080/v1/internal/executions", "A=1", "B=2"}},
		{"ports", c.Ports, []corev1.ContainerPort{{ContainerPort: 8080, Protocol: corev1.ProtocolTCP}}},
		{"probe", c.ReadinessProbe.HTTPGet, &corev1.HTTPGetAction{Path: "/health", Port: intstr.FromInt32(8080), Scheme: corev1.URISchemeHTTP}},
		{"probe timing", []int32{c.ReadinessProbe.InitialDelaySeconds, c.ReadinessProbe.PeriodSeconds}, []int32{2, 5}},
		{"liveness", c.LivenessProbe, (*corev1.Probe)(nil)},
		{"pull secrets", d.Spec.Template.Spec.ImagePullSecrets, []corev1.LocalObjectReference{{Name: "regcred"}}},
		{"restart", d.Spec.Template.Spec.RestartPolicy, corev1.RestartPolicyAlways},
		{"owner references", len(d.OwnerReferences), 0},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %#v, want %#v", ch.field, ch.got, ch.want)
		}
	}
	for _, list := range []corev1.ResourceList{c.Resources.Requests, c.Resources.Limits} {
		if cpu, mem := list[corev1.ResourceCPU], list[corev1.ResourceMemory]; cpu.Cmp(resource.MustParse("250m")) != 0 ||
			mem.Cmp(resource.MustParse("64Mi")) != 0 || len(list) != 2 {
			t.Errorf("resources = %+v, want requests == limits == 250m/64Mi", c.Resources)
		}
	}

	s, err := client.CoreV1().Services(ns).Get(ctx, "fn-word-stats", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Spec.Type != corev1.ServiceTypeClusterIP || !reflect.DeepEqual(s.Spec.Selector, map[string]string{"function": "word-stats"}) ||
		!reflect.DeepEqual(s.Labels, labels) || !reflect.DeepEqual(s.Annotations, ann) || len(s.Spec.Ports) != 1 ||
		s.Spec.Ports[0].Port != 8080 || s.Spec.Ports[0].TargetPort != intstr.FromInt32(8080) ||
		s.Spec.Ports[0].Protocol != corev1.ProtocolTCP || s.Spec.Ports[0].Name != "" || s.Spec.ClusterIP == "" {
		t.Errorf("service = %+v", s)
	}

	h, err := client.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, "fn-word-stats", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(h.Labels, labels) || *h.Spec.MinReplicas != 2 || h.Spec.MaxReplicas != 6 ||
		h.Spec.ScaleTargetRef != (autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "fn-word-stats"}) {
		t.Errorf("hpa = %+v", h.Spec)
	}
	if len(h.Spec.Metrics) != 3 {
		t.Fatalf("hpa metrics = %+v", h.Spec.Metrics)
	}
	if m := h.Spec.Metrics[0]; m.Resource == nil || m.Resource.Name != corev1.ResourceCPU || *m.Resource.Target.AverageUtilization != 75 {
		t.Errorf("cpu metric = %+v", m)
	}
	for i, want := range map[int]struct {
		name  string
		value int64
	}{1: {"nanofaas_in_flight", 3}, 2: {"nanofaas_custom_word-stats", 50}} {
		m := h.Spec.Metrics[i]
		if m.External == nil || m.External.Metric.Name != want.name || m.External.Target.Type != autoscalingv2.ValueMetricType ||
			m.External.Target.Value.Value() != want.value ||
			!reflect.DeepEqual(m.External.Metric.Selector.MatchLabels, map[string]string{"function": "word-stats"}) {
			t.Errorf("metric %d = %+v, want %s value %d", i, m, want.name, want.value)
		}
	}
}

func TestIntegration_ReprovisionKeepsUIDsAndFollowsStrategyChanges(t *testing.T) {
	p, client, ns := realProvider(t)
	ctx := t.Context()
	spec := withHPA(resolved("echo"), 1, 3, &function.ScalingMetric{Type: sp("rps"), Target: sp("10")})
	if _, err := p.Provision(ctx, spec); err != nil {
		t.Fatal(err)
	}
	uids := func() (ids [3]string) {
		d, err := client.AppsV1().Deployments(ns).Get(ctx, "fn-echo", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s, err := client.CoreV1().Services(ns).Get(ctx, "fn-echo", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ids[0], ids[1] = string(d.UID), string(s.UID)
		if h, err := client.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, "fn-echo", metav1.GetOptions{}); err == nil {
			ids[2] = string(h.UID)
		} else if !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		return ids
	}
	before := uids()
	if before[2] == "" {
		t.Fatal("HPA not created")
	}
	if err := p.SetReplicas(ctx, "echo", 3); err != nil {
		t.Fatal(err)
	}

	// Same function again with a new image and HPA bounds: patched in place.
	spec = withHPA(resolved("echo"), 2, 4, &function.ScalingMetric{Type: sp("rps"), Target: sp("20")})
	spec.Image = "ghcr.io/acme/fn:2"
	spec.Env = map[string]string{"NEW": "x"}
	if _, err := p.Provision(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if after := uids(); after != before {
		t.Fatalf("UIDs changed on re-provision: %v → %v", before, after)
	}
	d, _ := client.AppsV1().Deployments(ns).Get(ctx, "fn-echo", metav1.GetOptions{})
	c := d.Spec.Template.Spec.Containers
	if *d.Spec.Replicas != 2 || len(c) != 1 || c[0].Image != "ghcr.io/acme/fn:2" || c[0].Env[len(c[0].Env)-1].Name != "NEW" {
		t.Fatalf("deployment not patched: replicas %d containers %+v", *d.Spec.Replicas, c)
	}
	h, _ := client.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, "fn-echo", metav1.GetOptions{})
	if *h.Spec.MinReplicas != 2 || h.Spec.MaxReplicas != 4 || h.Spec.Metrics[0].External.Target.Value.Value() != 20 {
		t.Fatalf("hpa not patched: %+v", h.Spec)
	}

	// Strategy INTERNAL: the stale HPA goes, the rest stays.
	if _, err := p.Provision(ctx, resolved("echo")); err != nil {
		t.Fatal(err)
	}
	after := uids()
	if after[2] != "" || after[0] != before[0] || after[1] != before[1] {
		t.Fatalf("after strategy change UIDs = %v (before %v), want HPA gone and the rest kept", after, before)
	}
	// And back to HPA: created again.
	if _, err := p.Provision(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if uids()[2] == "" {
		t.Fatal("HPA not recreated")
	}
}

func TestIntegration_SetReplicasThroughScale(t *testing.T) {
	p, client, ns := realProvider(t)
	ctx := t.Context()
	if _, err := p.Provision(ctx, resolved("echo")); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{5, 0, 2} {
		if err := p.SetReplicas(ctx, "echo", n); err != nil {
			t.Fatal(err)
		}
		scale, err := client.AppsV1().Deployments(ns).GetScale(ctx, "fn-echo", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if scale.Spec.Replicas != int32(n) {
			t.Fatalf("scale.spec.replicas = %d, want %d", scale.Spec.Replicas, n)
		}
	}
	// API errors are not translated (500), a missing Deployment included.
	err := p.SetReplicas(ctx, "ghost", 1)
	if !failure.IsKind(err, failure.Internal) || !apierrors.IsNotFound(err) || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("missing deployment: err = %v, want Internal wrapping NotFound", err)
	}
}

// setReadyReplicas writes status.readyReplicas like the deployment controller would.
func setReadyReplicas(t *testing.T, client kubernetes.Interface, ns, name string, ready int32) {
	t.Helper()
	ctx := t.Context()
	d, err := client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d.Status = appsv1.DeploymentStatus{Replicas: ready, UpdatedReplicas: ready, ReadyReplicas: ready, AvailableReplicas: ready}
	if _, err := client.AppsV1().Deployments(ns).UpdateStatus(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestIntegration_ReadyReplicasFromStatus(t *testing.T) {
	p, client, ns := realProvider(t)
	ctx := t.Context()
	if _, err := p.Provision(ctx, resolved("echo")); err != nil {
		t.Fatal(err)
	}
	// Before the cache runs: direct reads.
	if got, err := p.ReadyReplicas(ctx, "echo"); err != nil || got != 0 {
		t.Fatalf("ReadyReplicas without status = %d, %v", got, err)
	}
	setReadyReplicas(t, client, ns, "fn-echo", 1)
	if got, err := p.ReadyReplicas(ctx, "echo"); err != nil || got != 1 {
		t.Fatalf("ReadyReplicas (GET) = %d, %v; want 1", got, err)
	}

	runCache(t, p)
	if got, err := p.ReadyReplicas(ctx, "echo"); err != nil || got != 1 {
		t.Fatalf("ReadyReplicas (cache) = %d, %v; want 1", got, err)
	}
	setReadyReplicas(t, client, ns, "fn-echo", 3)
	waitReady(t, p, "echo", 3)
	if got, err := p.ReadyReplicas(ctx, "ghost"); err != nil || got != 0 {
		t.Fatalf("ReadyReplicas(ghost) = %d, %v; want 0", got, err)
	}
	if err := p.Deprovision(ctx, "echo"); err != nil {
		t.Fatal(err)
	}
	waitReady(t, p, "echo", 0)
}

func waitReady(t *testing.T, p *Provider, fn string, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := p.ReadyReplicas(t.Context(), fn)
		if err == nil && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ReadyReplicas(%s) = %d, %v; want %d", fn, got, err, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestIntegration_DeprovisionRemovesEverything(t *testing.T) {
	p, client, ns := realProvider(t)
	ctx := t.Context()
	if _, err := p.Provision(ctx, withHPA(resolved("echo"), 1, 2)); err != nil {
		t.Fatal(err)
	}
	if err := p.Deprovision(ctx, "echo"); err != nil {
		t.Fatal(err)
	}
	assertGone(t, client, ns, "fn-echo")
	if err := p.Deprovision(ctx, "echo"); err != nil {
		t.Fatalf("second deprovision: %v", err)
	}
}

func assertGone(t *testing.T, client kubernetes.Interface, ns, name string) {
	t.Helper()
	ctx := t.Context()
	_, derr := client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	_, serr := client.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	_, herr := client.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, name, metav1.GetOptions{})
	for kind, err := range map[string]error{"deployment": derr, "service": serr, "hpa": herr} {
		if !apierrors.IsNotFound(err) {
			t.Errorf("%s %s still there (err = %v)", kind, name, err)
		}
	}
}

func TestIntegration_RejectedProvisioningLeavesNothingBehind(t *testing.T) {
	p, client, ns := realProvider(t)
	ctx := t.Context()

	// Invalid name: 400 before any API call.
	if _, err := p.Provision(ctx, resolved("Word_Stats")); !failure.IsKind(err, failure.InvalidArgument) {
		t.Fatalf("invalid name: err = %v, want 400", err)
	}

	// The apiserver rejects an HPA with minReplicas 0 (HPAScaleToZero is off): the Deployment and
	// Service created before it are removed again and the API error is Internal (500, never
	// degraded), its message naming the object for the log.
	_, err := p.Provision(ctx, withHPA(resolved("zero"), 0, 2, &function.ScalingMetric{Type: sp("cpu")}))
	if !failure.IsKind(err, failure.Internal) || !strings.Contains(err.Error(), "create HorizontalPodAutoscaler 'fn-zero'") ||
		!strings.Contains(err.Error(), "minReplicas") {
		t.Fatalf("err = %v, want Internal naming the HPA and minReplicas", err)
	}
	var se *apierrors.StatusError
	if !errors.As(err, &se) || !apierrors.IsInvalid(err) {
		t.Fatalf("cause is not the API's Invalid status: %v", err)
	}
	assertGone(t, client, ns, "fn-zero")
}

// Objects that existed before a failing re-provisioning (e.g. they survived a control-plane
// restart and the function is registered again) stay; only what the call created goes.
func TestIntegration_FailedReprovisionKeepsPreExistingObjects(t *testing.T) {
	p, client, ns := realProvider(t)
	ctx := t.Context()
	if _, err := p.Provision(ctx, resolved("echo")); err != nil {
		t.Fatal(err)
	}
	dep, err := client.AppsV1().Deployments(ns).Get(ctx, "fn-echo", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The Service is gone (deleted out of band): this time the call creates it, so it removes it.
	if err := client.CoreV1().Services(ns).Delete(ctx, "fn-echo", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	spec := withHPA(resolved("echo"), 0, 2, &function.ScalingMetric{Type: sp("cpu")})
	spec.Image = "ghcr.io/acme/fn:2"
	_, err = p.Provision(ctx, spec)
	if !failure.IsKind(err, failure.Internal) || !apierrors.IsInvalid(err) {
		t.Fatalf("err = %v, want Internal wrapping the apiserver's Invalid", err)
	}
	got, err := client.AppsV1().Deployments(ns).Get(ctx, "fn-echo", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("pre-existing Deployment deleted by the failed re-provisioning: %v", err)
	}
	if got.UID != dep.UID || got.Spec.Template.Spec.Containers[0].Image != "ghcr.io/acme/fn:2" {
		t.Fatalf("deployment uid=%s image=%s, want uid %s kept (patched in place)", got.UID,
			got.Spec.Template.Spec.Containers[0].Image, dep.UID)
	}
	if _, err := client.CoreV1().Services(ns).Get(ctx, "fn-echo", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("Service created by the failed call left behind: %v", err)
	}
	if _, err := client.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, "fn-echo", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("HPA exists after its rejection: %v", err)
	}

	// All three pre-exist now (the Service again too): a failure deletes none of them.
	if _, err := p.Provision(ctx, resolved("echo")); err != nil {
		t.Fatal(err)
	}
	svc, err := client.CoreV1().Services(ns).Get(ctx, "fn-echo", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Provision(ctx, spec); !failure.IsKind(err, failure.Internal) {
		t.Fatalf("err = %v, want Internal", err)
	}
	if got, err := client.AppsV1().Deployments(ns).Get(ctx, "fn-echo", metav1.GetOptions{}); err != nil || got.UID != dep.UID {
		t.Fatalf("deployment after second failure: err %v, want uid %s kept", err, dep.UID)
	}
	if got, err := client.CoreV1().Services(ns).Get(ctx, "fn-echo", metav1.GetOptions{}); err != nil || got.UID != svc.UID {
		t.Fatalf("service after second failure: err %v, want uid %s kept", err, svc.UID)
	}
}

func TestIntegration_MissingNamespaceIsInternal(t *testing.T) {
	c := kube.Cluster(t)
	p := New(Config{Namespace: "no-such-namespace"}, productionClient(t, c), nil)
	_, err := p.Provision(t.Context(), resolved("echo"))
	if !failure.IsKind(err, failure.Internal) || !apierrors.IsNotFound(err) ||
		!strings.Contains(err.Error(), "namespace 'no-such-namespace'") {
		t.Fatalf("err = %v, want Internal naming the namespace", err)
	}
}

// productionClient is the control plane's own lean client for the test cluster, so these tests
// exercise the code the binary runs, not client-go's typed clientset.
func productionClient(t testing.TB, c *kubetest.Cluster) kubeclient.Interface {
	t.Helper()
	client, err := kubeclient.New(c.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	return client
}
