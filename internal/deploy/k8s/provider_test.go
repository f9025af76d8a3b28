package k8s

import (
	"context"
	"errors"
	"github.com/nanofaas/control-plane/internal/kubeclient/kubeclienttest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/nanofaas/control-plane/internal/deploy"
	"github.com/nanofaas/control-plane/internal/failure"
	"github.com/nanofaas/control-plane/internal/function"
)

const testNS = "fns"

var deploymentsGVR = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}

// newFake returns a provider over a fake clientset whose deployments/scale subresource works
// (the fake tracker does not implement subresources).
func newFake(t *testing.T, objs ...runtime.Object) (*Provider, *fake.Clientset) {
	t.Helper()
	client := fake.NewClientset(objs...)
	client.PrependReactor("update", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		ua := a.(k8stesting.UpdateAction)
		if ua.GetSubresource() != "scale" {
			return false, nil, nil
		}
		scale := ua.GetObject().(*autoscalingv1.Scale)
		obj, err := client.Tracker().Get(deploymentsGVR, a.GetNamespace(), scale.Name)
		if err != nil {
			return true, nil, err
		}
		d := obj.(*appsv1.Deployment).DeepCopy()
		d.Spec.Replicas = &scale.Spec.Replicas
		return true, scale, client.Tracker().Update(deploymentsGVR, d, a.GetNamespace())
	})
	p := New(Config{Namespace: testNS, CallbackURL: "http://cb"}, kubeclienttest.FromClientset(client), nil)
	return p, client
}

// verbs renders the recorded actions as "verb resource[/sub]" for order assertions.
func verbs(actions []k8stesting.Action) []string {
	var out []string
	for _, a := range actions {
		if a.GetVerb() == "list" || a.GetVerb() == "watch" {
			continue
		}
		s := a.GetVerb() + " " + a.GetResource().Resource
		if sub := a.GetSubresource(); sub != "" {
			s += "/" + sub
		}
		out = append(out, s)
	}
	return out
}

