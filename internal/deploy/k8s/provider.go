// Package k8s owns the Kubernetes deployment backend (backend id "k8s", spec-modules §6): pure
// builders of a function's Deployment, ClusterIP Service and HPA, the provider that reconciles
// them (create or JSON-merge-patch, so re-provisioning keeps UIDs), scales them through the scale
// subresource and serves ready-replica counts from a namespace-scoped informer, and discovery of
// the cluster configuration (DECISIONS.md D9, D10).
package k8s

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"

	"github.com/nanofaas/control-plane/internal/config"
	"github.com/nanofaas/control-plane/internal/deploy"
	"github.com/nanofaas/control-plane/internal/failure"
	"github.com/nanofaas/control-plane/internal/function"
	"github.com/nanofaas/control-plane/internal/kubeclient"
)

// cleanupTimeout bounds the best-effort removal of a part-way provisioning.
const cleanupTimeout = 30 * time.Second

// Config configures the provider.
type Config struct {
	// Namespace holds every function object (required; see config.K8s.EffectiveNamespace).
	Namespace string
	// CallbackURL is injected as CALLBACK_URL; blank = not injected.
	CallbackURL string
	// ImagePullPolicy of function containers; blank = Always.
	ImagePullPolicy string
}

// ConfigFrom returns the provider configuration of the nanofaas.k8s.* properties: the effective
// namespace (property, POD_NAMESPACE, "default") and callback URL (D9).
func ConfigFrom(c config.K8s) Config {
	return Config{
		Namespace:       c.EffectiveNamespace(),
		CallbackURL:     c.EffectiveCallbackURL(),
		ImagePullPolicy: c.ImagePullPolicy,
	}
}

// Provider is the "k8s" deploy.Provider. It keeps no per-function state (the registry
// serializes operations per name), so it is safe for concurrent use.
type Provider struct {
	cfg     Config
	client  kubeclient.Interface // nil = unavailable
	cluster *Cluster             // set by NewDiscovered
	log     *slog.Logger

	// informer caches the namespace's app=nanofaas Deployments for ReadyReplicas.
	informer cache.SharedIndexInformer
	running  atomic.Bool // Run may be called once
}

var _ deploy.Provider = (*Provider)(nil)

// New returns a provider over client in cfg.Namespace. A nil client gives a provider that exists
// but reports Available() == false. Call Run to keep the ready-replica cache; until it has
// synced, ReadyReplicas reads the API directly.
func New(cfg Config, client kubeclient.Interface, logger *slog.Logger) *Provider {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if strings.TrimSpace(cfg.Namespace) == "" {
		cfg.Namespace = "default"
	}
	p := &Provider{cfg: cfg, client: client, log: logger.With("backend", deploy.BackendK8s)}
	if client != nil {
		deployments := client.Deployments(cfg.Namespace)
		selector := labels.Set{LabelApp: AppValue}.String()
		lw := &cache.ListWatch{
			ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				o.LabelSelector = selector
				return deployments.List(ctx, o)
			},
			WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				o.LabelSelector = selector
				return deployments.Watch(ctx, o)
			},
		}
		p.informer = cache.NewSharedIndexInformer(lw, &appsv1.Deployment{}, 0, cache.Indexers{})
	}
	return p
}

// NewDiscovered discovers the cluster configuration (Discover with DefaultSources) and returns a
// provider over it. Without one, or with one that cannot be used, the provider is unavailable
// and the reason is logged.
func NewDiscovered(cfg Config, logger *slog.Logger) *Provider {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cl, err := Discover(DefaultSources())
	switch {
	case errors.Is(err, ErrNoCluster):
		logger.Info("k8s deployment provider unavailable", "reason", err)
		return New(cfg, nil, logger)
	case err != nil:
		logger.Warn("k8s deployment provider unavailable: cluster configuration unusable", "err", err)
		return New(cfg, nil, logger)
	}
	logger.Info("k8s deployment provider available", "source", cl.Source, "namespace", cfg.Namespace)
	p := New(cfg, cl.Client, logger)
	p.cluster = cl
	return p
}

// Cluster returns the discovered cluster (for sharing its client, e.g. with the image
// validator); false when the provider was not built by NewDiscovered or found none.
func (p *Provider) Cluster() (*Cluster, bool) { return p.cluster, p.cluster != nil }

// Namespace is the namespace function objects live in.
func (p *Provider) Namespace() string { return p.cfg.Namespace }

// BackendID is "k8s".
func (p *Provider) BackendID() string { return deploy.BackendK8s }

// Available reports whether a cluster client exists (D10). It does not contact the cluster.
func (p *Provider) Available() bool { return p.client != nil }

// Supports reports whether spec is a DEPLOYMENT function. Names that cannot form an object name
// are supported here and rejected by Provision with 400, so that they are not silently routed
// to another backend.
func (p *Provider) Supports(spec *function.Spec) bool {
	return spec != nil && spec.Mode() == function.ModeDeployment
}

