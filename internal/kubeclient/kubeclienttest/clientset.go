// Package kubeclienttest adapts a client-go clientset (typically the fake one) to
// kubeclient.Interface for tests. Only tests import it, so the full typed clientset never
// reaches the control-plane binary.
package kubeclienttest

import (
	"k8s.io/client-go/kubernetes"

	"github.com/nanofaas/control-plane/internal/kubeclient"
)

// FromClientset returns cs as a kubeclient.Interface.
func FromClientset(cs kubernetes.Interface) kubeclient.Interface { return clientset{cs} }

type clientset struct{ cs kubernetes.Interface }

func (c clientset) Deployments(ns string) kubeclient.Deployments {
	return c.cs.AppsV1().Deployments(ns)
}

func (c clientset) Services(ns string) kubeclient.Services { return c.cs.CoreV1().Services(ns) }

func (c clientset) HorizontalPodAutoscalers(ns string) kubeclient.HorizontalPodAutoscalers {
	return c.cs.AutoscalingV2().HorizontalPodAutoscalers(ns)
}

func (c clientset) Pods(ns string) kubeclient.Pods { return c.cs.CoreV1().Pods(ns) }
