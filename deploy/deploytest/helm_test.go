package deploytest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// Helm is built from the Go module proxy into a per-version cache dir by `make helm`:
//
//	GOBIN=$HOME/.cache/nanofaas/helm-v3.22.0 go install helm.sh/helm/v3/cmd/helm@v3.22.0
const (
	helmVersion = "v3.22.0"
	// envHelm is the path of a helm binary to use instead of the cached one.
	envHelm = "NANOFAAS_HELM"
	// envSkipHelm set to "1" turns a missing helm into a skip instead of a failure.
	envSkipHelm = "NANOFAAS_SKIP_HELM"
)

// errHelmMissing marks a lookup failure that NANOFAAS_SKIP_HELM=1 may turn into a skip.
var errHelmMissing = errors.New("helm missing")

// lookupHelm decides what a test does about helm: use path, skip (only when it is missing and
// NANOFAAS_SKIP_HELM=1), or fail with err.
func lookupHelm(getenv func(string) string, home string) (path, skip string, err error) {
	path = getenv(envHelm)
	if path == "" {
		if home == "" {
			err = fmt.Errorf("%w: %s is unset and the home dir is unknown", errHelmMissing, envHelm)
		}
		path = filepath.Join(home, ".cache", "nanofaas", "helm-"+helmVersion, "helm")
	}
	if err == nil {
		info, serr := os.Stat(path)
		switch {
		case errors.Is(serr, fs.ErrNotExist):
			err = fmt.Errorf("%w: %s not found; run `make helm` (go install helm.sh/helm/v3/cmd/helm@%s into "+
				"that dir), or set %s to a helm binary, or set %s=1 to skip the chart tests",
				errHelmMissing, path, helmVersion, envHelm, envSkipHelm)
		case serr != nil:
			err = serr
		case info.IsDir() || info.Mode().Perm()&0o111 == 0:
			err = fmt.Errorf("%s is not an executable file", path)
		}
	}
	if errors.Is(err, errHelmMissing) && getenv(envSkipHelm) == "1" {
		return "", fmt.Sprintf("%s=1: %v", envSkipHelm, err), nil
	}
	if err != nil {
		return "", "", err
	}
	return path, "", nil
}

func requireHelm(t testing.TB) string {
	t.Helper()
	home, _ := os.UserHomeDir() // "" is handled by lookupHelm
	path, skip, err := lookupHelm(os.Getenv, home)
	if skip != "" {
		t.Skip(skip)
	}
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// runHelm runs helm with args in a throw-away helm home, so no user config or repo cache is
// read or written, and returns its stdout.
func runHelm(t testing.TB, args ...string) []byte {
	t.Helper()
	helm := requireHelm(t)
	home := t.TempDir()
	cmd := exec.CommandContext(t.Context(), helm, args...)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, stderr.String(), stdout.String())
	}
	return stdout.Bytes()
}

