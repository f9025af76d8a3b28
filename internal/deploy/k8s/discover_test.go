package k8s

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func kubeconfig(server, namespace string) string {
	ns := ""
	if namespace != "" {
		ns = "\n    namespace: " + namespace
	}
	return `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: ` + server + `
users:
- name: u
  user:
    token: secret
contexts:
- name: ctx
  context:
    cluster: c
    user: u` + ns + `
current-context: ctx
`
}

// selfSignedCA returns a PEM certificate usable as a CA file.
func selfSignedCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDiscover_FindsConfigurationInD10Order(t *testing.T) {
	home := t.TempDir()
	writeFile(t, filepath.Join(home, ".kube", "config"), kubeconfig("https://home.example:6443", "home-ns"))
	explicit := writeFile(t, filepath.Join(t.TempDir(), "kc"), kubeconfig("https://explicit.example:6443", ""))

	sa := t.TempDir()
	writeFile(t, filepath.Join(sa, "token"), "sa-token\n")
	writeFile(t, filepath.Join(sa, "namespace"), "nanofaas\n")
	writeFile(t, filepath.Join(sa, "ca.crt"), selfSignedCA(t))
	inClusterEnv := map[string]string{"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443", "KUBECONFIG": explicit}

	tests := []struct {
		name       string
		src        Sources
		wantHost   string
		wantNS     string
		wantSource string
		wantToken  string
	}{
		{"in-cluster service account wins", Sources{Getenv: env(inClusterEnv), Home: home, ServiceAccountDir: sa},
			"https://10.0.0.1:443", "nanofaas", "in-cluster", "sa-token"},
		{"KUBECONFIG before ~/.kube/config", Sources{Getenv: env(map[string]string{"KUBECONFIG": explicit}), Home: home, ServiceAccountDir: t.TempDir()},
			"https://explicit.example:6443", "", explicit, "secret"},
		{"KUBECONFIG path list skips missing files", Sources{Getenv: env(map[string]string{"KUBECONFIG": "/nope" + string(filepath.ListSeparator) + explicit}), ServiceAccountDir: t.TempDir()},
			"https://explicit.example:6443", "", explicit, "secret"},
		{"~/.kube/config with its context namespace", Sources{Getenv: env(nil), Home: home, ServiceAccountDir: t.TempDir()},
			"https://home.example:6443", "home-ns", filepath.Join(home, ".kube", "config"), "secret"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cl, err := Discover(tc.src)
			if err != nil {
				t.Fatal(err)
			}
			if cl.REST.Host != tc.wantHost || cl.Namespace != tc.wantNS || cl.Source != tc.wantSource || cl.REST.BearerToken != tc.wantToken {
				t.Fatalf("cluster = host %q ns %q source %q token %q; want %q %q %q %q",
					cl.REST.Host, cl.Namespace, cl.Source, cl.REST.BearerToken, tc.wantHost, tc.wantNS, tc.wantSource, tc.wantToken)
			}
			if cl.Client == nil {
				t.Fatal("no client")
			}
		})
	}
	t.Run("in-cluster verifies the API server with the mounted CA and re-reads the token file", func(t *testing.T) {
		cl, err := Discover(Sources{Getenv: env(inClusterEnv), ServiceAccountDir: sa})
		if err != nil {
			t.Fatal(err)
		}
		if cl.REST.TLSClientConfig.CAFile != filepath.Join(sa, "ca.crt") || cl.REST.TLSClientConfig.Insecure {
			t.Fatalf("TLS = %+v", cl.REST.TLSClientConfig)
		}
		if cl.REST.BearerTokenFile != filepath.Join(sa, "token") {
			t.Fatalf("token file = %q", cl.REST.BearerTokenFile)
		}
	})
}

func TestDiscover_NoConfigurationIsErrNoCluster(t *testing.T) {
	tests := []struct {
		name string
		src  Sources
	}{
		{"nothing anywhere", Sources{Getenv: env(nil), Home: t.TempDir(), ServiceAccountDir: t.TempDir()}},
		{"no home", Sources{Getenv: env(nil), ServiceAccountDir: t.TempDir()}},
		{"KUBECONFIG names only missing files (no fallback to home)", Sources{Getenv: env(map[string]string{"KUBECONFIG": "/nope/a"}), ServiceAccountDir: t.TempDir()}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Discover(tc.src); !errors.Is(err, ErrNoCluster) {
				t.Fatalf("err = %v, want ErrNoCluster", err)
			}
		})
	}
}

func TestDiscover_UnusableConfigurationIsAnError(t *testing.T) {
	blankSA := t.TempDir()
	writeFile(t, filepath.Join(blankSA, "token"), "  \n")
	okSA := t.TempDir()
	writeFile(t, filepath.Join(okSA, "token"), "tok")
	broken := writeFile(t, filepath.Join(t.TempDir(), "kc"), "this: [is not a kubeconfig")
	tests := []struct {
		name    string
		src     Sources
		wantErr string
	}{
		{"in-cluster without service host", Sources{Getenv: env(nil), ServiceAccountDir: okSA}, "KUBERNETES_SERVICE_HOST"},
		{"in-cluster with a blank token", Sources{Getenv: env(map[string]string{"KUBERNETES_SERVICE_HOST": "h", "KUBERNETES_SERVICE_PORT": "1"}), ServiceAccountDir: blankSA}, "is blank"},
		{"malformed kubeconfig", Sources{Getenv: env(map[string]string{"KUBECONFIG": broken}), ServiceAccountDir: t.TempDir()}, "kubeconfig"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Discover(tc.src)
			if err == nil || errors.Is(err, ErrNoCluster) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}
