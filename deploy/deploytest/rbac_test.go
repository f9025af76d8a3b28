package deploytest

import (
	"context"
	"fmt"
	"github.com/nanofaas/control-plane/internal/kubeclient"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/client-go/rest"

	"github.com/nanofaas/control-plane/internal/deploy/k8s"
	"github.com/nanofaas/control-plane/internal/function"
	"github.com/nanofaas/control-plane/internal/imagevalidator"
)

// grant is one (apiGroup, resource[/subresource], verb) an RBAC rule can allow.
type grant struct{ group, resource, verb string }

func (g grant) String() string {
	group := g.group
	if group == "" {
		group = "core"
	}
	return fmt.Sprintf("%s %s/%s", g.verb, group, g.resource)
}

// grants expands rules into the set they allow; wildcards, resource names and non-resource
// URLs are reported, since the control plane's Role must not need them.
func grants(rules []rbacv1.PolicyRule) (map[grant]bool, []string) {
	out := map[grant]bool{}
	var bad []string
	for _, r := range rules {
		if len(r.ResourceNames) > 0 || len(r.NonResourceURLs) > 0 {
			bad = append(bad, "rule with resourceNames or nonResourceURLs: "+formatRules([]rbacv1.PolicyRule{r}))
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					if g == "*" || res == "*" || v == "*" {
						bad = append(bad, "wildcard rule: "+formatRules([]rbacv1.PolicyRule{r}))
					}
					out[grant{g, res, v}] = true
				}
			}
		}
	}
	return out, bad
}

func sortedGrants(set map[grant]bool) []string {
	out := make([]string, 0, len(set))
	for g := range set {
		out = append(out, g.String())
	}
	slices.Sort(out)
	return out
}

// callRecorder records the RBAC grant each API request of a client needs, the way the API
// server's request-info resolver derives it from method and path.
type callRecorder struct {
	mu    sync.Mutex
	calls map[grant]bool
	other []string // requests no namespaced Role can grant (cluster-scoped resources)
}

func newCallRecorder() *callRecorder { return &callRecorder{calls: map[grant]bool{}} }

func (r *callRecorder) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		r.record(req)
		return rt.RoundTrip(req)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func (r *callRecorder) record(req *http.Request) {
	g, namespaced, ok := requestGrant(req.Method, req.URL.Path, req.URL.Query().Get("watch"))
	if !ok {
		return // discovery and other non-resource URLs: granted to every authenticated user
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !namespaced {
		r.other = append(r.other, req.Method+" "+req.URL.Path)
		return
	}
	r.calls[g] = true
}

func (r *callRecorder) snapshot() (map[grant]bool, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[grant]bool, len(r.calls))
	for g := range r.calls {
		out[g] = true
	}
	return out, slices.Clone(r.other)
}

// requestGrant maps a resource request to its grant: /api/v1/... is the core group,
// /apis/<group>/<version>/... a named one; ok is false for non-resource paths.
func requestGrant(method, path, watch string) (g grant, namespaced, ok bool) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	var rest []string
	switch {
	case len(parts) >= 3 && parts[0] == "api":
		rest = parts[2:]
	case len(parts) >= 4 && parts[0] == "apis":
		g.group, rest = parts[1], parts[3:]
	default:
		return grant{}, false, false
	}
	if len(rest) >= 3 && rest[0] == "namespaces" {
		namespaced, rest = true, rest[2:]
	}
	g.resource = rest[0]
	named := len(rest) >= 2
	if len(rest) >= 3 {
		g.resource += "/" + rest[2]
	}
	watching := watch == "true" || watch == "1"
	switch {
	case method == http.MethodGet && watching:
		g.verb = "watch"
	case method == http.MethodGet && named:
		g.verb = "get"
	case method == http.MethodGet:
		g.verb = "list"
	case method == http.MethodPost:
		g.verb = "create"
	case method == http.MethodPut:
		g.verb = "update"
	case method == http.MethodPatch:
		g.verb = "patch"
	case method == http.MethodDelete && named:
		g.verb = "delete"
	case method == http.MethodDelete:
		g.verb = "deletecollection"
	default:
		g.verb = strings.ToLower(method)
	}
	return g, namespaced, true
}

