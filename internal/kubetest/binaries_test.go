package kubetest

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKubeVersion_MatchesToolsModule(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "..", "tools", "kube", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var pinned string
	for sc := bufio.NewScanner(f); sc.Scan(); {
		if fields := strings.Fields(sc.Text()); len(fields) >= 2 && fields[0] == "k8s.io/kubernetes" {
			pinned = fields[1]
		}
	}
	if pinned != KubeVersion {
		t.Fatalf("tools/kube/go.mod pins k8s.io/kubernetes %q, KubeVersion is %q", pinned, KubeVersion)
	}
}

// binDir makes a dir holding the named files with the given mode.
func binDir(t *testing.T, mode os.FileMode, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLookupBinaries_SkipsOnlyWhenMissingAndOptedOut(t *testing.T) {
	full := binDir(t, 0o755, "kube-apiserver", "etcd")
	partial := binDir(t, 0o755, "kube-apiserver")
	notExec := binDir(t, 0o644, "kube-apiserver", "etcd")
	home := t.TempDir()
	homeBins := defaultBinDir(home)
	if err := os.MkdirAll(homeBins, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"kube-apiserver", "etcd"} {
		if err := os.WriteFile(filepath.Join(homeBins, n), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		name      string
		env       map[string]string
		home      string
		wantDir   string // dir of the found binaries; "" when none
		wantSkip  bool
		wantErrIn string
	}{
		{name: "env dir with both binaries", env: map[string]string{EnvBinDir: full}, wantDir: full},
		{name: "present binaries are used even when skipping is allowed", env: map[string]string{EnvBinDir: full, EnvSkip: "1"}, wantDir: full},
		{name: "default cache dir under home", home: home, wantDir: homeBins},
		{name: "missing binary fails and says how to build", env: map[string]string{EnvBinDir: partial}, wantErrIn: "make kube-binaries"},
		{name: "missing binary skips with NANOFAAS_SKIP_KUBE=1", env: map[string]string{EnvBinDir: partial, EnvSkip: "1"}, wantSkip: true},
		{name: "skip needs exactly 1", env: map[string]string{EnvBinDir: partial, EnvSkip: "true"}, wantErrIn: "make kube-binaries"},
		{name: "empty default dir fails", home: t.TempDir(), wantErrIn: "kube-" + KubeVersion},
		{name: "non-executable binary fails even when skipping is allowed", env: map[string]string{EnvBinDir: notExec, EnvSkip: "1"}, wantErrIn: "not an executable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			getenv := func(k string) string { return tc.env[k] }
			b, skip, err := lookupBinaries(getenv, tc.home)
			if (skip != "") != tc.wantSkip {
				t.Fatalf("skip = %q, want skip %v", skip, tc.wantSkip)
			}
			if tc.wantErrIn != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErrIn) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErrIn)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tc.wantDir == "" {
				return
			}
			want := binaries{apiserver: filepath.Join(tc.wantDir, "kube-apiserver"), etcd: filepath.Join(tc.wantDir, "etcd")}
			if b != want {
				t.Fatalf("binaries = %+v, want %+v", b, want)
			}
		})
	}
}

func TestFindBinaries_MissingIsDistinguishable(t *testing.T) {
	_, err := findBinaries(func(string) string { return "" }, t.TempDir())
	if !errors.Is(err, errBinariesMissing) {
		t.Fatalf("err = %v, want errBinariesMissing", err)
	}
}