// Run keeps the Deployment cache of the namespace (label app=nanofaas) until ctx ends, then
// stops its goroutines and returns ctx.Err(). Without a client it only waits for ctx.
func (p *Provider) Run(ctx context.Context) error {
	if p.informer == nil {
		<-ctx.Done()
		return ctx.Err()
	}
	if !p.running.CompareAndSwap(false, true) {
		return errors.New("k8s: provider Run called more than once")
	}
	p.informer.RunWithContext(ctx) // returns once its goroutines have stopped
	return ctx.Err()
}

// WaitForCacheSync blocks until the ready-replica cache has synced or ctx ends; it reports
// whether it synced. Run must be running.
func (p *Provider) WaitForCacheSync(ctx context.Context) bool {
	if p.informer == nil {
		return false
	}
	return cache.WaitForCacheSync(ctx.Done(), p.informer.HasSynced)
}

// Provision reconciles the function's Deployment, Service and HPA (created, or JSON-merge-patched
// with the full desired object when present) and deletes a stale HPA when the strategy is not
// HPA. It returns the Service URL without waiting for readiness. An invalid name is
// failure.InvalidArgument (400, D10); API errors are failure.Internal (500, never degraded to
// POOL, as the reference does not translate them).
//
// On failure it removes, best effort, only the objects this call created: objects that were
// already there (surviving a restart, or a re-registration) stay, patched or not. An object
// whose create outcome is unknown (transport error) is left alone too, as it may be one of those.
func (p *Provider) Provision(ctx context.Context, spec *function.Spec) (deploy.ProvisionResult, error) {
	if err := p.requireClient(); err != nil {
		return deploy.ProvisionResult{}, err
	}
	if err := CheckName(spec.Name); err != nil {
		return deploy.ProvisionResult{}, err
	}
	dep, err := BuildDeployment(spec, p.cfg)
	if err != nil {
		return deploy.ProvisionResult{}, err
	}
	var made createdObjects
	if err := p.reconcile(ctx, spec, dep, &made); err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		p.removeCreated(cctx, spec.Name, made, err)
		return deploy.ProvisionResult{}, err
	}
	p.log.Info("provisioned", "function", spec.Name, "namespace", p.cfg.Namespace, "hpa", WantsHPA(spec))
	return deploy.Managed(EndpointURL(spec.Name, p.cfg.Namespace), deploy.BackendK8s), nil
}

// createdObjects records which objects a reconcile created (rather than found and patched).
type createdObjects struct{ deployment, service, hpa bool }

// reconcile applies the desired objects in order, marking in made each one it creates.
func (p *Provider) reconcile(ctx context.Context, spec *function.Spec, dep *appsv1.Deployment, made *createdObjects) error {
	ns, name := p.cfg.Namespace, ObjectName(spec.Name)
	deployments := p.client.Deployments(ns)
	if err := createOrPatch(ctx, "Deployment", ns, name, dep, &made.deployment,
		func() error { _, err := deployments.Create(ctx, dep, metav1.CreateOptions{}); return err },
		func(b []byte) error {
			_, err := deployments.Patch(ctx, name, types.MergePatchType, b, metav1.PatchOptions{})
			return err
		}); err != nil {
		return err
	}
	svc := BuildService(spec.Name)
	services := p.client.Services(ns)
	if err := createOrPatch(ctx, "Service", ns, name, svc, &made.service,
		func() error { _, err := services.Create(ctx, svc, metav1.CreateOptions{}); return err },
		func(b []byte) error {
			_, err := services.Patch(ctx, name, types.MergePatchType, b, metav1.PatchOptions{})
			return err
		}); err != nil {
		return err
	}
	hpas := p.client.HorizontalPodAutoscalers(ns)
	hpa := BuildHPA(spec)
	if hpa == nil {
		return ignoreNotFound(hpas.Delete(ctx, name, metav1.DeleteOptions{}), "delete", "HorizontalPodAutoscaler", ns, name)
	}
	return createOrPatch(ctx, "HorizontalPodAutoscaler", ns, name, hpa, &made.hpa,
		func() error { _, err := hpas.Create(ctx, hpa, metav1.CreateOptions{}); return err },
		func(b []byte) error {
			_, err := hpas.Patch(ctx, name, types.MergePatchType, b, metav1.PatchOptions{})
			return err
		})
}

// createOrPatch creates an object and, when it already exists, JSON-merge-patches it with the
// full desired object; *created is set when the create succeeded. Creating first saves a round
// trip for the common case (a new function); the patch keeps the object's identity (UID) when it
// survived, e.g., a control-plane restart.
func createOrPatch(ctx context.Context, kind, ns, name string, desired any, created *bool, create func() error, patch func([]byte) error) error {
	err := create()
	if err == nil {
		*created = true
		return nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return apiError("create", kind, ns, name, err)
	}
	body, err := json.Marshal(desired)
	if err != nil {
		return fmt.Errorf("k8s: encode %s %s: %w", kind, name, err)
	}
	if err := patch(body); err != nil {
		return apiError("patch", kind, ns, name, err)
	}
	return nil
}