// renderChart runs `helm template release` on the chart in namespace ns ("" = helm's default)
// with values (YAML, "" = the chart defaults).
func renderChart(t testing.TB, release, ns, values string) manifest {
	t.Helper()
	args := []string{"template", release, filepath.Join(repoRoot(t), chartDir)}
	if ns != "" {
		args = append(args, "--namespace", ns)
	}
	if values != "" {
		f := filepath.Join(t.TempDir(), "values.yaml")
		if err := os.WriteFile(f, []byte(values), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--values", f)
	}
	return decodeManifest(t, "helm template", runHelm(t, args...))
}

func TestLookupHelm_MissingBinaryFailsNamingMakeHelmUnlessSkipped(t *testing.T) {
	home := t.TempDir()
	installed := filepath.Join(t.TempDir(), "helm")
	if err := os.WriteFile(installed, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		env       map[string]string
		home      string
		wantPath  string
		wantSkip  bool
		wantInErr string
	}{
		{name: "cache dir empty", home: home, wantInErr: "make helm"},
		{name: "cache dir empty, skip set", home: home, env: map[string]string{envSkipHelm: "1"}, wantSkip: true},
		{name: "no home", wantInErr: envHelm},
		{name: "override", env: map[string]string{envHelm: installed}, wantPath: installed},
		{name: "override missing", env: map[string]string{envHelm: installed + "-x"}, wantInErr: "make helm"},
		{name: "override is a dir, skip set", env: map[string]string{envHelm: home, envSkipHelm: "1"}, wantInErr: "not an executable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path, skip, err := lookupHelm(func(k string) string { return tc.env[k] }, tc.home)
			if got := skip != ""; got != tc.wantSkip {
				t.Errorf("skip = %q, want skip %v", skip, tc.wantSkip)
			}
			if tc.wantInErr == "" && err != nil || tc.wantInErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantInErr)) {
				t.Errorf("err = %v, want one mentioning %q", err, tc.wantInErr)
			}
			if path != tc.wantPath {
				t.Errorf("path = %q, want %q", path, tc.wantPath)
			}
		})
	}
}

