package imagevalidator

import (
	"context"
	"errors"
	"github.com/nanofaas/control-plane/internal/kubeclient"
	"github.com/nanofaas/control-plane/internal/kubetest"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/nanofaas/control-plane/internal/failure"
)

// kubelet plays the kubelet for probe pods of function fn: once the validator's pod appears, it
// writes status through the status subresource. It stops when ctx ends.
func kubelet(ctx context.Context, t *testing.T, client kubernetes.Interface, ns, fn string, status corev1.PodStatus) <-chan string {
	named := make(chan string, 1)
	go func() {
		defer close(named)
		for ctx.Err() == nil {
			pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: LabelFunction + "=" + fn})
			if err == nil && len(pods.Items) == 1 {
				pod := pods.Items[0]
				pod.Status = status
				if _, err := client.CoreV1().Pods(ns).UpdateStatus(ctx, &pod, metav1.UpdateOptions{}); err != nil {
					t.Errorf("update pod status: %v", err)
				}
				named <- pod.Name
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return named
}

func TestIntegration_ValidateOutcomesAgainstRealAPIServer(t *testing.T) {
	c := kube.Cluster(t)
	const img = "registry.example/acme/fn:1"
	tests := []struct {
		name     string
		status   corev1.PodStatus
		wantCode string // "" = accepted
		wantHTTP int
		wantMsg  string
	}{
		{"running", corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{
			Name: ContainerName, Image: img, Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
		}}}, "", 0, ""},
		{"manifest unknown", waiting("ErrImagePull", "failed to pull: manifest unknown"),
			"IMAGE_NOT_FOUND", 422, "Image not found in registry: " + img},
		{"unauthorized", waiting("ErrImagePull", "failed to authorize: 401 Unauthorized"),
			"IMAGE_PULL_AUTH_REQUIRED", 424, "Image pull authentication failed for: " + img},
		{"back-off", waiting("ImagePullBackOff", "Back-off pulling image"),
			"IMAGE_REGISTRY_UNAVAILABLE", 503, "Unable to validate image in registry: " + img + " (ImagePullBackOff: Back-off pulling image)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ns := c.Namespace(t)
			for i := range tc.status.ContainerStatuses {
				tc.status.ContainerStatuses[i].Image = img
			}
			v := New(Config{Namespace: ns, PollInterval: 10 * time.Millisecond, Timeout: 20 * time.Second}, productionClient(t, c), nil)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			named := kubelet(ctx, t, c.Clientset, ns, "echo", tc.status)

			err := v.Validate(ctx, deploymentSpec("echo", img, "regcred"))
			if tc.wantCode == "" {
				if err != nil {
					t.Fatalf("err = %v, want accepted", err)
				}
			} else {
				wantImageError(t, err, tc.wantCode, tc.wantHTTP, tc.wantMsg)
			}
			cancel()
			if name, ok := <-named; !ok || name == "" {
				t.Fatal("the validator's pod was never seen")
			}
			pods, lerr := c.Clientset.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{})
			if lerr != nil {
				t.Fatal(lerr)
			}
			if len(pods.Items) != 0 {
				t.Fatalf("probe pod not deleted: %s", pods.Items[0].Name)
			}
		})
	}
}

func TestIntegration_ValidateTimesOutAndDeletesPod(t *testing.T) {
	c := kube.Cluster(t)
	ns := c.Namespace(t)
	v := New(Config{Namespace: ns, PollInterval: 10 * time.Millisecond, Timeout: 200 * time.Millisecond}, productionClient(t, c), nil)
	err := v.Validate(t.Context(), deploymentSpec("echo", "img:1"))
	wantImageError(t, err, "IMAGE_REGISTRY_UNAVAILABLE", 503, "Unable to validate image in registry: img:1 (Timed out waiting for image pull)")
	pods, lerr := c.Clientset.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{})
	if lerr != nil || len(pods.Items) != 0 {
		t.Fatalf("pods left = %v, %v", pods, lerr)
	}
}

func TestIntegration_APIErrorIs503NotInternalError(t *testing.T) {
	c := kube.Cluster(t)
	v := New(Config{Namespace: "no-such-namespace"}, productionClient(t, c), nil)
	err := v.Validate(t.Context(), deploymentSpec("echo", "img:1"))
	var iv *failure.ImageValidation
	if !errors.As(err, &iv) || iv.Status != 503 || iv.Code != "IMAGE_REGISTRY_UNAVAILABLE" {
		t.Fatalf("err = %v, want 503 IMAGE_REGISTRY_UNAVAILABLE", err)
	}
	t.Log(iv.Message)
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