func getDeployment(t *testing.T, c *fake.Clientset, fn string) *appsv1.Deployment {
	t.Helper()
	d, err := c.AppsV1().Deployments(testNS).Get(context.Background(), ObjectName(fn), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestProvider_IdentityAndSupports(t *testing.T) {
	p, _ := newFake(t)
	local := function.ModeLocal
	pool := &function.Spec{Name: "x", ExecutionMode: &local}
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"backend id", p.BackendID(), "k8s"},
		{"available with a client", p.Available(), true},
		{"supports DEPLOYMENT", p.Supports(resolved("echo")), true},
		{"supports DEPLOYMENT even with an invalid name (rejected at Provision)", p.Supports(resolved("Bad_Name")), true},
		{"does not support LOCAL", p.Supports(pool), false},
		{"does not support nil", p.Supports(nil), false},
		{"namespace", p.Namespace(), testNS},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

func TestProvision_CreatesDeploymentAndServiceAndReturnsServiceURL(t *testing.T) {
	p, client := newFake(t)
	pr, err := p.Provision(context.Background(), resolved("echo"))
	if err != nil {
		t.Fatal(err)
	}
	want := deploy.ProvisionResult{
		EndpointURL: "http://fn-echo.fns.svc.cluster.local:8080/invoke", BackendID: "k8s", EffectiveMode: function.ModeDeployment,
	}
	if !reflect.DeepEqual(pr, want) {
		t.Fatalf("result = %+v, want %+v", pr, want)
	}
	wantActions := []string{"create deployments", "create services", "delete horizontalpodautoscalers"}
	if got := verbs(client.Actions()); !reflect.DeepEqual(got, wantActions) {
		t.Fatalf("actions = %v, want %v", got, wantActions)
	}
	d := getDeployment(t, client, "echo")
	if env := envNames(d.Spec.Template.Spec.Containers[0].Env); !slicesContains(env, "CALLBACK_URL=http://cb") {
		t.Fatalf("env = %v, want CALLBACK_URL from the config", env)
	}
	if _, err := client.CoreV1().Services(testNS).Get(context.Background(), "fn-echo", metav1.GetOptions{}); err != nil {
		t.Fatalf("service: %v", err)
	}
}

func slicesContains(s []string, v string) bool {
	for _, e := range s {
		if e == v {
			return true
		}
	}
	return false
}

func TestProvision_ExistingObjectsAreMergePatchedKeepingUIDs(t *testing.T) {
	oldSpec := withHPA(resolved("echo"), 1, 3)
	oldDep, _ := BuildDeployment(oldSpec, Config{})
	oldDep.Namespace, oldDep.UID = testNS, "dep-uid"
	oldDep.Spec.Replicas = ptr(int32(9)) // scaled since
	svc := BuildService("echo")
	svc.Namespace, svc.UID = testNS, "svc-uid"
	hpa := BuildHPA(oldSpec)
	hpa.Namespace, hpa.UID = testNS, "hpa-uid"
	p, client := newFake(t, oldDep, svc, hpa)

	newSpec := withHPA(resolved("echo"), 2, 5, &function.ScalingMetric{Type: sp("rps"), Target: sp("10")})
	newSpec.Image = "ghcr.io/acme/fn:2"
	if _, err := p.Provision(context.Background(), newSpec); err != nil {
		t.Fatal(err)
	}
	wantActions := []string{
		"create deployments", "patch deployments",
		"create services", "patch services",
		"create horizontalpodautoscalers", "patch horizontalpodautoscalers",
	}
	if got := verbs(client.Actions()); !reflect.DeepEqual(got, wantActions) {
		t.Fatalf("actions = %v, want %v", got, wantActions)
	}
	for _, a := range client.Actions() {
		if pa, ok := a.(k8stesting.PatchAction); ok && pa.GetPatchType() != types.MergePatchType {
			t.Fatalf("patch type = %s, want JSON merge patch", pa.GetPatchType())
		}
	}
	d := getDeployment(t, client, "echo")
	if d.UID != "dep-uid" || *d.Spec.Replicas != 2 || d.Spec.Template.Spec.Containers[0].Image != "ghcr.io/acme/fn:2" {
		t.Fatalf("deployment uid=%s replicas=%d image=%s, want dep-uid, 2 (reset to min), new image",
			d.UID, *d.Spec.Replicas, d.Spec.Template.Spec.Containers[0].Image)
	}
	s, _ := client.CoreV1().Services(testNS).Get(context.Background(), "fn-echo", metav1.GetOptions{})
	if s.UID != "svc-uid" {
		t.Fatalf("service UID = %s, want svc-uid", s.UID)
	}
	h, _ := client.AutoscalingV2().HorizontalPodAutoscalers(testNS).Get(context.Background(), "fn-echo", metav1.GetOptions{})
	if h.UID != "hpa-uid" || *h.Spec.MinReplicas != 2 || h.Spec.MaxReplicas != 5 || len(h.Spec.Metrics) != 1 ||
		h.Spec.Metrics[0].External.Metric.Name != "nanofaas_rps" {
		t.Fatalf("hpa = %+v, want patched in place", h)
	}
}

func TestProvision_StrategyChangeCreatesThenDeletesHPA(t *testing.T) {
	p, client := newFake(t)
	ctx := context.Background()
	if _, err := p.Provision(ctx, withHPA(resolved("echo"), 1, 4, &function.ScalingMetric{Type: sp("cpu"), Target: sp("70")})); err != nil {
		t.Fatal(err)
	}
	h, err := client.AutoscalingV2().HorizontalPodAutoscalers(testNS).Get(ctx, "fn-echo", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("HPA not created: %v", err)
	}
	if h.Spec.Metrics[0].Type != autoscalingv2.ResourceMetricSourceType {
		t.Fatalf("metrics = %+v", h.Spec.Metrics)
	}
	if _, err := p.Provision(ctx, resolved("echo")); err != nil {
		t.Fatal(err)
	}
	if _, err := client.AutoscalingV2().HorizontalPodAutoscalers(testNS).Get(ctx, "fn-echo", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("stale HPA still there: err = %v", err)
	}
}

func TestProvision_InvalidNameIs400WithoutAPICalls(t *testing.T) {
	p, client := newFake(t)
	_, err := p.Provision(context.Background(), resolved("My_Func"))
	if !failure.IsKind(err, failure.InvalidArgument) || !strings.Contains(err.Error(), "'fn-My_Func'") {
		t.Fatalf("err = %v, want InvalidArgument naming fn-My_Func", err)
	}
	if n := len(client.Actions()); n != 0 {
		t.Fatalf("%d API calls for an invalid name", n)
	}
}

func TestProvision_APIErrorIsInternalAndRemovesWhatItCreated(t *testing.T) {
	p, client := newFake(t)
	forbidden := apierrors.NewForbidden(schema.GroupResource{Resource: "services"}, "fn-echo", errors.New("RBAC says no"))
	client.PrependReactor("create", "services", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, forbidden
	})
	_, err := p.Provision(context.Background(), resolved("echo"))
	if !failure.IsKind(err, failure.Internal) {
		t.Fatalf("err = %v, want Internal (500, not degradable)", err)
	}
	for _, want := range []string{"Kubernetes API error", "create Service 'fn-echo'", "namespace 'fns'", "RBAC says no"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("message %q lacks %q", err.Error(), want)
		}
	}
	if !errors.Is(err, forbidden) {
		t.Fatal("the API error is not the cause")
	}
	// Only the Deployment was created by this call; the Service and HPA were never there.
	wantActions := []string{"create deployments", "create services", "delete deployments"}
	if got := verbs(client.Actions()); !reflect.DeepEqual(got, wantActions) {
		t.Fatalf("actions = %v, want %v (cleanup of what the call created)", got, wantActions)
	}
	if _, err := client.AppsV1().Deployments(testNS).Get(context.Background(), "fn-echo", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("deployment left behind: %v", err)
	}
}