// removeCreated deletes, in Deprovision's order, the objects a failed reconcile created; it tries
// each one and logs what it could not remove (cause is the provisioning error).
func (p *Provider) removeCreated(ctx context.Context, fn string, made createdObjects, cause error) {
	ns, obj := p.cfg.Namespace, ObjectName(fn)
	opts := metav1.DeleteOptions{}
	steps := []struct {
		created bool
		kind    string
		del     func() error
	}{
		{made.hpa, "HorizontalPodAutoscaler", func() error { return p.client.HorizontalPodAutoscalers(ns).Delete(ctx, obj, opts) }},
		{made.service, "Service", func() error { return p.client.Services(ns).Delete(ctx, obj, opts) }},
		{made.deployment, "Deployment", func() error { return p.client.Deployments(ns).Delete(ctx, obj, opts) }},
	}
	var removed []string
	for _, st := range steps {
		if !st.created {
			continue
		}
		if err := ignoreNotFound(st.del(), "delete", st.kind, ns, obj); err != nil {
			p.log.Error("cleanup after failed provisioning failed", "function", fn, "cause", cause, "err", err)
			continue
		}
		removed = append(removed, st.kind)
	}
	p.log.Warn("provisioning failed", "function", fn, "namespace", ns, "err", cause, "removed", removed)
}

// Deprovision deletes the HPA, the Service and the Deployment, in that order; missing objects
// are ignored. API errors are failure.Internal.
func (p *Provider) Deprovision(ctx context.Context, name string) error {
	if err := p.requireClient(); err != nil {
		return err
	}
	ns, obj := p.cfg.Namespace, ObjectName(name)
	opts := metav1.DeleteOptions{}
	if err := ignoreNotFound(p.client.HorizontalPodAutoscalers(ns).Delete(ctx, obj, opts),
		"delete", "HorizontalPodAutoscaler", ns, obj); err != nil {
		return err
	}
	if err := ignoreNotFound(p.client.Services(ns).Delete(ctx, obj, opts),
		"delete", "Service", ns, obj); err != nil {
		return err
	}
	if err := ignoreNotFound(p.client.Deployments(ns).Delete(ctx, obj, opts),
		"delete", "Deployment", ns, obj); err != nil {
		return err
	}
	p.log.Info("deprovisioned", "function", name, "namespace", ns)
	return nil
}

// SetReplicas sets the Deployment's replicas through its scale subresource (one unconditional
// PUT: no resourceVersion, so no read-modify-write race). API errors, a missing Deployment
// included, are failure.Internal (500), as in the reference.
func (p *Provider) SetReplicas(ctx context.Context, name string, replicas int) error {
	if err := p.requireClient(); err != nil {
		return err
	}
	if replicas < 0 || replicas > math.MaxInt32 {
		return failure.Invalidf("replicas must be between 0 and %d", math.MaxInt32)
	}
	ns, obj := p.cfg.Namespace, ObjectName(name)
	scale := &autoscalingv1.Scale{
		ObjectMeta: metav1.ObjectMeta{Name: obj, Namespace: ns},
		Spec:       autoscalingv1.ScaleSpec{Replicas: int32(replicas)},
	}
	if _, err := p.client.Deployments(ns).UpdateScale(ctx, obj, scale, metav1.UpdateOptions{}); err != nil {
		return apiError("scale", "Deployment", ns, obj, err)
	}
	return nil
}

// ReadyReplicas returns status.readyReplicas of the function's Deployment (0 when it or the field
// is absent), from the informer cache once it has synced, else from the API.
func (p *Provider) ReadyReplicas(ctx context.Context, name string) (int, error) {
	if err := p.requireClient(); err != nil {
		return 0, err
	}
	ns, obj := p.cfg.Namespace, ObjectName(name)
	if p.informer.HasSynced() {
		item, exists, err := p.informer.GetIndexer().GetByKey(ns + "/" + obj)
		if err != nil {
			return 0, err
		}
		if !exists {
			return 0, nil
		}
		return int(item.(*appsv1.Deployment).Status.ReadyReplicas), nil
	}
	d, err := p.client.Deployments(ns).Get(ctx, obj, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, apiError("get", "Deployment", ns, obj, err)
	}
	return int(d.Status.ReadyReplicas), nil
}

func (p *Provider) requireClient() error {
	if p.client == nil {
		return failure.Unavailablef("Kubernetes deployment provider is not available: %v", ErrNoCluster)
	}
	return nil
}

// apiError classifies a Kubernetes API error as failure.Internal (500, not degraded: the
// reference lets such errors through untranslated) with a message for the log naming the
// operation and object; the original error stays reachable through errors.Is/As.
func apiError(op, kind, ns, name string, err error) error {
	return failure.Internalf(err, "Kubernetes API error: cannot %s %s '%s' in namespace '%s': %v", op, kind, name, ns, err)
}

func ignoreNotFound(err error, op, kind, ns, name string) error {
	if err == nil || apierrors.IsNotFound(err) {
		return nil
	}
	return apiError(op, kind, ns, name, err)
}
