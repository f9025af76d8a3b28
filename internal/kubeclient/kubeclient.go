// Package kubeclient owns the narrow Kubernetes API the control plane calls — Deployments (and
// their scale subresource), Services, HorizontalPodAutoscalers and Pods — and its lean REST
// implementation. It deliberately avoids client-go's typed clientset: that package registers
// every API group of Kubernetes at start-up, which alone kept ~20 MiB of the binary resident
// in an idle control plane. The method sets match client-go's typed clients, so a clientset
// (or its fake, in tests) satisfies them through kubeclienttest.FromClientset.
package kubeclient

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
)

// Interface is the Kubernetes API of the control plane, per namespace.
type Interface interface {
	Deployments(namespace string) Deployments
	Services(namespace string) Services
	HorizontalPodAutoscalers(namespace string) HorizontalPodAutoscalers
	Pods(namespace string) Pods
}

// Deployments is what the k8s provider does with apps/v1 Deployments.
type Deployments interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*appsv1.Deployment, error)
	List(ctx context.Context, opts metav1.ListOptions) (*appsv1.DeploymentList, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
	Create(ctx context.Context, obj *appsv1.Deployment, opts metav1.CreateOptions) (*appsv1.Deployment, error)
	Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (*appsv1.Deployment, error)
	Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error
	UpdateScale(ctx context.Context, name string, scale *autoscalingv1.Scale, opts metav1.UpdateOptions) (*autoscalingv1.Scale, error)
}

// Services is what the k8s provider does with v1 Services.
type Services interface {
	Create(ctx context.Context, obj *corev1.Service, opts metav1.CreateOptions) (*corev1.Service, error)
	Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (*corev1.Service, error)
	Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error
}

// HorizontalPodAutoscalers is what the k8s provider does with autoscaling/v2 HPAs.
type HorizontalPodAutoscalers interface {
	Create(ctx context.Context, obj *autoscalingv2.HorizontalPodAutoscaler, opts metav1.CreateOptions) (*autoscalingv2.HorizontalPodAutoscaler, error)
	Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (*autoscalingv2.HorizontalPodAutoscaler, error)
	Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error
}

// Pods is what the image validator does with v1 Pods.
type Pods interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*corev1.Pod, error)
	Create(ctx context.Context, obj *corev1.Pod, opts metav1.CreateOptions) (*corev1.Pod, error)
	Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error
}

// client is the REST implementation: one RESTClient per API group version, over a scheme that
// knows only the types above.
type client struct {
	apps, core, autoscaling *rest.RESTClient
}

// New returns the REST client of Interface for cfg.
func New(cfg *rest.Config) (Interface, error) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		appsv1.AddToScheme, corev1.AddToScheme, autoscalingv1.AddToScheme, autoscalingv2.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			return nil, fmt.Errorf("kubeclient: scheme: %w", err)
		}
	}
	metav1.AddToGroupVersion(scheme, schema.GroupVersion{Version: "v1"}) // Status, options
	codecs := serializer.NewCodecFactory(scheme)
	restFor := func(gv schema.GroupVersion, apiPath string) (*rest.RESTClient, error) {
		c := rest.CopyConfig(cfg)
		c.GroupVersion = &gv
		c.APIPath = apiPath
		c.NegotiatedSerializer = codecs.WithoutConversion()
		if c.UserAgent == "" {
			c.UserAgent = rest.DefaultKubernetesUserAgent()
		}
		rc, err := rest.RESTClientFor(c)
		if err != nil {
			return nil, fmt.Errorf("kubeclient: %s client: %w", gv, err)
		}
		return rc, nil
	}
	var cl client
	var err error
	if cl.apps, err = restFor(appsv1.SchemeGroupVersion, "/apis"); err != nil {
		return nil, err
	}
	if cl.core, err = restFor(corev1.SchemeGroupVersion, "/api"); err != nil {
		return nil, err
	}
	if cl.autoscaling, err = restFor(autoscalingv2.SchemeGroupVersion, "/apis"); err != nil {
		return nil, err
	}
	return cl, nil
}

func (c client) Deployments(ns string) Deployments {
	return deployments{resource[*appsv1.Deployment]{c.apps, ns, "deployments", func() *appsv1.Deployment { return new(appsv1.Deployment) }}}
}

func (c client) Services(ns string) Services {
	return resource[*corev1.Service]{c.core, ns, "services", func() *corev1.Service { return new(corev1.Service) }}
}

func (c client) HorizontalPodAutoscalers(ns string) HorizontalPodAutoscalers {
	return resource[*autoscalingv2.HorizontalPodAutoscaler]{c.autoscaling, ns, "horizontalpodautoscalers",
		func() *autoscalingv2.HorizontalPodAutoscaler { return new(autoscalingv2.HorizontalPodAutoscaler) }}
}

func (c client) Pods(ns string) Pods {
	return resource[*corev1.Pod]{c.core, ns, "pods", func() *corev1.Pod { return new(corev1.Pod) }}
}

// resource is the verbs of one namespaced resource, as client-go's generated clients do them.
type resource[T runtime.Object] struct {
	c        *rest.RESTClient
	ns, name string
	newObj   func() T
}

func (r resource[T]) Get(ctx context.Context, name string, opts metav1.GetOptions) (T, error) {
	out := r.newObj()
	err := r.c.Get().Namespace(r.ns).Resource(r.name).Name(name).
		VersionedParams(&opts, metav1.ParameterCodec).Do(ctx).Into(out)
	return out, err
}

func (r resource[T]) Create(ctx context.Context, obj T, opts metav1.CreateOptions) (T, error) {
	out := r.newObj()
	err := r.c.Post().Namespace(r.ns).Resource(r.name).
		VersionedParams(&opts, metav1.ParameterCodec).Body(obj).Do(ctx).Into(out)
	return out, err
}

func (r resource[T]) Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (T, error) {
	out := r.newObj()
	err := r.c.Patch(pt).Namespace(r.ns).Resource(r.name).Name(name).SubResource(subresources...).
		VersionedParams(&opts, metav1.ParameterCodec).Body(data).Do(ctx).Into(out)
	return out, err
}

func (r resource[T]) Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error {
	return r.c.Delete().Namespace(r.ns).Resource(r.name).Name(name).Body(&opts).Do(ctx).Error()
}

// deployments adds list/watch (for the ready-replica informer) and the scale subresource.
type deployments struct {
	resource[*appsv1.Deployment]
}

func (d deployments) List(ctx context.Context, opts metav1.ListOptions) (*appsv1.DeploymentList, error) {
	out := new(appsv1.DeploymentList)
	err := d.c.Get().Namespace(d.ns).Resource(d.name).
		VersionedParams(&opts, metav1.ParameterCodec).Do(ctx).Into(out)
	return out, err
}

func (d deployments) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	opts.Watch = true
	return d.c.Get().Namespace(d.ns).Resource(d.name).
		VersionedParams(&opts, metav1.ParameterCodec).Watch(ctx)
}

func (d deployments) UpdateScale(ctx context.Context, name string, scale *autoscalingv1.Scale, opts metav1.UpdateOptions) (*autoscalingv1.Scale, error) {
	out := new(autoscalingv1.Scale)
	err := d.c.Put().Namespace(d.ns).Resource(d.name).Name(name).SubResource("scale").
		VersionedParams(&opts, metav1.ParameterCodec).Body(scale).Do(ctx).Into(out)
	return out, err
}
