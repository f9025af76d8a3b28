//go:build !nok8s

package controlplane

import (
	"github.com/nanofaas/control-plane/internal/deploy/k8s"
	"github.com/nanofaas/control-plane/internal/imagevalidator"
	"github.com/nanofaas/control-plane/internal/modules"
)

// wireKubernetes adds the k8s provider and, when selected, the image validator. Builds tagged
// nok8s leave out the Kubernetes client (about half the binary) and cannot do this.
func (a *App) wireKubernetes(set modules.Set, w *wiredModules) {
	p := k8s.NewDiscovered(k8s.ConfigFrom(a.cfg.K8s), a.log)
	w.providers = append(w.providers, p)
	if p.Available() {
		a.loops = append(a.loops, p.Run)
	}
	// D23: validate images only for functions the k8s backend provisions, only when a cluster
	// is reachable, and only when not switched off.
	if cluster, ok := p.Cluster(); ok && set.Has(modules.ImageValidator) && a.cfg.ImageValidator.Enabled {
		w.images = imagevalidator.New(imagevalidator.Config{
			Namespace: imagevalidator.Namespace(a.cfg.K8s.Namespace, cluster.Namespace),
		}, cluster.Client, a.log)
	}
}
