package kubetest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Cluster is a running etcd + kube-apiserver pair. The client credentials
// belong to a token user in group system:masters and authorization is
// AlwaysAllow, so every request is permitted.
//
// Nothing but the apiserver runs: no kubelet, scheduler or controllers.
// Deployments never get ReplicaSets or Pods, deleted namespaces stay
// Terminating, and readiness is simulated by writing status through the
// status subresource (see the package tests).
type Cluster struct {
	// Kubeconfig is the path of a kubeconfig file for the cluster (bearer
	// token, insecure-skip-tls-verify).
	Kubeconfig string
	// RESTConfig is built from Kubeconfig with client-side rate limiting off.
	// Copy it (rest.CopyConfig) before changing it: the cluster is shared.
	RESTConfig *rest.Config
	// Clientset is a typed client over RESTConfig.
	Clientset kubernetes.Interface

	etcd      *process
	apiserver *process
}

const (
	// startTimeout bounds one cluster start; it takes a few seconds, more
	// on a loaded CI machine.
	startTimeout = 2 * time.Minute
	// stopGrace is how long each process gets to exit after SIGTERM.
	stopGrace = 10 * time.Second
	// pollInterval paces the readiness probes.
	pollInterval = 50 * time.Millisecond
	// startAttempts retries a start that lost a free-port race.
	startAttempts = 3
	// adminUser is the token user the harness authenticates as.
	adminUser = "kubetest-admin"
)

// errPortInUse marks a start that failed because a picked port was taken
// between picking and binding; such a start is retried with new ports.
var errPortInUse = errors.New("port already in use")

// Start runs a dedicated cluster for t and stops it in t.Cleanup. Prefer
// Shared, which starts one cluster per test binary. Missing binaries fail
// the test, or skip it when NANOFAAS_SKIP_KUBE=1.
func Start(t testing.TB) *Cluster {
	t.Helper()
	bins := requireBinaries(t)
	ctx, cancel := context.WithTimeout(t.Context(), startTimeout)
	defer cancel()
	c, err := launch(ctx, bins, t.TempDir(), freePorts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kube-apiserver log tail:\n%s", c.apiserver.logTail(20))
		}
		c.stop()
	})
	return c
}

// portPicker returns n distinct loopback ports that are free right now.
type portPicker func(n int) ([]int, error)

// launch starts a cluster under parent, retrying with new ports when a
// picked port was taken before the child could bind it.
func launch(ctx context.Context, bins binaries, parent string, pick portPicker) (*Cluster, error) {
	var err error
	for range startAttempts {
		var dir string
		if dir, err = os.MkdirTemp(parent, "cluster-"); err != nil {
			return nil, fmt.Errorf("kubetest: %w", err)
		}
		var c *Cluster
		if c, err = launchOnce(ctx, bins, dir, pick); err == nil {
			return c, nil
		}
		if !errors.Is(err, errPortInUse) {
			return nil, err
		}
	}
	return nil, err
}

// launchOnce starts etcd, then kube-apiserver on freshly picked loopback
// ports, and waits until the apiserver reports ready.
func launchOnce(ctx context.Context, bins binaries, dir string, pick portPicker) (c *Cluster, err error) {
	ports, err := pick(3)
	if err != nil {
		return nil, err
	}
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	host := "https://127.0.0.1:" + strconv.Itoa(ports[2])

	token, err := randomToken()
	if err != nil {
		return nil, err
	}
	files, err := writeAuthFiles(dir, token)
	if err != nil {
		return nil, err
	}

	c = &Cluster{}
	defer func() {
		if err != nil {
			c.stop()
		}
	}()

	c.etcd, err = startProcess("etcd", bins.etcd, []string{
		"--name=kubetest",
		"--data-dir=" + filepath.Join(dir, "etcd-data"),
		"--listen-client-urls=" + etcdURL,
		"--advertise-client-urls=" + etcdURL,
		"--listen-peer-urls=" + peerURL,
		"--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=kubetest=" + peerURL,
		"--log-level=warn",
		// Test data is disposable; skipping fsync makes every write fast.
		"--unsafe-no-fsync",
	}, filepath.Join(dir, "etcd.log"))
	if err != nil {
		return c, err
	}
	probe := newProbeClient()
	defer probe.CloseIdleConnections()
	if err = waitReady(ctx, probe, c.etcd, etcdURL+"/health", ""); err != nil {
		return c, err
	}

	c.apiserver, err = startProcess("kube-apiserver", bins.apiserver, []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(ports[2]),
		"--cert-dir=" + filepath.Join(dir, "certs"),
		"--token-auth-file=" + files.tokens,
		"--authorization-mode=AlwaysAllow",
		"--disable-admission-plugins=ServiceAccount",
		"--service-account-key-file=" + files.saPublic,
		"--service-account-signing-key-file=" + files.saPrivate,
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-cluster-ip-range=10.0.0.0/24",
		// Nothing serves the "kubernetes" Service's endpoints; skip the
		// reconciler that would keep rewriting them.
		"--endpoint-reconciler-type=none",
		"--profiling=false",
	}, filepath.Join(dir, "kube-apiserver.log"))
	if err != nil {
		return c, err
	}
	if err = waitReady(ctx, probe, c.apiserver, host+"/readyz", token); err != nil {
		return c, err
	}

	c.Kubeconfig = filepath.Join(dir, "kubeconfig")
	if err = writeKubeconfig(c.Kubeconfig, host, token); err != nil {
		return c, err
	}
	if c.RESTConfig, err = clientcmd.BuildConfigFromFlags("", c.Kubeconfig); err != nil {
		return c, fmt.Errorf("kubetest: load kubeconfig: %w", err)
	}
	// Tests create objects in bursts; the default 5 QPS would throttle them.
	c.RESTConfig.QPS = -1
	if c.Clientset, err = kubernetes.NewForConfig(c.RESTConfig); err != nil {
		return c, fmt.Errorf("kubetest: clientset: %w", err)
	}
	return c, nil
}

