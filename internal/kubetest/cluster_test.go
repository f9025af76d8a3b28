package kubetest

import (
	"context"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newDeployment(name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:  "function",
					Image: "nanofaas/echo:test",
				}}},
			},
		},
	}
}

// With no kubelet or controllers, readiness is simulated by writing the
// Deployment status through its status subresource; the scale subresource
// works as it does on a real cluster.
func TestDeployment_StatusAndScaleSubresourcesSimulateReadiness(t *testing.T) {
	c := kube.Cluster(t)
	ns := c.Namespace(t)
	ctx := testContext(t)
	deps := c.Clientset.AppsV1().Deployments(ns)

	created, err := deps.Create(ctx, newDeployment("fn-echo", 2), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if created.Status.ReadyReplicas != 0 {
		t.Fatalf("new deployment ready replicas = %d, want 0 (no kubelet)", created.Status.ReadyReplicas)
	}

	created.Status = appsv1.DeploymentStatus{
		ObservedGeneration: created.Generation,
		Replicas:           2,
		UpdatedReplicas:    2,
		ReadyReplicas:      2,
		AvailableReplicas:  2,
		Conditions: []appsv1.DeploymentCondition{{
			Type:   appsv1.DeploymentAvailable,
			Status: corev1.ConditionTrue,
			Reason: "MinimumReplicasAvailable",
		}},
	}
	if _, err := deps.UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update status: %v", err)
	}
	got, err := deps.Get(ctx, "fn-echo", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if got.Status.ReadyReplicas != 2 || got.Status.AvailableReplicas != 2 || got.Status.ObservedGeneration != got.Generation {
		t.Fatalf("status after UpdateStatus = %+v, want 2 ready/available at generation %d", got.Status, got.Generation)
	}

	// The main resource ignores status, as on a real cluster.
	got.Status.ReadyReplicas = 0
	updated, err := deps.Update(ctx, got, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if updated.Status.ReadyReplicas != 2 {
		t.Fatalf("ready replicas after plain Update = %d, want 2 (status only via subresource)", updated.Status.ReadyReplicas)
	}

	scale, err := deps.GetScale(ctx, "fn-echo", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get scale: %v", err)
	}
	if scale.Spec.Replicas != 2 || scale.Status.Replicas != 2 || scale.Status.Selector != "app=fn-echo" {
		t.Fatalf("scale = spec %d status %d selector %q, want 2/2/app=fn-echo",
			scale.Spec.Replicas, scale.Status.Replicas, scale.Status.Selector)
	}
	scale.Spec.Replicas = 5
	if _, err := deps.UpdateScale(ctx, "fn-echo", scale, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update scale: %v", err)
	}
	scaled, err := deps.Get(ctx, "fn-echo", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get after scale: %v", err)
	}
	if *scaled.Spec.Replicas != 5 || scaled.Generation <= got.Generation {
		t.Fatalf("after scale: replicas %d generation %d, want 5 and a generation above %d",
			*scaled.Spec.Replicas, scaled.Generation, got.Generation)
	}
	if scaled.Status.ReadyReplicas != 2 {
		t.Fatalf("ready replicas after scale = %d, want 2 until the status is written", scaled.Status.ReadyReplicas)
	}

	// A stale scale write is rejected with a conflict, like any update.
	stale := &autoscalingv1.Scale{ObjectMeta: scale.ObjectMeta, Spec: autoscalingv1.ScaleSpec{Replicas: 1}}
	if _, err := deps.UpdateScale(ctx, "fn-echo", stale, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
		t.Fatalf("stale scale update: err = %v, want a conflict", err)
	}
}

func TestCluster_KubeconfigReachesTheBuiltServerVersion(t *testing.T) {
	c := kube.Cluster(t)
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		t.Fatalf("load kubeconfig: %v", err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	v, err := client.Discovery().ServerVersion()
	if err != nil {
		t.Fatalf("server version: %v", err)
	}
	if v.GitVersion != KubeVersion {
		t.Fatalf("server version = %q, want %q", v.GitVersion, KubeVersion)
	}
}

func TestNamespace_IsFreshAndActivePerTest(t *testing.T) {
	c := kube.Cluster(t)
	ctx := testContext(t)
	first, second := c.Namespace(t), c.Namespace(t)
	if first == second {
		t.Fatalf("two namespaces share the name %q", first)
	}
	for _, name := range []string{first, second} {
		ns, err := c.Clientset.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get %s: %v", name, err)
		}
		if ns.Status.Phase != corev1.NamespaceActive {
			t.Fatalf("namespace %s phase = %s, want Active", name, ns.Status.Phase)
		}
	}
}

func TestStart_CleanupStopsBothProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a second cluster")
	}
	var c *Cluster
	t.Run("dedicated", func(t *testing.T) {
		c = Start(t)
		if _, err := c.Clientset.Discovery().ServerVersion(); err != nil {
			t.Fatalf("server version: %v", err)
		}
	})
	if c == nil {
		return // skipped: binaries missing and NANOFAAS_SKIP_KUBE=1
	}
	if !c.apiserver.exited() || !c.etcd.exited() {
		t.Fatalf("after cleanup: apiserver exited %v, etcd exited %v; want both", c.apiserver.exited(), c.etcd.exited())
	}
	if _, err := os.Stat(c.Kubeconfig); !os.IsNotExist(err) {
		t.Fatalf("kubeconfig %s still there after cleanup (err %v)", c.Kubeconfig, err)
	}
}

func TestLaunch_RetriesWithNewPortsWhenAPickedPortIsTaken(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a second cluster")
	}
	bins := requireBinaries(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenPort := taken.Addr().(*net.TCPAddr).Port
	picks := 0
	pick := func(n int) ([]int, error) {
		picks++
		ports, err := freePorts(n)
		if err == nil && picks == 1 {
			ports[n-1] = takenPort // the apiserver's secure port loses the race
		}
		return ports, err
	}

	ctx, cancel := context.WithTimeout(t.Context(), startTimeout)
	defer cancel()
	c, err := launch(ctx, bins, t.TempDir(), pick)
	if err != nil {
		t.Fatalf("launch: %v", err)
	}
	t.Cleanup(c.stop)
	if picks != 2 {
		t.Fatalf("ports picked %d times, want 2 (one retry)", picks)
	}
	if strings.HasSuffix(c.RESTConfig.Host, ":"+strconv.Itoa(takenPort)) {
		t.Fatalf("cluster serves on the taken port %d", takenPort)
	}
	if _, err := c.Clientset.Discovery().ServerVersion(); err != nil {
		t.Fatalf("server version: %v", err)
	}
}
