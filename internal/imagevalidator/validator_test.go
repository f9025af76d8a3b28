package imagevalidator

import (
	"context"
	"errors"
	"github.com/nanofaas/control-plane/internal/kubeclient/kubeclienttest"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/nanofaas/control-plane/internal/failure"
	"github.com/nanofaas/control-plane/internal/function"
)

// fakeClock advances only when the validator waits, so timeouts take no real time.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Wait(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.waits = append(c.waits, d)
	return nil
}

func deploymentSpec(name, image string, secrets ...string) *function.Spec {
	mode := function.ModeDeployment
	return &function.Spec{Name: name, Image: image, ExecutionMode: &mode, ImagePullSecrets: secrets}
}

func waiting(reason, message string) corev1.PodStatus {
	return corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{
		Name: ContainerName, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}},
	}}}
}

// harness is a validator over a fake clientset whose pod GETs answer with statuses in turn
// (the last one repeats).
type harness struct {
	v      *Validator
	client *fake.Clientset
	clock  *fakeClock
}

func newHarness(t *testing.T, statuses ...corev1.PodStatus) *harness {
	t.Helper()
	client := fake.NewClientset()
	var mu sync.Mutex
	i := 0
	client.PrependReactor("get", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if len(statuses) == 0 {
			return false, nil, nil
		}
		obj, err := client.Tracker().Get(corev1.SchemeGroupVersion.WithResource("pods"), a.GetNamespace(), a.(k8stesting.GetAction).GetName())
		if err != nil {
			return true, nil, err
		}
		mu.Lock()
		st := statuses[min(i, len(statuses)-1)]
		i++
		mu.Unlock()
		pod := obj.(*corev1.Pod).DeepCopy()
		pod.Status = st
		return true, pod, nil
	})
	clock := &fakeClock{now: time.Unix(1000, 0)}
	v := New(Config{Namespace: "fns", Now: clock.Now, Wait: clock.Wait, Nanotime: func() int64 { return 36*36 + 1 }}, kubeclienttest.FromClientset(client), nil)
	return &harness{v: v, client: client, clock: clock}
}

func (h *harness) podsLeft(t *testing.T) int {
	t.Helper()
	list, err := h.client.CoreV1().Pods("fns").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return len(list.Items)
}

func wantImageError(t *testing.T, err error, code string, status int, message string) {
	t.Helper()
	var iv *failure.ImageValidation
	if !errors.As(err, &iv) {
		t.Fatalf("err = %v (%T), want *failure.ImageValidation", err, err)
	}
	if iv.Code != code || iv.Status != status || iv.Message != message {
		t.Fatalf("got %s %d %q, want %s %d %q", iv.Code, iv.Status, iv.Message, code, status, message)
	}
}

func TestValidate_Outcomes(t *testing.T) {
	const img = "ghcr.io/acme/fn:1"
	tests := []struct {
		name       string
		statuses   []corev1.PodStatus
		wantCode   string // "" = success
		wantStatus int
		wantMsg    string
		wantPolls  int
	}{
		{"running", []corev1.PodStatus{{Phase: corev1.PodRunning}}, "", 0, "", 1},
		{"pending then running", []corev1.PodStatus{waiting("ContainerCreating", ""), {Phase: corev1.PodRunning}}, "", 0, "", 2},
		{"manifest unknown", []corev1.PodStatus{waiting("ErrImagePull", "rpc error: manifest unknown: manifest unknown")},
			"IMAGE_NOT_FOUND", 422, "Image not found in registry: " + img, 1},
		{"invalid image name", []corev1.PodStatus{waiting("InvalidImageName", "couldn't parse image")},
			"IMAGE_NOT_FOUND", 422, "Image not found in registry: " + img, 1},
		{"pull access denied", []corev1.PodStatus{waiting("ErrImagePull", "pull access denied, repository does not exist or may require authorization")},
			"IMAGE_PULL_AUTH_REQUIRED", 424, "Image pull authentication failed for: " + img, 1},
		{"unauthorized", []corev1.PodStatus{waiting("ImagePullBackOff", "401 Unauthorized")},
			"IMAGE_PULL_AUTH_REQUIRED", 424, "Image pull authentication failed for: " + img, 1},
		{"back-off for another reason", []corev1.PodStatus{waiting("ContainerCreating", ""), waiting("ImagePullBackOff", "Back-off pulling image")},
			"IMAGE_REGISTRY_UNAVAILABLE", 503, "Unable to validate image in registry: " + img + " (ImagePullBackOff: Back-off pulling image)", 2},
		{"never pulled → timeout after 20 s of 500 ms polls", []corev1.PodStatus{waiting("ContainerCreating", "")},
			"IMAGE_REGISTRY_UNAVAILABLE", 503, "Unable to validate image in registry: " + img + " (Timed out waiting for image pull)", 40},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.statuses...)
			err := h.v.Validate(context.Background(), deploymentSpec("echo", img))
			if tc.wantCode == "" {
				if err != nil {
					t.Fatalf("err = %v, want success", err)
				}
			} else {
				wantImageError(t, err, tc.wantCode, tc.wantStatus, tc.wantMsg)
			}
			gets := 0
			for _, a := range h.client.Actions() {
				if a.GetVerb() == "get" {
					gets++
				}
			}
			if gets != tc.wantPolls {
				t.Fatalf("polled %d times, want %d", gets, tc.wantPolls)
			}
			for _, w := range h.clock.waits {
				if w != 500*time.Millisecond {
					t.Fatalf("waited %v between polls, want 500ms", w)
				}
			}
			if n := h.podsLeft(t); n != 0 {
				t.Fatalf("%d probe pods left", n)
			}
		})
	}
}