// stop terminates the apiserver, then etcd; safe on a partly started cluster.
func (c *Cluster) stop() {
	if c.apiserver != nil {
		c.apiserver.stop(stopGrace)
	}
	if c.etcd != nil {
		c.etcd.stop(stopGrace)
	}
}

// freePorts reserves n distinct loopback ports by listening on all of them
// at once, then releases them for the children to bind.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("kubetest: pick port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// randomToken returns a fresh bearer token for the admin user.
func randomToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("kubetest: token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

type authFiles struct{ tokens, saPublic, saPrivate string }

// writeAuthFiles writes the static token file and a service-account key pair.
func writeAuthFiles(dir, token string) (authFiles, error) {
	f := authFiles{
		tokens:    filepath.Join(dir, "tokens.csv"),
		saPublic:  filepath.Join(dir, "sa.pub"),
		saPrivate: filepath.Join(dir, "sa.key"),
	}
	// Format: token,user,uid,"group1,group2".
	line := fmt.Sprintf("%s,%s,%s,\"system:masters\"\n", token, adminUser, adminUser)
	if err := os.WriteFile(f.tokens, []byte(line), 0o600); err != nil {
		return f, fmt.Errorf("kubetest: %w", err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return f, fmt.Errorf("kubetest: service-account key: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return f, fmt.Errorf("kubetest: service-account key: %w", err)
	}
	priv := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(f.saPrivate, priv, 0o600); err != nil {
		return f, fmt.Errorf("kubetest: %w", err)
	}
	if err := os.WriteFile(f.saPublic, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644); err != nil {
		return f, fmt.Errorf("kubetest: %w", err)
	}
	return f, nil
}

// writeKubeconfig writes a single-context kubeconfig for the admin token.
func writeKubeconfig(path, host, token string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kubetest"] = &clientcmdapi.Cluster{Server: host, InsecureSkipTLSVerify: true}
	cfg.AuthInfos[adminUser] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["kubetest"] = &clientcmdapi.Context{Cluster: "kubetest", AuthInfo: adminUser, Namespace: "default"}
	cfg.CurrentContext = "kubetest"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("kubetest: write kubeconfig: %w", err)
	}
	return nil
}

// newProbeClient is the HTTP client for readiness probes; the apiserver's
// serving certificate is self-signed.
func newProbeClient() *http.Client {
	return &http.Client{
		Timeout: 2 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
			DisableKeepAlives: true,
		},
	}
}

// waitReady polls url until it answers 200, p exits, or ctx ends.
func waitReady(ctx context.Context, client *http.Client, p *process, url, token string) error {
	// Whoever holds a port the child failed to bind may accept the probe's
	// connection and never answer; the child's exit must end that probe.
	probeCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-p.done:
			cancel()
		case <-probeCtx.Done():
		}
	}()
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	var lastErr error
	for {
		if lastErr = probe(probeCtx, client, url, token); lastErr == nil {
			return nil
		}
		select {
		case <-p.done:
			err := p.describeExit()
			if strings.Contains(p.logTail(30), "address already in use") {
				return fmt.Errorf("%w: %w", errPortInUse, err)
			}
			return err
		case <-ctx.Done():
			return fmt.Errorf("kubetest: %s not ready at %s: %w (last probe: %v); last log lines:\n%s",
				p.name, url, ctx.Err(), lastErr, p.logTail(30))
		case <-ticker.C:
		}
	}
}

// probe does one GET and wants a 200.
func probe(ctx context.Context, client *http.Client, url, token string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}