func TestRequestGrant_MapsRequestsLikeTheAPIServer(t *testing.T) {
	cases := []struct {
		method, path, watch string
		want                grant
		namespaced, ok      bool
	}{
		{"GET", "/apis/apps/v1/namespaces/ns/deployments", "", grant{"apps", "deployments", "list"}, true, true},
		{"GET", "/apis/apps/v1/namespaces/ns/deployments", "true", grant{"apps", "deployments", "watch"}, true, true},
		{"GET", "/apis/apps/v1/namespaces/ns/deployments/fn-a", "", grant{"apps", "deployments", "get"}, true, true},
		{"PUT", "/apis/apps/v1/namespaces/ns/deployments/fn-a/scale", "", grant{"apps", "deployments/scale", "update"}, true, true},
		{"PATCH", "/api/v1/namespaces/ns/services/fn-a", "", grant{"", "services", "patch"}, true, true},
		{"POST", "/api/v1/namespaces/ns/pods", "", grant{"", "pods", "create"}, true, true},
		{"DELETE", "/api/v1/namespaces/ns/pods/p", "", grant{"", "pods", "delete"}, true, true},
		{"DELETE", "/api/v1/namespaces/ns/pods", "", grant{"", "pods", "deletecollection"}, true, true},
		{"GET", "/api/v1/namespaces/ns", "", grant{"", "namespaces", "get"}, false, true},
		{"GET", "/apis/autoscaling/v2", "", grant{}, false, false},
		{"GET", "/version", "", grant{}, false, false},
	}
	for _, tc := range cases {
		g, namespaced, ok := requestGrant(tc.method, tc.path, tc.watch)
		if ok != tc.ok || (ok && (g != tc.want || namespaced != tc.namespaced)) {
			t.Errorf("%s %s watch=%q = %v namespaced=%v ok=%v, want %v %v %v",
				tc.method, tc.path, tc.watch, g, namespaced, ok, tc.want, tc.namespaced, tc.ok)
		}
	}
}

// hpaSpec is a DEPLOYMENT function scaled by an HPA; with strategy INTERNAL it has none.
func hpaSpec(strategy function.ScalingStrategy) *function.Spec {
	mode := function.ModeDeployment
	metric, target := "cpu", "60"
	return &function.Spec{
		Name: "echo", Image: "registry.invalid/echo:1", ExecutionMode: &mode,
		TimeoutMs: ptr(1000),
		ScalingConfig: &function.ScalingConfig{
			Strategy: &strategy, MinReplicas: ptr(1), MaxReplicas: ptr(3),
			Metrics: []*function.ScalingMetric{{Type: &metric, Target: &target}},
		},
	}
}

// fakeClock is the image validator's clock: waiting advances it instead of sleeping.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Wait(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return ctx.Err()
}