func TestProvision_CancelledContextStillCleansUp(t *testing.T) {
	p, client := newFake(t)
	ctx, cancel := context.WithCancel(context.Background())
	client.PrependReactor("create", "services", func(k8stesting.Action) (bool, runtime.Object, error) {
		cancel()
		return true, nil, context.Canceled
	})
	_, err := p.Provision(ctx, resolved("echo"))
	if !errors.Is(err, context.Canceled) || !failure.IsKind(err, failure.Internal) {
		t.Fatalf("err = %v, want Internal wrapping context.Canceled", err)
	}
	if _, err := client.AppsV1().Deployments(testNS).Get(context.Background(), "fn-echo", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("deployment left behind: %v", err)
	}
}

// A re-provisioning that fails (here at the HPA) removes only what it created itself: the
// Deployment that survived from an earlier registration stays, patched, with its UID.
func TestProvision_FailedReprovisionKeepsPreExistingObjects(t *testing.T) {
	oldDep, _ := BuildDeployment(resolved("echo"), Config{})
	oldDep.Namespace, oldDep.UID = testNS, "dep-uid"
	p, client := newFake(t, oldDep)
	invalid := apierrors.NewInvalid(schema.GroupKind{Group: "autoscaling", Kind: "HorizontalPodAutoscaler"}, "fn-echo", nil)
	client.PrependReactor("create", "horizontalpodautoscalers", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, invalid
	})
	newSpec := withHPA(resolved("echo"), 0, 3)
	newSpec.Image = "ghcr.io/acme/fn:2"
	_, err := p.Provision(context.Background(), newSpec)
	if !failure.IsKind(err, failure.Internal) || !apierrors.IsInvalid(err) {
		t.Fatalf("err = %v, want Internal wrapping the Invalid status", err)
	}
	wantActions := []string{"create deployments", "patch deployments", "create services",
		"create horizontalpodautoscalers", "delete services"}
	if got := verbs(client.Actions()); !reflect.DeepEqual(got, wantActions) {
		t.Fatalf("actions = %v, want %v (only the Service this call created is removed)", got, wantActions)
	}
	d := getDeployment(t, client, "echo")
	if d.UID != "dep-uid" || d.Spec.Template.Spec.Containers[0].Image != "ghcr.io/acme/fn:2" {
		t.Fatalf("deployment uid=%s image=%s, want the pre-existing one, patched", d.UID, d.Spec.Template.Spec.Containers[0].Image)
	}
	if _, err := client.CoreV1().Services(testNS).Get(context.Background(), "fn-echo", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("service created by the failed call left behind: %v", err)
	}
}