func TestValidate_CreatesTheProbePodExactly(t *testing.T) {
	h := newHarness(t, corev1.PodStatus{Phase: corev1.PodSucceeded})
	if err := h.v.Validate(context.Background(), deploymentSpec("Word.Stats", "img:1", " regcred ", "", "  ")); err == nil {
		t.Fatal("an uppercase name must be rejected before a pod is created")
	}
	if len(h.client.Actions()) != 0 {
		t.Fatalf("actions for an invalid name: %v", h.client.Actions())
	}

	if err := h.v.Validate(context.Background(), deploymentSpec("word-stats", "img:1", " regcred ", "", "  ")); err != nil {
		t.Fatal(err)
	}
	acts := h.client.Actions()
	if len(acts) != 3 || acts[0].GetVerb() != "create" || acts[1].GetVerb() != "get" || acts[2].GetVerb() != "delete" {
		t.Fatalf("actions = %v, want create, get, delete", acts)
	}
	create := acts[0].(k8stesting.CreateAction)
	if create.GetNamespace() != "fns" {
		t.Fatalf("namespace = %q", create.GetNamespace())
	}
	pod := create.GetObject().(*corev1.Pod)
	checks := []struct {
		field     string
		got, want any
	}{
		{"name", pod.Name, "imgval-word-stats-101"},
		{"labels", pod.Labels, map[string]string{"app": "nanofaas", "nanofaas.io/purpose": "image-validation", "nanofaas.io/function": "word-stats"}},
		{"containers", len(pod.Spec.Containers), 1},
		{"container name", pod.Spec.Containers[0].Name, "validate"},
		{"image", pod.Spec.Containers[0].Image, "img:1"},
		{"pull policy", pod.Spec.Containers[0].ImagePullPolicy, corev1.PullAlways},
		{"no command", pod.Spec.Containers[0].Command, []string(nil)},
		{"no resources", pod.Spec.Containers[0].Resources, corev1.ResourceRequirements{}},
		{"pull secrets", pod.Spec.ImagePullSecrets, []corev1.LocalObjectReference{{Name: "regcred"}}},
		{"restart policy", pod.Spec.RestartPolicy, corev1.RestartPolicyNever},
		{"grace", *pod.Spec.TerminationGracePeriodSeconds, int64(0)},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.field, c.got, c.want)
		}
	}
	del := acts[2].(k8stesting.DeleteAction)
	if del.GetName() != pod.Name || del.GetDeleteOptions().GracePeriodSeconds == nil || *del.GetDeleteOptions().GracePeriodSeconds != 0 {
		t.Fatalf("delete = %s %+v", del.GetName(), del.GetDeleteOptions())
	}
}

