package deploytest

import (
	"strings"
	"sync"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/nanofaas/control-plane/internal/kubetest"
)

// warnings records the API server's Warning headers (deprecated APIs, ignored fields).
type warnings struct {
	mu   sync.Mutex
	list []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.list
	w.list = nil
	return out
}

// dryRunner creates objects by server-side dry run, with strict field validation, through the
// dynamic client: the API server defaults, validates and admits them and stores nothing.
type dryRunner struct {
	dyn      dynamic.Interface
	mapper   meta.RESTMapper
	warnings *warnings
}

func newDryRunner(t *testing.T, c *kubetest.Cluster) *dryRunner {
	t.Helper()
	w := &warnings{}
	cfg := rest.CopyConfig(c.RESTConfig)
	cfg.WarningHandler = w
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	groups, err := restmapper.GetAPIGroupResources(dc)
	if err != nil {
		t.Fatal(err)
	}
	return &dryRunner{dyn: dyn, mapper: restmapper.NewDiscoveryRESTMapper(groups), warnings: w}
}

// resource returns the client of u's kind (in ns when namespaced).
func (d *dryRunner) resource(u *unstructured.Unstructured, ns string) (dynamic.ResourceInterface, error) {
	gvk := u.GroupVersionKind()
	m, err := d.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, err
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return d.dyn.Resource(m.Resource).Namespace(ns), nil
	}
	return d.dyn.Resource(m.Resource), nil
}

// create dry-runs the creation of u.
func (d *dryRunner) create(t *testing.T, u *unstructured.Unstructured) error {
	t.Helper()
	ri, err := d.resource(u, u.GetNamespace())
	if err != nil {
		return err
	}
	_, err = ri.Create(t.Context(), u, metav1.CreateOptions{
		DryRun:          []string{metav1.DryRunAll},
		FieldValidation: metav1.FieldValidationStrict,
	})
	return err
}

// retarget moves the namespaced objects (and the RoleBinding's subject) of m into ns, the
// test's own namespace on the shared cluster; a Namespace object keeps its name (dry-run
// creation of a cluster-scoped object stores nothing either).
func retarget(m manifest, ns string) manifest {
	out := m.deepCopy()
	for _, u := range out {
		if u.GetKind() == "Namespace" {
			continue
		}
		u.SetNamespace(ns)
		if u.GetKind() == "RoleBinding" {
			subjects, _, _ := unstructured.NestedSlice(u.Object, "subjects")
			for _, s := range subjects {
				s.(map[string]any)["namespace"] = ns
			}
			_ = unstructured.SetNestedSlice(u.Object, subjects, "subjects")
		}
	}
	return out
}

func TestDryRun_APIServerAcceptsEveryManifestAndChartObject(t *testing.T) {
	c := kube.Cluster(t)
	d := newDryRunner(t, c)
	sets := []struct {
		name string
		load func(t *testing.T) manifest
	}{
		{"raw manifests", func(t *testing.T) manifest { return loadRaw(t) }},
		{"chart defaults", func(t *testing.T) manifest { return renderChart(t, "nanofaas", "", "") }},
		{"chart with NodePort, extraEnv, release namespace", func(t *testing.T) manifest {
			return renderChart(t, "rel", "team-a", `
namespace:
  create: false
controlPlane:
  service:
    type: NodePort
    nodePorts:
      http: 30080
  extraEnv:
    - name: NANOFAAS_DEPLOYMENT_DEFAULT_BACKEND
      value: k8s
`)
		}},
	}
	for _, set := range sets {
		t.Run(set.name, func(t *testing.T) {
			m := set.load(t)
			ns := c.Namespace(t)
			for _, u := range retarget(m, ns) {
				if err := d.create(t, u); err != nil {
					t.Errorf("%s rejected: %v", key(u), err)
					continue
				}
				// Dry run means nothing was stored.
				ri, err := d.resource(u, u.GetNamespace())
				if err != nil {
					t.Fatal(err)
				}
				if _, err := ri.Get(t.Context(), u.GetName(), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
					t.Errorf("%s: get after dry-run create = %v, want NotFound", key(u), err)
				}
			}
			if w := d.warnings.take(); len(w) > 0 {
				t.Errorf("API server warnings: %q", w)
			}
		})
	}
}

func TestDryRun_RejectsAnInvalidObject(t *testing.T) {
	// The acceptance above means something only if the dry run validates: a Deployment whose
	// selector does not match its pod labels, and an unknown field, must both be refused.
	c := kube.Cluster(t)
	d := newDryRunner(t, c)
	ns := c.Namespace(t)
	cases := []struct {
		name   string
		mutate func(u *unstructured.Unstructured)
		want   string
	}{
		{"selector does not match pod labels", func(u *unstructured.Unstructured) {
			_ = unstructured.SetNestedStringMap(u.Object, map[string]string{"app": "other"}, "spec", "selector", "matchLabels")
		}, "selector"},
		{"unknown field", func(u *unstructured.Unstructured) {
			_ = unstructured.SetNestedField(u.Object, int64(1), "spec", "replicaz")
		}, "replicaz"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := retarget(loadRaw(t), ns).find("Deployment", deploymentName)
			tc.mutate(u)
			err := d.create(t, u)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("dry-run create = %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}