// A failure after every object was found and patched deletes nothing.
func TestProvision_FailedPatchOfExistingObjectsDeletesNothing(t *testing.T) {
	oldSpec := resolved("echo")
	oldDep, _ := BuildDeployment(oldSpec, Config{})
	oldDep.Namespace = testNS
	svc := BuildService("echo")
	svc.Namespace = testNS
	p, client := newFake(t, oldDep, svc)
	client.PrependReactor("patch", "services", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewServiceUnavailable("apiserver overloaded")
	})
	_, err := p.Provision(context.Background(), oldSpec)
	if !failure.IsKind(err, failure.Internal) || !strings.Contains(err.Error(), "patch Service 'fn-echo'") {
		t.Fatalf("err = %v, want Internal naming the Service patch", err)
	}
	for _, a := range verbs(client.Actions()) {
		if strings.HasPrefix(a, "delete") {
			t.Fatalf("actions = %v: deleted a pre-existing object", verbs(client.Actions()))
		}
	}
	getDeployment(t, client, "echo")
	if _, err := client.CoreV1().Services(testNS).Get(context.Background(), "fn-echo", metav1.GetOptions{}); err != nil {
		t.Fatalf("service: %v", err)
	}
}

func TestDeprovision_DeletesHPAServiceDeploymentInOrderIgnoringMissing(t *testing.T) {
	p, client := newFake(t)
	ctx := context.Background()
	if _, err := p.Provision(ctx, withHPA(resolved("echo"), 1, 2)); err != nil {
		t.Fatal(err)
	}
	client.ClearActions()
	if err := p.Deprovision(ctx, "echo"); err != nil {
		t.Fatal(err)
	}
	want := []string{"delete horizontalpodautoscalers", "delete services", "delete deployments"}
	if got := verbs(client.Actions()); !reflect.DeepEqual(got, want) {
		t.Fatalf("actions = %v, want %v", got, want)
	}
	for _, a := range client.Actions() {
		if a.(k8stesting.DeleteAction).GetName() != "fn-echo" {
			t.Fatalf("deleted %s", a.(k8stesting.DeleteAction).GetName())
		}
	}
	// Everything is gone now: a second removal succeeds.
	if err := p.Deprovision(ctx, "echo"); err != nil {
		t.Fatalf("deprovision of missing objects: %v", err)
	}
}

func TestDeprovision_APIErrorIsInternal(t *testing.T) {
	p, client := newFake(t)
	client.PrependReactor("delete", "services", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewInternalError(errors.New("etcd down"))
	})
	err := p.Deprovision(context.Background(), "echo")
	if !failure.IsKind(err, failure.Internal) || !strings.Contains(err.Error(), "delete Service 'fn-echo'") {
		t.Fatalf("err = %v", err)
	}
}