func TestChart_VersionsAre0170AndTheImageTagFollowsAppVersion(t *testing.T) {
	var chart struct {
		APIVersion string `json:"apiVersion"`
		Name       string `json:"name"`
		Version    string `json:"version"`
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(readRepoFile(t, chartDir+"/Chart.yaml"), &chart); err != nil {
		t.Fatal(err)
	}
	var values struct {
		ControlPlane struct {
			Image struct{ Tag string } `json:"image"`
		} `json:"controlPlane"`
	}
	if err := yaml.Unmarshal(readRepoFile(t, chartDir+"/values.yaml"), &values); err != nil {
		t.Fatal(err)
	}
	var p problems
	equal(&p, "apiVersion", chart.APIVersion, "v2")
	equal(&p, "name", chart.Name, "nanofaas")
	equal(&p, "version", chart.Version, "0.17.0")
	equal(&p, "appVersion", chart.AppVersion, "0.17.0")
	equal(&p, "values controlPlane.image.tag", values.ControlPlane.Image.Tag, "v"+chart.AppVersion)
	for _, msg := range p {
		t.Error(msg)
	}
}

func TestChart_LintsCleanInStrictMode(t *testing.T) {
	out := runHelm(t, "lint", "--strict", filepath.Join(repoRoot(t), chartDir))
	if !bytes.Contains(out, []byte("0 chart(s) failed")) {
		t.Errorf("helm lint:\n%s", out)
	}
}

func TestChart_DefaultValuesRenderTheSpec12Facts(t *testing.T) {
	for _, release := range []string{"nanofaas", "demo"} {
		t.Run(release, func(t *testing.T) {
			checkFacts(t, renderChart(t, release, "", ""), chartFacts(release))
		})
	}
}

func TestChart_RendersTheRawManifestsGivenTheirLimits(t *testing.T) {
	// Release "nanofaas" with the raw manifests' smaller limits must give the very same objects.
	rendered := renderChart(t, "nanofaas", "", `
controlPlane:
  resources:
    limits:
      cpu: 500m
      memory: 1Gi
`)
	raw := loadRaw(t)
	if !sameSet(rendered.keys(), raw.keys()) {
		t.Fatalf("rendered %v, raw manifests %v", rendered.keys(), raw.keys())
	}
	for _, r := range raw {
		got := rendered.find(r.GetKind(), r.GetName())
		if !equalJSON(t, got.Object, r.Object) {
			t.Errorf("%s differs:\nrendered %s\nraw      %s", key(r), mustJSON(t, got.Object), mustJSON(t, r.Object))
		}
	}
}

// equalJSON compares two decoded objects through their canonical JSON, so that number types
// and empty-vs-absent maps of the decoder do not matter.
func equalJSON(t testing.TB, a, b any) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(mustJSON(t, a), &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(mustJSON(t, b), &y); err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(mustJSON(t, x), mustJSON(t, y))
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestChart_ValuesChangeTheRenderedObjects(t *testing.T) {
	cases := []struct {
		name   string
		ns     string // helm --namespace
		values string
		facts  func(f *facts)
	}{
		{
			name: "release namespace when the chart does not create one", ns: "team-a",
			values: "namespace:\n  create: false\n",
			facts:  func(f *facts) { f.namespace, f.withNamespace = "team-a", false },
		},
		{
			name: "another created namespace", ns: "ignored",
			values: "namespace:\n  name: faas\n",
			facts:  func(f *facts) { f.namespace = "faas" },
		},
		{
			name:   "image",
			values: "controlPlane:\n  image:\n    repository: registry.local/cp\n    tag: dev\n    pullPolicy: Always\n",
			facts:  func(f *facts) { f.image, f.pullPolicy = "registry.local/cp:dev", corev1.PullAlways },
		},
		{
			name: "extraEnv after POD_NAMESPACE, in order",
			values: `controlPlane:
  extraEnv:
    - name: NANOFAAS_DEPLOYMENT_DEFAULT_BACKEND
      value: k8s
    - name: SYNC_QUEUE_ENABLED
      value: "true"
`,
			facts: func(f *facts) {
				f.extraEnv = []corev1.EnvVar{
					{Name: "NANOFAAS_DEPLOYMENT_DEFAULT_BACKEND", Value: "k8s"},
					{Name: "SYNC_QUEUE_ENABLED", Value: "true"},
				}
			},
		},
		{
			name:   "resources",
			values: "controlPlane:\n  resources:\n    limits:\n      cpu: 2\n      memory: 4Gi\n",
			facts:  func(f *facts) { f.limits = resources("2", "4Gi") },
		},
		{
			name:   "no scrape annotations",
			values: "prometheus:\n  scrape:\n    enabled: false\n",
			facts:  func(f *facts) { f.scrape = false },
		},
		{
			name:   "NodePort with fixed node ports",
			values: "controlPlane:\n  service:\n    type: NodePort\n    nodePorts:\n      http: 30080\n      actuator: 30081\n",
			facts:  func(f *facts) { f.serviceType, f.nodePorts = corev1.ServiceTypeNodePort, [2]int32{30080, 30081} },
		},
		{
			name:   "NodePort with allocated node ports",
			values: "controlPlane:\n  service:\n    type: NodePort\n",
			facts:  func(f *facts) { f.serviceType = corev1.ServiceTypeNodePort },
		},
		{
			name:   "node ports ignored for ClusterIP",
			values: "controlPlane:\n  service:\n    nodePorts:\n      http: 30080\n",
			facts:  func(*facts) {},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := chartFacts("rel")
			tc.facts(&want)
			checkFacts(t, renderChart(t, "rel", tc.ns, tc.values), want)
		})
	}
}

func TestChart_RBACAndServiceAccountCanBeLeftToTheCluster(t *testing.T) {
	cases := []struct {
		values string
		absent []string
	}{
		{"rbac:\n  create: false\n", []string{"Role/" + roleName, "RoleBinding/" + roleName}},
		{"serviceAccount:\n  create: false\n", []string{"ServiceAccount/" + saName}},
	}
	for _, tc := range cases {
		t.Run(strings.TrimSpace(tc.values), func(t *testing.T) {
			m := renderChart(t, "rel", "", tc.values)
			for _, k := range tc.absent {
				if slices.Contains(m.keys(), k) {
					t.Errorf("%s rendered with %q", k, tc.values)
				}
			}
			d := mustTyped[appsv1.Deployment](t, m, "Deployment", deploymentName)
			if got := d.Spec.Template.Spec.ServiceAccountName; got != saName {
				t.Errorf("serviceAccountName = %q, want %q", got, saName)
			}
		})
	}
}