func TestValidate_SkipsNonDeploymentSpecs(t *testing.T) {
	h := newHarness(t)
	pool, local := function.ModePool, function.ModeLocal
	for _, s := range []*function.Spec{
		nil,
		{Name: "p", Image: "i", ExecutionMode: &pool},
		{Name: "l", Image: "i", ExecutionMode: &local},
		{Name: "unresolved", Image: "i"},
	} {
		if err := h.v.Validate(context.Background(), s); err != nil {
			t.Fatalf("Validate(%+v) = %v", s, err)
		}
	}
	if n := len(h.client.Actions()); n != 0 {
		t.Fatalf("%d API calls for non-DEPLOYMENT specs", n)
	}
}

func TestValidate_InvalidNameIs400(t *testing.T) {
	h := newHarness(t)
	err := h.v.Validate(context.Background(), deploymentSpec(strings.Repeat("a", 61), "i"))
	if !failure.IsKind(err, failure.InvalidArgument) {
		t.Fatalf("err = %v, want InvalidArgument", err)
	}
}

func TestValidate_APIFailuresAre503WithDetails(t *testing.T) {
	forbidden := apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", errors.New("no RBAC"))
	tests := []struct {
		name     string
		verb     string
		wantText string
		wantLeft int
	}{
		{"create forbidden", "create", "Kubernetes API error creating validation pod: pods is forbidden", 0},
		{"get fails", "get", "Kubernetes API error reading validation pod: pods is forbidden", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.client.PrependReactor(tc.verb, "pods", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, forbidden })
			err := h.v.Validate(context.Background(), deploymentSpec("echo", "img"))
			var iv *failure.ImageValidation
			if !errors.As(err, &iv) || iv.Code != "IMAGE_REGISTRY_UNAVAILABLE" || iv.Status != 503 || !strings.Contains(iv.Message, tc.wantText) {
				t.Fatalf("err = %v, want 503 IMAGE_REGISTRY_UNAVAILABLE with %q", err, tc.wantText)
			}
			if n := h.podsLeft(t); n != tc.wantLeft {
				t.Fatalf("%d pods left", n)
			}
		})
	}
}

func TestValidate_PodNotYetVisibleKeepsPolling(t *testing.T) {
	h := newHarness(t, corev1.PodStatus{Phase: corev1.PodRunning})
	first := true
	h.client.PrependReactor("get", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		if first {
			first = false
			return true, nil, apierrors.NewNotFound(corev1.Resource("pods"), "x")
		}
		return false, nil, nil
	})
	if err := h.v.Validate(context.Background(), deploymentSpec("echo", "img")); err != nil {
		t.Fatal(err)
	}
	if len(h.clock.waits) != 1 {
		t.Fatalf("waits = %v, want one poll interval", h.clock.waits)
	}
}

func TestValidate_CancelledIsInterruptedAndPodStillDeleted(t *testing.T) {
	h := newHarness(t, waiting("ContainerCreating", ""))
	ctx, cancel := context.WithCancel(context.Background())
	h.client.PrependReactor("get", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		cancel()
		return false, nil, nil
	})
	err := h.v.Validate(ctx, deploymentSpec("echo", "img"))
	wantImageError(t, err, "IMAGE_REGISTRY_UNAVAILABLE", 503, "Unable to validate image in registry: img (Interrupted while validating image)")
	if n := h.podsLeft(t); n != 0 {
		t.Fatalf("%d pods left after cancellation", n)
	}
}

func TestValidate_WithoutClientIsRegistryUnavailable(t *testing.T) {
	v := New(Config{}, nil, nil)
	err := v.Validate(context.Background(), deploymentSpec("echo", "img"))
	wantImageError(t, err, "IMAGE_REGISTRY_UNAVAILABLE", 503, "Unable to validate image in registry: img (Kubernetes client unavailable)")
}

func TestValidate_RealTimerHonoursShortIntervals(t *testing.T) {
	client := fake.NewClientset()
	client.PrependReactor("get", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: a.(k8stesting.GetAction).GetName()}, Status: waiting("ContainerCreating", "")}, nil
	})
	v := New(Config{PollInterval: time.Millisecond, Timeout: 20 * time.Millisecond}, kubeclienttest.FromClientset(client), nil)
	start := time.Now()
	err := v.Validate(context.Background(), deploymentSpec("echo", "img"))
	wantImageError(t, err, "IMAGE_REGISTRY_UNAVAILABLE", 503, "Unable to validate image in registry: img (Timed out waiting for image pull)")
	if d := time.Since(start); d < 20*time.Millisecond || d > 5*time.Second {
		t.Fatalf("timed out after %v", d)
	}
}