func TestRole_GrantsExactlyTheCallsOfTheControlPlane(t *testing.T) {
	// Every path of the k8s backend and the image validator runs against the real API server
	// through a client that records the grant each request needs; the Role must allow all of
	// them and nothing else. (The test cluster authorizes everything, so the comparison is
	// ours: it is what the RBAC authorizer would do with these rules.)
	c := kube.Cluster(t)
	ns := c.Namespace(t)
	rec := newCallRecorder()
	cfg := rest.CopyConfig(c.RESTConfig)
	cfg.Wrap(rec.wrap)
	client, err := kubeclient.New(cfg) // the production client, so its calls are what is recorded
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	p := k8s.New(k8s.Config{Namespace: ns, CallbackURL: "http://cb"}, client, nil)
	// Before the cache runs, ready replicas are read from the API.
	if n, err := p.ReadyReplicas(ctx, "echo"); err != nil || n != 0 {
		t.Fatalf("ReadyReplicas before provisioning = %d, %v", n, err)
	}
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- p.Run(runCtx) }()
	defer func() {
		stop()
		<-ran
	}()
	syncCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if !p.WaitForCacheSync(syncCtx) {
		t.Fatal("deployment cache did not sync")
	}
	steps := []struct {
		name string
		do   func() error
	}{
		{"provision with HPA (create)", func() error { _, err := p.Provision(ctx, hpaSpec(function.StrategyHPA)); return err }},
		{"provision again (patch)", func() error { _, err := p.Provision(ctx, hpaSpec(function.StrategyHPA)); return err }},
		{"provision without HPA (delete stale HPA)", func() error {
			_, err := p.Provision(ctx, hpaSpec(function.StrategyInternal))
			return err
		}},
		{"set replicas", func() error { return p.SetReplicas(ctx, "echo", 2) }},
		{"ready replicas", func() error { _, err := p.ReadyReplicas(ctx, "echo"); return err }},
		{"deprovision", func() error { return p.Deprovision(ctx, "echo") }},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
	}
	// The informer's watch starts right after its list; give it the moment it needs.
	deadline := time.Now().Add(10 * time.Second)
	for calls, _ := rec.snapshot(); !calls[grant{"apps", "deployments", "watch"}] && time.Now().Before(deadline); calls, _ = rec.snapshot() {
		time.Sleep(10 * time.Millisecond)
	}

	// Image validation: nothing runs pods here, so the probe pod stays pending until the
	// (fake) timeout; it is created, polled and deleted.
	clock := &fakeClock{now: time.Unix(0, 0)}
	v := imagevalidator.New(imagevalidator.Config{
		Namespace: ns, PollInterval: time.Second, Timeout: 2 * time.Second, Now: clock.Now, Wait: clock.Wait,
	}, client, nil)
	if err := v.Validate(ctx, hpaSpec(function.StrategyNone)); err == nil || !strings.Contains(err.Error(), "Timed out") {
		t.Fatalf("Validate = %v, want the timeout of a pending probe pod", err)
	}

	used, clusterScoped := rec.snapshot()
	t.Logf("calls made: %v", sortedGrants(used))
	for _, role := range []struct {
		source string
		m      func(t *testing.T) manifest
	}{
		{"deploy/k8s", func(t *testing.T) manifest { return loadRaw(t) }},
		{"chart", func(t *testing.T) manifest { return renderChart(t, "nanofaas", "", "") }},
	} {
		t.Run(role.source, func(t *testing.T) {
			granted, bad := grants(mustTyped[rbacv1.Role](t, role.m(t), "Role", roleName).Rules)
			for _, b := range bad {
				t.Error(b)
			}
			for _, r := range clusterScoped {
				t.Errorf("the control plane calls %s, which a namespaced Role cannot grant", r)
			}
			for g := range used {
				if !granted[g] {
					t.Errorf("the Role lacks %v, which the control plane uses", g)
				}
			}
			for g := range granted {
				if !used[g] {
					t.Errorf("the Role grants %v, which the control plane never uses", g)
				}
			}
		})
	}
}

func TestGrants_ExpandRulesAndFlagWhatARoleMustNotNeed(t *testing.T) {
	got, bad := grants([]rbacv1.PolicyRule{
		{APIGroups: []string{"", "apps"}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}},
		{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"*"}},
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}, ResourceNames: []string{"p"}},
	})
	want := []string{"* core/services", "get apps/pods", "get core/pods", "list apps/pods", "list core/pods"}
	if s := sortedGrants(got); !slices.Equal(s, want) {
		t.Errorf("grants = %q, want %q", s, want)
	}
	if len(bad) != 2 || !strings.Contains(bad[0], "wildcard") || !strings.Contains(bad[1], "resourceNames") {
		t.Errorf("flagged = %q, want the wildcard and the resourceNames rules", bad)
	}
}
