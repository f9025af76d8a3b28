//go:build !nok8s

package controlplane

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// imgvalProbeSelector selects the image validator's probe pods.
const imgvalProbeSelector = "nanofaas.io/purpose=image-validation"

// imgvalKubelet plays the kubelet for the probe pod of function fn in ns: when the pod is
// created it writes status through the status subresource. The watch is open before it returns,
// so the pod cannot be missed. The returned channel yields the pod, as created, and is closed
// when the goroutine ends (after the update, or at the end of the test).
func imgvalKubelet(t *testing.T, cs kubernetes.Interface, ns, fn string, status corev1.PodStatus) <-chan *corev1.Pod {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{LabelSelector: "nanofaas.io/function=" + fn})
	if err != nil {
		cancel()
		t.Fatalf("watch pods: %v", err)
	}
	seen := make(chan *corev1.Pod, 1)
	done := make(chan struct{})
	t.Cleanup(func() {
		cancel()
		<-done
	})
	go func() {
		defer close(done)
		defer close(seen)
		defer w.Stop()
		for ev := range w.ResultChan() {
			pod, ok := ev.Object.(*corev1.Pod)
			if ev.Type != watch.Added || !ok {
				continue
			}
			seen <- pod.DeepCopy()
			updated := pod.DeepCopy()
			updated.Status = status
			if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, updated, metav1.UpdateOptions{}); err != nil {
				t.Errorf("update status of probe pod %s: %v", pod.Name, err)
			}
			return
		}
	}()
	return seen
}

// imgvalProbePod returns the probe pod imgvalKubelet saw. The registration has returned, so the
// pod was created (and deleted) already and its event is on its way.
func imgvalProbePod(t *testing.T, seen <-chan *corev1.Pod) *corev1.Pod {
	t.Helper()
	select {
	case pod := <-seen:
		if pod == nil {
			t.Fatal("no probe pod was created")
		}
		return pod
	case <-time.After(5 * time.Second):
		t.Fatal("no probe pod was created")
		return nil
	}
}

// imgvalWaitNoProbePods polls until ns holds no probe pod.
func imgvalWaitNoProbePods(t *testing.T, cs kubernetes.Interface, ns string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		pods, err := cs.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: imgvalProbeSelector})
		if err != nil {
			t.Fatalf("list probe pods: %v", err)
		}
		if len(pods.Items) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("probe pod %s left in %s", pods.Items[0].Name, ns)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func imgvalPulledStatus(image string) corev1.PodStatus {
	return corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{
		Name: "validate", Image: image, Ready: true,
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
	}}}
}

func imgvalNotFoundStatus(image string) corev1.PodStatus {
	return corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{
		Name: "validate", Image: image,
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
			Reason:  "ErrImagePull",
			Message: `failed to pull and unpack image "` + image + `": failed to resolve reference: manifest unknown`,
		}},
	}}}
}

