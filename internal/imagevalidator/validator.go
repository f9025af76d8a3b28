// Package imagevalidator owns the image-validator module (spec-modules §5, DECISIONS.md D23):
// before the k8s backend provisions a function, it proves the cluster can pull the function's
// image by creating a throw-away pod and watching its image-pull status, and turns the outcome
// into the 422/424/503 image-validation errors of the core.
package imagevalidator

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nanofaas/control-plane/internal/deploy"
	"github.com/nanofaas/control-plane/internal/deploy/k8s"
	"github.com/nanofaas/control-plane/internal/failure"
	"github.com/nanofaas/control-plane/internal/function"
	"github.com/nanofaas/control-plane/internal/kubeclient"
	"github.com/nanofaas/control-plane/internal/registry"
)

// Reference timings and shape constants.
const (
	DefaultPollInterval = 500 * time.Millisecond
	DefaultTimeout      = 20 * time.Second
	// ContainerName is the probe pod's single container.
	ContainerName = "validate"
	// LabelPurpose / PurposeValue / LabelFunction mark probe pods.
	LabelPurpose  = "nanofaas.io/purpose"
	PurposeValue  = "image-validation"
	LabelFunction = "nanofaas.io/function"
	// deleteTimeout bounds the probe pod's deletion, which outlives the caller's context.
	deleteTimeout = 10 * time.Second
	podPrefix     = "imgval-"
	maxNameLength = 63
)

// Config configures a Validator. Zero durations and nil functions mean the defaults.
type Config struct {
	// Namespace of probe pods; see Namespace for the reference's fallback order.
	Namespace    string
	PollInterval time.Duration // 500 ms
	Timeout      time.Duration // 20 s
	// Now and Wait are the clock: Wait sleeps d or returns ctx's error (time.Now / a timer).
	Now  func() time.Time
	Wait func(ctx context.Context, d time.Duration) error
	// Nanotime makes probe pod names unique (time.Now().UnixNano()).
	Nanotime func() int64
}

// Namespace is the reference's validator namespace: nanofaas.k8s.namespace if non-blank, else
// the client's own namespace (see k8s.Cluster.Namespace), else "default".
func Namespace(configured, client string) string {
	for _, ns := range []string{configured, client} {
		if ns = strings.TrimSpace(ns); ns != "" {
			return ns
		}
	}
	return "default"
}

// Validator is the registry.ImageValidator of the image-validator module. It is stateless and
// safe for concurrent use.
type Validator struct {
	cfg    Config
	client kubeclient.Interface // nil → every validation is IMAGE_REGISTRY_UNAVAILABLE
	log    *slog.Logger
}

var _ registry.ImageValidator = (*Validator)(nil)

// New returns a Validator creating probe pods through client.
func New(cfg Config, client kubeclient.Interface, logger *slog.Logger) *Validator {
	if cfg.Namespace = strings.TrimSpace(cfg.Namespace); cfg.Namespace == "" {
		cfg.Namespace = "default"
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Wait == nil {
		cfg.Wait = wait
	}
	if cfg.Nanotime == nil {
		cfg.Nanotime = func() int64 { return time.Now().UnixNano() }
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Validator{cfg: cfg, client: client, log: logger.With("module", "image-validator")}
}

// Validate proves spec's image can be pulled. Specs that are not DEPLOYMENT pass untouched. A
// function name that the k8s backend cannot use is rejected first (400, D10) so that no pod is
// created for it. Outcomes are *failure.ImageValidation: IMAGE_NOT_FOUND (422),
// IMAGE_PULL_AUTH_REQUIRED (424), IMAGE_REGISTRY_UNAVAILABLE (503, also for Kubernetes API
// errors, timeouts and cancellation). The probe pod is always deleted.
func (v *Validator) Validate(ctx context.Context, spec *function.Spec) error {
	if spec == nil || spec.Mode() != function.ModeDeployment {
		return nil
	}
	if err := k8s.CheckName(spec.Name); err != nil {
		return err
	}
	image := spec.Image
	if v.client == nil {
		return failure.ImageRegistryUnavailable(image, "Kubernetes client unavailable")
	}
	pod := BuildPod(spec, PodName(spec.Name, v.cfg.Nanotime()))
	pods := v.client.Pods(v.cfg.Namespace)
	if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return failure.ImageRegistryUnavailable(image, "Kubernetes API error creating validation pod: "+err.Error())
	}
	defer v.deletePod(ctx, pod.Name)

	deadline := v.cfg.Now().Add(v.cfg.Timeout)
	for v.cfg.Now().Before(deadline) {
		current, err := pods.Get(ctx, pod.Name, metav1.GetOptions{})
		switch {
		case ctx.Err() != nil:
			return failure.ImageRegistryUnavailable(image, "Interrupted while validating image")
		case apierrors.IsNotFound(err):
			// not visible yet: keep polling
		case err != nil:
			return failure.ImageRegistryUnavailable(image, "Kubernetes API error reading validation pod: "+err.Error())
		default:
			if out := Classify(current); out.Verdict != Pending {
				return out.Err(image)
			}
		}
		if err := v.cfg.Wait(ctx, v.cfg.PollInterval); err != nil {
			return failure.ImageRegistryUnavailable(image, "Interrupted while validating image")
		}
	}
	return failure.ImageRegistryUnavailable(image, "Timed out waiting for image pull")
}

// deletePod removes the probe pod on a context detached from the caller's cancellation, so a
// cancelled registration still cleans up; errors are only logged.
func (v *Validator) deletePod(ctx context.Context, name string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deleteTimeout)
	defer cancel()
	err := v.client.Pods(v.cfg.Namespace).Delete(ctx, name,
		metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))})
	if err != nil && !apierrors.IsNotFound(err) {
		v.log.Warn("cannot delete image validation pod", "pod", name, "namespace", v.cfg.Namespace, "err", err)
	}
}

