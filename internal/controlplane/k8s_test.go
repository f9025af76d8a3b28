//go:build !nok8s

package controlplane

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestApp_K8sBackend_RegisterScaleAndDeleteAgainstARealAPIServer runs the whole control plane
// with KUBECONFIG pointing at a real kube-apiserver: a DEPLOYMENT function becomes a Deployment
// and a Service, PUT replicas goes through the scale subresource, and DELETE removes them.
func TestApp_K8sBackend_RegisterScaleAndDeleteAgainstARealAPIServer(t *testing.T) {
	cluster := kube.Cluster(t)
	ns := cluster.Namespace(t)
	t.Setenv("KUBECONFIG", cluster.Kubeconfig)
	api, _ := startApp(t,
		"--nanofaas.deployment.default-backend=k8s",
		"--nanofaas.k8s.namespace="+ns,
		"--nanofaas.image-validator.enabled=false",
	)

	code, body := call(t, "POST", api+"/v1/functions", `{"name":"hello","image":"ghcr.io/example/hello:1"}`)
	if code != 201 {
		t.Fatalf("register = %d %s", code, body)
	}
	for _, want := range []string{
		`"endpointUrl":"http://fn-hello.` + ns + `.svc.cluster.local:8080/invoke"`,
		`"requestedExecutionMode":"DEPLOYMENT"`, `"effectiveExecutionMode":"DEPLOYMENT"`, `"deploymentBackend":"k8s"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("register body lacks %s: %s", want, body)
		}
	}
	ctx := context.Background()
	dep, err := cluster.Clientset.AppsV1().Deployments(ns).Get(ctx, "fn-hello", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("deployment: %v", err)
	}
	if got := dep.Spec.Template.Spec.Containers[0].Image; got != "ghcr.io/example/hello:1" {
		t.Errorf("image = %s", got)
	}
	if _, err := cluster.Clientset.CoreV1().Services(ns).Get(ctx, "fn-hello", metav1.GetOptions{}); err != nil {
		t.Errorf("service: %v", err)
	}

	if code, body = call(t, "PUT", api+"/v1/functions/hello/replicas", `{"replicas":4}`); code != 200 || body != `{"function":"hello","replicas":4}` {
		t.Fatalf("replicas = %d %s", code, body)
	}
	scale, err := cluster.Clientset.AppsV1().Deployments(ns).GetScale(ctx, "fn-hello", metav1.GetOptions{})
	if err != nil || scale.Spec.Replicas != 4 {
		t.Errorf("scale = %+v, %v; want 4 replicas", scale, err)
	}

	// D10: a name that cannot form fn-<name> is refused with 400 before anything is created.
	code, body = call(t, "POST", api+"/v1/functions", `{"name":"Upper_Case","image":"img"}`)
	if code != 400 {
		t.Errorf("invalid k8s name = %d %s, want 400", code, body)
	}

	if code, _ = call(t, "DELETE", api+"/v1/functions/hello", ""); code != 204 {
		t.Fatalf("delete = %d", code)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := cluster.Clientset.AppsV1().Deployments(ns).Get(ctx, "fn-hello", metav1.GetOptions{})
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("deployment still present after DELETE")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
