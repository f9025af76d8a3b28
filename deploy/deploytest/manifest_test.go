package deploytest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Paths of the artifacts, relative to the repository root.
const (
	rawDir   = "deploy/k8s"
	chartDir = "deploy/helm/nanofaas"
)

// repoRoot is the directory holding go.mod, found upwards from the test's working directory.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

func readRepoFile(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// manifest is the objects of a stream of YAML documents, in order.
type manifest []*unstructured.Unstructured

// decodeManifest splits data into YAML documents and decodes each non-empty one; every object
// must have apiVersion, kind and name. source names data in failures.
func decodeManifest(t testing.TB, source string, data []byte) manifest {
	t.Helper()
	var out manifest
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: document %d: %v", source, i, err)
		}
		js, err := yaml.YAMLToJSONStrict(doc) // duplicate keys are errors
		if err != nil {
			t.Fatalf("%s: document %d: %v", source, i, err)
		}
		if s := string(bytes.TrimSpace(js)); s == "null" || s == "{}" {
			continue // only comments, or an empty template
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(js); err != nil {
			t.Fatalf("%s: document %d: %v", source, i, err)
		}
		if u.GetAPIVersion() == "" || u.GetKind() == "" || u.GetName() == "" {
			t.Fatalf("%s: document %d lacks apiVersion, kind or metadata.name", source, i)
		}
		out = append(out, u)
	}
}

// loadRaw decodes deploy/k8s/*.yaml in file-name order, the order `kubectl apply -f` uses.
func loadRaw(t testing.TB) manifest {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot(t), rawDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no manifests in %s", rawDir)
	}
	slices.Sort(files)
	var out manifest
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, decodeManifest(t, filepath.Base(f), b)...)
	}
	return out
}

// key names an object in failures and lookups.
func key(u *unstructured.Unstructured) string { return u.GetKind() + "/" + u.GetName() }

// keys lists the objects' keys in order.
func (m manifest) keys() []string {
	out := make([]string, len(m))
	for i, u := range m {
		out[i] = key(u)
	}
	return out
}

// find returns the object of kind and name, or nil.
func (m manifest) find(kind, name string) *unstructured.Unstructured {
	for _, u := range m {
		if u.GetKind() == kind && u.GetName() == name {
			return u
		}
	}
	return nil
}

// typed decodes the object of kind and name into T, failing on fields T does not know (a typo
// in a manifest would otherwise be dropped silently).
func typed[T any](m manifest, kind, name string) (*T, error) {
	u := m.find(kind, name)
	if u == nil {
		return nil, fmt.Errorf("no %s/%s among %v", kind, name, m.keys())
	}
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, out, true); err != nil {
		return nil, fmt.Errorf("%s/%s: %w", kind, name, err)
	}
	return out, nil
}

// mustTyped is typed, failing t on error.
func mustTyped[T any](t testing.TB, m manifest, kind, name string) *T {
	t.Helper()
	out, err := typed[T](m, kind, name)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// deepCopy copies every object, for tests that edit them.
func (m manifest) deepCopy() manifest {
	out := make(manifest, len(m))
	for i, u := range m {
		out[i] = u.DeepCopy()
	}
	return out
}