// BuildPod returns the probe pod for spec: the function image in container "validate" with
// imagePullPolicy Always and no command or resources, the spec's pull secrets, never restarted,
// deleted without grace.
func BuildPod(spec *function.Spec, name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Labels: map[string]string{
				k8s.LabelApp:  k8s.AppValue,
				LabelPurpose:  PurposeValue,
				LabelFunction: spec.Name,
			},
		},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: ContainerName, Image: spec.Image, ImagePullPolicy: corev1.PullAlways,
			}},
			ImagePullSecrets:              k8s.PullSecrets(spec.ImagePullSecrets),
			RestartPolicy:                 corev1.RestartPolicyNever,
			TerminationGracePeriodSeconds: ptr(int64(0)),
		},
	}
}

// PodName returns "imgval-<normalized fn>-<base36 nanotime>" of at most 63 characters: the name
// is lower-cased, runs of characters outside [a-z0-9-] become one '-', leading and trailing '-'
// are trimmed (empty → "fn"), and the "imgval-<name>" part is truncated to fit.
func PodName(fn string, nanotime int64) string {
	suffix := strconv.FormatUint(uint64(nanotime), 36) // a negative clock still yields a valid name
	base := podPrefix + deploy.NormalizeName(fn)
	if limit := maxNameLength - len(suffix) - 1; len(base) > limit {
		base = strings.TrimRight(base[:limit], "-")
	}
	return base + "-" + suffix
}

// Verdict is what a pod's status says about the image pull.
type Verdict int

// Verdicts of Classify.
const (
	Pending     Verdict = iota // keep polling
	Pulled                     // success
	NotFound                   // 422 IMAGE_NOT_FOUND
	AuthFailed                 // 424 IMAGE_PULL_AUTH_REQUIRED
	Unavailable                // 503 IMAGE_REGISTRY_UNAVAILABLE with Detail
)

// Outcome is a Verdict with the detail of an Unavailable one.
type Outcome struct {
	Verdict Verdict
	Detail  string
}

// Err returns the error of the outcome for image (nil for Pulled and Pending).
func (o Outcome) Err(image string) error {
	switch o.Verdict {
	case NotFound:
		return failure.ImageNotFound(image)
	case AuthFailed:
		return failure.ImagePullAuthRequired(image)
	case Unavailable:
		return failure.ImageRegistryUnavailable(image, o.Detail)
	}
	return nil
}

// Classify applies the reference's rules to a probe pod. Pulled: phase Running or Succeeded
// (any case), or a container running or terminated. Otherwise, for each container waiting with
// reason R and message M (compared lower-case): M mentions "not found", "manifest unknown" or
// "name unknown", or R is InvalidImageName → NotFound; else M mentions "pull access denied",
// "authentication required", "unauthorized" or "denied" → AuthFailed; else R is ErrImagePull or
// ImagePullBackOff → Unavailable "<Reason>: <message>"; other reasons → Pending.
func Classify(pod *corev1.Pod) Outcome {
	phase := string(pod.Status.Phase)
	if strings.EqualFold(phase, string(corev1.PodRunning)) || strings.EqualFold(phase, string(corev1.PodSucceeded)) {
		return Outcome{Verdict: Pulled}
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.State.Running != nil || cs.State.Terminated != nil {
			return Outcome{Verdict: Pulled}
		}
	}
	for _, cs := range pod.Status.ContainerStatuses {
		w := cs.State.Waiting
		if w == nil {
			continue
		}
		reason, msg := strings.ToLower(w.Reason), strings.ToLower(w.Message)
		switch {
		case containsAny(msg, "not found", "manifest unknown", "name unknown") || reason == "invalidimagename":
			return Outcome{Verdict: NotFound}
		case containsAny(msg, "pull access denied", "authentication required", "unauthorized", "denied"):
			return Outcome{Verdict: AuthFailed}
		case reason == "errimagepull" || reason == "imagepullbackoff":
			detail := w.Reason
			if w.Message != "" {
				detail += ": " + w.Message
			}
			return Outcome{Verdict: Unavailable, Detail: detail}
		}
	}
	return Outcome{Verdict: Pending}
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// wait sleeps d, or returns early with ctx's error.
func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func ptr[T any](v T) *T { return &v }

// String names a verdict for logs and test failures.
func (v Verdict) String() string {
	switch v {
	case Pending:
		return "Pending"
	case Pulled:
		return "Pulled"
	case NotFound:
		return "NotFound"
	case AuthFailed:
		return "AuthFailed"
	case Unavailable:
		return "Unavailable"
	}
	return fmt.Sprintf("Verdict(%d)", int(v))
}
