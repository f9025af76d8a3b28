// Package kubetest owns the integration-test harness that runs a REAL
// kube-apiserver backed by a REAL etcd (no kubelet, no controller-manager), so
// Kubernetes-facing code is tested against the genuine API semantics: defaulting,
// validation, resourceVersion conflicts, status and scale subresources.
//
// The binaries are built once by scripts/kube-binaries.sh (`make
// kube-binaries`) from the pinned module in tools/kube.
package kubetest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// KubeVersion is the kubernetes release tools/kube pins; it names the default
// binary cache dir, so it must match tools/kube/go.mod (a test checks it).
const KubeVersion = "v1.34.2"

// Environment variables the harness reads.
const (
	// EnvBinDir overrides where kube-apiserver and etcd are looked up.
	EnvBinDir = "NANOFAAS_KUBE_BIN_DIR"
	// EnvSkip set to "1" turns missing binaries into a skip instead of a failure.
	EnvSkip = "NANOFAAS_SKIP_KUBE"
)

// binaries are the absolute paths of the two executables the harness runs.
type binaries struct {
	apiserver string
	etcd      string
}

// defaultBinDir mirrors the default of scripts/kube-binaries.sh.
func defaultBinDir(home string) string {
	return filepath.Join(home, ".cache", "nanofaas", "kube-"+KubeVersion)
}

// errBinariesMissing marks a lookup failure that NANOFAAS_SKIP_KUBE=1 may turn
// into a skip; any other lookup error always fails the test.
var errBinariesMissing = errors.New("kube test binaries missing")

// findBinaries resolves the binary dir from the environment and checks both
// executables are there.
func findBinaries(getenv func(string) string, home string) (binaries, error) {
	dir := getenv(EnvBinDir)
	if dir == "" {
		if home == "" {
			return binaries{}, fmt.Errorf("%w: %s is unset and the home dir is unknown", errBinariesMissing, EnvBinDir)
		}
		dir = defaultBinDir(home)
	}
	b := binaries{
		apiserver: filepath.Join(dir, "kube-apiserver"),
		etcd:      filepath.Join(dir, "etcd"),
	}
	for _, p := range []string{b.apiserver, b.etcd} {
		info, err := os.Stat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return binaries{}, fmt.Errorf("%w: %s not found; run `make kube-binaries` "+
				"(scripts/kube-binaries.sh) or set %s, or set %s=1 to skip kube tests",
				errBinariesMissing, p, EnvBinDir, EnvSkip)
		case err != nil:
			return binaries{}, fmt.Errorf("kubetest: %w", err)
		case info.IsDir() || info.Mode().Perm()&0o111 == 0:
			return binaries{}, fmt.Errorf("kubetest: %s is not an executable file", p)
		}
	}
	return b, nil
}

// lookupBinaries decides what a test does about the binaries: use them, skip
// (only when missing and NANOFAAS_SKIP_KUBE=1), or fail.
func lookupBinaries(getenv func(string) string, home string) (b binaries, skip string, err error) {
	b, err = findBinaries(getenv, home)
	if errors.Is(err, errBinariesMissing) && getenv(EnvSkip) == "1" {
		return binaries{}, fmt.Sprintf("%s=1: %v", EnvSkip, err), nil
	}
	return b, "", err
}

// requireBinaries applies lookupBinaries to t using the process environment.
func requireBinaries(t testing.TB) binaries {
	t.Helper()
	home, _ := os.UserHomeDir() // "" is handled by findBinaries
	b, skip, err := lookupBinaries(os.Getenv, home)
	if skip != "" {
		t.Skip(skip)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}