func TestSetReplicas_UsesScaleSubresource(t *testing.T) {
	p, client := newFake(t)
	ctx := context.Background()
	if _, err := p.Provision(ctx, resolved("echo")); err != nil {
		t.Fatal(err)
	}
	client.ClearActions()
	if err := p.SetReplicas(ctx, "echo", 4); err != nil {
		t.Fatal(err)
	}
	if got := verbs(client.Actions()); !reflect.DeepEqual(got, []string{"update deployments/scale"}) {
		t.Fatalf("actions = %v", got)
	}
	scale := client.Actions()[0].(k8stesting.UpdateAction).GetObject().(*autoscalingv1.Scale)
	if scale.Name != "fn-echo" || scale.Spec.Replicas != 4 || scale.ResourceVersion != "" {
		t.Fatalf("scale = %+v, want fn-echo, 4, no resourceVersion", scale)
	}
	if d := getDeployment(t, client, "echo"); *d.Spec.Replicas != 4 {
		t.Fatalf("replicas = %d", *d.Spec.Replicas)
	}
	if err := p.SetReplicas(ctx, "echo", 0); err != nil {
		t.Fatal(err)
	}
	if d := getDeployment(t, client, "echo"); *d.Spec.Replicas != 0 {
		t.Fatalf("replicas = %d, want 0", *d.Spec.Replicas)
	}
}

func TestSetReplicas_Errors(t *testing.T) {
	p, _ := newFake(t)
	// The reference does not translate API errors, a missing Deployment included: 500.
	err := p.SetReplicas(context.Background(), "ghost", 1)
	if !failure.IsKind(err, failure.Internal) || !apierrors.IsNotFound(err) ||
		!strings.Contains(err.Error(), "scale Deployment 'fn-ghost'") {
		t.Fatalf("missing deployment: err = %v, want Internal wrapping NotFound", err)
	}
	p2, client := newFake(t)
	client.PrependReactor("update", "deployments", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewConflict(schema.GroupResource{Group: "apps", Resource: "deployments"}, "fn-echo", errors.New("busy"))
	})
	if err := p2.SetReplicas(context.Background(), "echo", 2); !failure.IsKind(err, failure.Internal) || !apierrors.IsConflict(err) {
		t.Fatalf("API conflict: err = %v, want Internal wrapping it", err)
	}
	if err := p.SetReplicas(context.Background(), "echo", -1); !failure.IsKind(err, failure.InvalidArgument) {
		t.Fatalf("negative replicas: err = %v", err)
	}
}

func TestReadyReplicas_FallsBackToGETBeforeTheCacheRuns(t *testing.T) {
	dep, _ := BuildDeployment(resolved("echo"), Config{})
	dep.Namespace = testNS
	dep.Status.ReadyReplicas = 3
	p, client := newFake(t, dep)
	ctx := context.Background()
	tests := []struct {
		fn   string
		want int
	}{{"echo", 3}, {"ghost", 0}}
	for _, tc := range tests {
		got, err := p.ReadyReplicas(ctx, tc.fn)
		if err != nil || got != tc.want {
			t.Fatalf("ReadyReplicas(%s) = %d, %v; want %d", tc.fn, got, err, tc.want)
		}
	}
	if got := verbs(client.Actions()); !reflect.DeepEqual(got, []string{"get deployments", "get deployments"}) {
		t.Fatalf("actions = %v, want two GETs", got)
	}
}