// TestImageValidatorE2E_ProbePodDecidesRegistration starts the control plane against a real
// kube-apiserver with the image validator on (its default) and plays the kubelet for the probe
// pod (D23): a pod that starts running lets the registration through (201, Deployment created),
// a pod waiting on ErrImagePull "manifest unknown" refuses it with 422 IMAGE_NOT_FOUND and nothing
// is provisioned. Either way the probe pod is deleted.
func TestImageValidatorE2E_ProbePodDecidesRegistration(t *testing.T) {
	cluster := kube.Cluster(t)
	cs := cluster.Clientset
	ns := cluster.Namespace(t)
	t.Setenv("KUBECONFIG", cluster.Kubeconfig)
	api, _ := startApp(t, "--nanofaas.deployment.default-backend=k8s", "--nanofaas.k8s.namespace="+ns)

	t.Run("pulled", func(t *testing.T) {
		const image = "registry.example/acme/pulled:1"
		seen := imgvalKubelet(t, cs, ns, "pulled", imgvalPulledStatus(image))
		code, body := call(t, "POST", api+"/v1/functions", `{"name":"pulled","image":"`+image+`"}`)
		if code != 201 || !strings.Contains(body, `"deploymentBackend":"k8s"`) {
			t.Fatalf("register = %d %s, want 201 on the k8s backend", code, body)
		}
		pod := imgvalProbePod(t, seen)
		if !strings.HasPrefix(pod.Name, "imgval-pulled-") || pod.Spec.Containers[0].Image != image {
			t.Errorf("probe pod %s runs %s", pod.Name, pod.Spec.Containers[0].Image)
		}
		if _, err := cs.AppsV1().Deployments(ns).Get(t.Context(), "fn-pulled", metav1.GetOptions{}); err != nil {
			t.Errorf("deployment after a pulled image: %v", err)
		}
		imgvalWaitNoProbePods(t, cs, ns)
	})

	t.Run("manifest unknown", func(t *testing.T) {
		const image = "registry.example/acme/missing:1"
		seen := imgvalKubelet(t, cs, ns, "missing", imgvalNotFoundStatus(image))
		code, body := call(t, "POST", api+"/v1/functions", `{"name":"missing","image":"`+image+`"}`)
		if want := `{"error":"IMAGE_NOT_FOUND","message":"Image not found in registry: ` + image + `"}`; code != 422 || body != want {
			t.Errorf("register = %d %s, want 422 %s", code, body, want)
		}
		imgvalProbePod(t, seen)
		if _, err := cs.AppsV1().Deployments(ns).Get(t.Context(), "fn-missing", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("deployment of a refused function: err = %v, want NotFound", err)
		}
		if code, _ := call(t, "GET", api+"/v1/functions/missing", ""); code != 404 {
			t.Errorf("GET refused function = %d, want 404", code)
		}
		imgvalWaitNoProbePods(t, cs, ns)
	})
}

// TestImageValidatorE2E_NoProbePodWhenDisabled registers a DEPLOYMENT function on the k8s backend
// with the validator switched off, or not loaded, and watches the namespace: no pod is created
// before a sentinel pod the test creates after the registration returned (the watch delivers a
// namespace's pod events in order), and the function is provisioned.
func TestImageValidatorE2E_NoProbePodWhenDisabled(t *testing.T) {
	cluster := kube.Cluster(t)
	cs := cluster.Clientset
	t.Setenv("KUBECONFIG", cluster.Kubeconfig)
	for _, tc := range []struct{ name, flag string }{
		{"enabled=false", "--nanofaas.image-validator.enabled=false"},
		{"module not loaded", "--nanofaas.control-plane.modules=async-queue,k8s-deployment-provider"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := cluster.Namespace(t)
			api, _ := startApp(t, "--nanofaas.deployment.default-backend=k8s", "--nanofaas.k8s.namespace="+ns, tc.flag)
			ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
			defer cancel()
			w, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatalf("watch pods: %v", err)
			}
			defer w.Stop()

			if code, body := call(t, "POST", api+"/v1/functions", `{"name":"unchecked","image":"registry.example/acme/unchecked:1"}`); code != 201 {
				t.Fatalf("register = %d %s", code, body)
			}
			sentinel := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "sentinel"},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "sentinel:1"}}},
			}
			if _, err := cs.CoreV1().Pods(ns).Create(ctx, sentinel, metav1.CreateOptions{}); err != nil {
				t.Fatalf("create sentinel pod: %v", err)
			}
			sentinelSeen := false
			for ev := range w.ResultChan() {
				pod, ok := ev.Object.(*corev1.Pod)
				if !ok {
					t.Fatalf("watch event %s: %v", ev.Type, ev.Object)
				}
				if pod.Name == "sentinel" {
					sentinelSeen = true
					break
				}
				t.Errorf("pod %s %s while the validator is off", pod.Name, ev.Type)
			}
			if !sentinelSeen {
				t.Fatal("the watch ended before the sentinel pod was seen")
			}
			if _, err := cs.AppsV1().Deployments(ns).Get(ctx, "fn-unchecked", metav1.GetOptions{}); err != nil {
				t.Errorf("deployment: %v", err)
			}
		})
	}
}
