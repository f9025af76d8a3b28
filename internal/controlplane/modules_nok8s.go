//go:build nok8s

package controlplane

import "github.com/nanofaas/control-plane/internal/modules"

// wireKubernetes is the nok8s build's stand-in: the binary has no Kubernetes client, so the
// k8s-deployment-provider and image-validator modules are unavailable even when selected.
func (a *App) wireKubernetes(modules.Set, *wiredModules) {
	a.log.Warn("this binary was built with -tags nok8s: the k8s-deployment-provider and image-validator modules are not available")
}
