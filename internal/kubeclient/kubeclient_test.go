package kubeclient_test

import (
	"os"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/nanofaas/control-plane/internal/kubeclient"
	"github.com/nanofaas/control-plane/internal/kubetest"
)

var kube kubetest.Shared

func TestMain(m *testing.M) {
	os.Exit(kube.RunCheckingLeaks(m))
}

func int32p(v int32) *int32 { return &v }

// TestClient_EveryVerbAgainstARealAPIServer runs each verb of the lean client against a real
// kube-apiserver: the types round-trip, errors are typed API errors, list/watch and the scale
// subresource work.
func TestClient_EveryVerbAgainstARealAPIServer(t *testing.T) {
	c := kube.Cluster(t)
	ns := c.Namespace(t)
	client, err := kubeclient.New(c.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	labels := map[string]string{"app": "nanofaas", "function": "echo"}

	deps := client.Deployments(ns)
	w, err := deps.Watch(ctx, metav1.ListOptions{LabelSelector: "app=nanofaas"})
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	defer w.Stop()
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "fn-echo", Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: int32p(1),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"function": "echo"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "function", Image: "img:1"}}},
			},
		},
	}
	created, err := deps.Create(ctx, dep, metav1.CreateOptions{})
	if err != nil || created.UID == "" {
		t.Fatalf("Create = %+v, %v", created, err)
	}
	if _, err := deps.Create(ctx, dep, metav1.CreateOptions{}); !apierrors.IsAlreadyExists(err) {
		t.Errorf("second Create = %v, want AlreadyExists", err)
	}
	select {
	case ev := <-w.ResultChan():
		if d, ok := ev.Object.(*appsv1.Deployment); ev.Type != watch.Added || !ok || d.Name != "fn-echo" {
			t.Errorf("watch event = %v %T", ev.Type, ev.Object)
		}
	case <-time.After(10 * time.Second):
		t.Error("no watch event for the created Deployment")
	}
	patched, err := deps.Patch(ctx, "fn-echo", types.MergePatchType, []byte(`{"metadata":{"annotations":{"a":"b"}}}`), metav1.PatchOptions{})
	if err != nil || patched.UID != created.UID || patched.Annotations["a"] != "b" {
		t.Errorf("Patch = %+v, %v", patched.ObjectMeta, err)
	}
	scale, err := deps.UpdateScale(ctx, "fn-echo", &autoscalingv1.Scale{
		ObjectMeta: metav1.ObjectMeta{Name: "fn-echo", Namespace: ns}, Spec: autoscalingv1.ScaleSpec{Replicas: 3},
	}, metav1.UpdateOptions{})
	if err != nil || scale.Spec.Replicas != 3 {
		t.Errorf("UpdateScale = %+v, %v", scale, err)
	}
	got, err := deps.Get(ctx, "fn-echo", metav1.GetOptions{})
	if err != nil || *got.Spec.Replicas != 3 {
		t.Errorf("Get after scale = %v, %v", got.Spec.Replicas, err)
	}
	list, err := deps.List(ctx, metav1.ListOptions{LabelSelector: "function=echo"})
	if err != nil || len(list.Items) != 1 {
		t.Errorf("List = %d items, %v", len(list.Items), err)
	}
	if _, err := deps.Get(ctx, "fn-missing", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Get missing = %v, want NotFound", err)
	}

	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "fn-echo", Labels: labels},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"function": "echo"}, Ports: []corev1.ServicePort{{Port: 8080}}},
	}
	if _, err := client.Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Errorf("Service Create: %v", err)
	}
	if _, err := client.Services(ns).Patch(ctx, "fn-echo", types.MergePatchType, []byte(`{"metadata":{"labels":{"x":"y"}}}`), metav1.PatchOptions{}); err != nil {
		t.Errorf("Service Patch: %v", err)
	}
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "fn-echo"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "fn-echo"},
			MinReplicas:    int32p(1), MaxReplicas: 5,
		},
	}
	if _, err := client.HorizontalPodAutoscalers(ns).Create(ctx, hpa, metav1.CreateOptions{}); err != nil {
		t.Errorf("HPA Create: %v", err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "probe"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "validate", Image: "img:1"}}},
	}
	if _, err := client.Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Errorf("Pod Create: %v", err)
	}
	if p, err := client.Pods(ns).Get(ctx, "probe", metav1.GetOptions{}); err != nil || p.Spec.Containers[0].Name != "validate" {
		t.Errorf("Pod Get = %v", err)
	}

	for name, del := range map[string]func() error{
		"hpa": func() error {
			return client.HorizontalPodAutoscalers(ns).Delete(ctx, "fn-echo", metav1.DeleteOptions{})
		},
		"service":    func() error { return client.Services(ns).Delete(ctx, "fn-echo", metav1.DeleteOptions{}) },
		"deployment": func() error { return deps.Delete(ctx, "fn-echo", metav1.DeleteOptions{}) },
		"pod":        func() error { return client.Pods(ns).Delete(ctx, "probe", metav1.DeleteOptions{}) },
	} {
		if err := del(); err != nil {
			t.Errorf("Delete %s: %v", name, err)
		}
	}
	if err := deps.Delete(ctx, "fn-echo", metav1.DeleteOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("second Delete = %v, want NotFound", err)
	}
}