func TestReadyReplicas_ServedFromInformerCache(t *testing.T) {
	dep, _ := BuildDeployment(resolved("echo"), Config{})
	dep.Namespace = testNS
	dep.Status.ReadyReplicas = 2
	other := dep.DeepCopy() // same name, another namespace: out of scope
	other.Namespace = "elsewhere"
	other.Status.ReadyReplicas = 7
	p, client := newFake(t, dep, other)

	// The fake has no resourceVersions, so an update made between the informer's list and its
	// watch would be lost: learn when the watch is in place.
	watching := make(chan struct{})
	var once sync.Once
	client.PrependWatchReactor("deployments", func(a k8stesting.Action) (bool, watch.Interface, error) {
		w, err := client.Tracker().Watch(deploymentsGVR, a.GetNamespace())
		once.Do(func() { close(watching) })
		return true, w, err
	})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v", err)
		}
	}()
	syncCtx, syncCancel := context.WithTimeout(ctx, 10*time.Second)
	defer syncCancel()
	if !p.WaitForCacheSync(syncCtx) {
		t.Fatal("cache did not sync")
	}
	<-watching

	for _, a := range client.Actions() {
		if a.GetVerb() == "list" && a.GetNamespace() != testNS {
			t.Fatalf("informer lists namespace %q", a.GetNamespace())
		}
		if la, ok := a.(k8stesting.ListAction); ok {
			if sel := la.GetListRestrictions().Labels.String(); sel != "app=nanofaas" {
				t.Fatalf("informer label selector = %q", sel)
			}
		}
	}
	client.ClearActions()
	if got, err := p.ReadyReplicas(ctx, "echo"); err != nil || got != 2 {
		t.Fatalf("ReadyReplicas = %d, %v; want 2", got, err)
	}
	if got, err := p.ReadyReplicas(ctx, "ghost"); err != nil || got != 0 {
		t.Fatalf("ReadyReplicas(ghost) = %d, %v; want 0", got, err)
	}
	if n := len(client.Actions()); n != 0 {
		t.Fatalf("ReadyReplicas made %d API calls after the cache synced: %v", n, verbs(client.Actions()))
	}

	upd := dep.DeepCopy()
	upd.Status.ReadyReplicas = 5
	if _, err := client.AppsV1().Deployments(testNS).UpdateStatus(ctx, upd, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := p.ReadyReplicas(ctx, "echo")
		if err == nil && got == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cache never saw readyReplicas=5 (last %d, %v)", got, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRun_SecondCallFails(t *testing.T) {
	p, _ := newFake(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	if !p.WaitForCacheSync(ctx) {
		t.Fatal("no sync")
	}
	if err := p.Run(ctx); err == nil || !strings.Contains(err.Error(), "more than once") {
		t.Fatalf("second Run = %v", err)
	}
	cancel()
	<-done
}

func TestUnavailableProvider_ExistsButRefusesWork(t *testing.T) {
	p := New(Config{}, nil, nil)
	if p.Available() {
		t.Fatal("available without a client")
	}
	if p.Namespace() != "default" {
		t.Fatalf("namespace = %q", p.Namespace())
	}
	ctx := context.Background()
	_, perr := p.Provision(ctx, resolved("echo"))
	_, rerr := p.ReadyReplicas(ctx, "echo")
	for name, err := range map[string]error{
		"Provision": perr, "Deprovision": p.Deprovision(ctx, "echo"),
		"SetReplicas": p.SetReplicas(ctx, "echo", 1), "ReadyReplicas": rerr,
	} {
		if !failure.IsKind(err, failure.Unavailable) || !strings.Contains(err.Error(), "not available") {
			t.Errorf("%s: err = %v, want Unavailable", name, err)
		}
	}
	if p.WaitForCacheSync(ctx) {
		t.Fatal("an unavailable provider reports a synced cache")
	}
	runCtx, cancel := context.WithCancel(ctx)
	cancel()
	if err := p.Run(runCtx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
}

// BenchmarkReadyReplicas_Cached measures the autoscaler's per-tick read once the cache has synced.
func BenchmarkReadyReplicas_Cached(b *testing.B) {
	dep, _ := BuildDeployment(resolved("echo"), Config{})
	dep.Namespace = testNS
	dep.Status.ReadyReplicas = 2
	p := New(Config{Namespace: testNS}, kubeclienttest.FromClientset(fake.NewClientset(dep)), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()
	if !p.WaitForCacheSync(ctx) {
		b.Fatal("no sync")
	}
	b.ReportAllocs()
	for b.Loop() {
		if n, err := p.ReadyReplicas(ctx, "echo"); err != nil || n != 2 {
			b.Fatal(n, err)
		}
	}
}
