// Package deploytest owns the checks of the deploy artifacts: the Dockerfile and .dockerignore,
// the raw manifests in deploy/k8s and the Helm chart in deploy/helm/nanofaas. It pins their
// facts field by field (spec-modules §12), renders the chart with `helm template`, creates every
// object by server-side dry-run on a real kube-apiserver (internal/kubetest), and proves that the
// control plane's Role grants exactly the API calls the k8s backend and the image validator make.
// It has no non-test code.
package deploytest