func TestClassify(t *testing.T) {
	running := corev1.ContainerStatus{State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}
	terminated := corev1.ContainerStatus{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1}}}
	tests := []struct {
		name   string
		status corev1.PodStatus
		want   Outcome
	}{
		{"empty status", corev1.PodStatus{}, Outcome{Verdict: Pending}},
		{"phase Running", corev1.PodStatus{Phase: corev1.PodRunning}, Outcome{Verdict: Pulled}},
		{"phase succeeded, any case", corev1.PodStatus{Phase: "succeeded"}, Outcome{Verdict: Pulled}},
		{"failed phase but container terminated", corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: []corev1.ContainerStatus{terminated}}, Outcome{Verdict: Pulled}},
		{"container running beats another's pull error", corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{
			waiting("ErrImagePull", "manifest unknown").ContainerStatuses[0], running}}, Outcome{Verdict: Pulled}},
		{"not found", waiting("ErrImagePull", "failed to resolve reference: NOT FOUND"), Outcome{Verdict: NotFound}},
		{"name unknown", waiting("ErrImagePull", "name unknown: repository name not known to registry"), Outcome{Verdict: NotFound}},
		{"InvalidImageName", waiting("InvalidImageName", ""), Outcome{Verdict: NotFound}},
		{"not found wins over denied", waiting("ErrImagePull", "denied: not found"), Outcome{Verdict: NotFound}},
		{"authentication required", waiting("ErrImagePull", "authentication required"), Outcome{Verdict: AuthFailed}},
		{"denied under any reason", waiting("CreateContainerError", "requested access to the resource is denied"), Outcome{Verdict: AuthFailed}},
		{"ErrImagePull other", waiting("ErrImagePull", "i/o timeout"), Outcome{Verdict: Unavailable, Detail: "ErrImagePull: i/o timeout"}},
		{"ImagePullBackOff without message", waiting("ImagePullBackOff", ""), Outcome{Verdict: Unavailable, Detail: "ImagePullBackOff"}},
		{"other waiting reason keeps polling", waiting("ContainerCreating", "pulling"), Outcome{Verdict: Pending}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Classify(&corev1.Pod{Status: tc.status}); got != tc.want {
				t.Fatalf("Classify = %+v (%s), want %+v (%s)", got, got.Verdict, tc.want, tc.want.Verdict)
			}
		})
	}
}

func TestPodName(t *testing.T) {
	label := regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	tests := []struct {
		name     string
		fn       string
		nanotime int64
		want     string
	}{
		{"plain", "echo", 35, "imgval-echo-z"},
		{"lower-cased, symbols collapsed, trimmed", "--My__Func.v2--", 36, "imgval-my-func-v2-10"},
		{"nothing left → fn", "___", 1, "imgval-fn-1"},
		{"negative clock still a label", "echo", -1, "imgval-echo-3w5e11264sgsf"},
		{"truncated to fit a 12-char suffix", strings.Repeat("a", 40) + "-" + strings.Repeat("b", 30), 1 << 62,
			"imgval-" + strings.Repeat("a", 40) + "-bb-z1ci99jj7474"},
		{"trailing dash trimmed after truncation", strings.Repeat("a", 42) + "-" + strings.Repeat("b", 30), 1 << 62,
			"imgval-" + strings.Repeat("a", 42) + "-z1ci99jj7474"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := PodName(tc.fn, tc.nanotime)
			if got != tc.want {
				t.Fatalf("PodName = %q, want %q", got, tc.want)
			}
			if len(got) > 63 || !label.MatchString(got) {
				t.Fatalf("%q is not a DNS label", got)
			}
		})
	}
}

func TestNamespace_Fallbacks(t *testing.T) {
	tests := []struct{ configured, client, want string }{
		{"fns", "nanofaas", "fns"},
		{"  ", "nanofaas", "nanofaas"},
		{"", "", "default"},
	}
	for _, tc := range tests {
		if got := Namespace(tc.configured, tc.client); got != tc.want {
			t.Errorf("Namespace(%q, %q) = %q, want %q", tc.configured, tc.client, got, tc.want)
		}
	}
}
