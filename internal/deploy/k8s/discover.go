package k8s

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/nanofaas/control-plane/internal/kubeclient"
)

// ServiceAccountDir is where Kubernetes mounts a pod's service-account credentials.
const ServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// ErrNoCluster means no cluster configuration was found: not in a pod, no KUBECONFIG file and no
// ~/.kube/config.
var ErrNoCluster = errors.New("no Kubernetes cluster configuration found (in-cluster service account, KUBECONFIG, ~/.kube/config)")

// Sources says where Discover looks; DefaultSources is the real process environment.
type Sources struct {
	Getenv            func(string) string
	Home              string // "" = no ~/.kube/config
	ServiceAccountDir string // "" = ServiceAccountDir
}

// DefaultSources reads the process environment, home directory and the standard mount point.
func DefaultSources() Sources {
	home, _ := os.UserHomeDir() // no home just means no ~/.kube/config
	return Sources{Getenv: os.Getenv, Home: home, ServiceAccountDir: ServiceAccountDir}
}

// Cluster is a discovered cluster configuration.
type Cluster struct {
	REST   *rest.Config
	Client kubeclient.Interface
	// Namespace is the client's own namespace: the service account's in a pod, the current
	// context's from a kubeconfig ("" when the context sets none).
	Namespace string
	// Source says where the configuration came from, for logs ("in-cluster" or file paths).
	Source string
}

// Discover finds the cluster configuration in D10's order: in-cluster service account (a token
// file exists), else the files listed in KUBECONFIG, else ~/.kube/config. It returns ErrNoCluster
// when there is none, and another error when one exists but cannot be used.
func Discover(src Sources) (*Cluster, error) {
	if src.Getenv == nil {
		src.Getenv = func(string) string { return "" }
	}
	if src.ServiceAccountDir == "" {
		src.ServiceAccountDir = ServiceAccountDir
	}
	var (
		cl  *Cluster
		err error
	)
	if exists(filepath.Join(src.ServiceAccountDir, "token")) {
		cl, err = inCluster(src)
	} else {
		cl, err = fromKubeconfig(src)
	}
	if err != nil {
		return nil, err
	}
	if cl.Client, err = kubeclient.New(cl.REST); err != nil {
		return nil, fmt.Errorf("k8s: client from %s: %w", cl.Source, err)
	}
	return cl, nil
}

// inCluster mirrors rest.InClusterConfig with an injectable mount point: API server from
// KUBERNETES_SERVICE_HOST/PORT, bearer token file (re-read by client-go on rotation), CA file.
func inCluster(src Sources) (*Cluster, error) {
	host, port := src.Getenv("KUBERNETES_SERVICE_HOST"), src.Getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return nil, errors.New("k8s: in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set")
	}
	tokenFile := filepath.Join(src.ServiceAccountDir, "token")
	token, err := os.ReadFile(tokenFile)
	if err != nil {
		return nil, fmt.Errorf("k8s: in-cluster: %w", err)
	}
	if strings.TrimSpace(string(token)) == "" {
		return nil, fmt.Errorf("k8s: in-cluster: service-account token %s is blank", tokenFile)
	}
	cfg := &rest.Config{
		Host:            "https://" + net.JoinHostPort(host, port),
		BearerToken:     strings.TrimSpace(string(token)),
		BearerTokenFile: tokenFile,
	}
	if ca := filepath.Join(src.ServiceAccountDir, "ca.crt"); exists(ca) {
		cfg.TLSClientConfig.CAFile = ca
	}
	ns, _ := os.ReadFile(filepath.Join(src.ServiceAccountDir, "namespace")) // absent = unknown
	return &Cluster{REST: cfg, Namespace: strings.TrimSpace(string(ns)), Source: "in-cluster"}, nil
}

// fromKubeconfig loads the existing files of KUBECONFIG (a path list), or ~/.kube/config.
func fromKubeconfig(src Sources) (*Cluster, error) {
	var paths []string
	if env := src.Getenv("KUBECONFIG"); env != "" {
		for _, p := range filepath.SplitList(env) {
			if p != "" && exists(p) {
				paths = append(paths, p)
			}
		}
	} else if src.Home != "" {
		if p := filepath.Join(src.Home, ".kube", "config"); exists(p) {
			paths = append(paths, p)
		}
	}
	if len(paths) == 0 {
		return nil, ErrNoCluster
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{Precedence: paths}, &clientcmd.ConfigOverrides{})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("k8s: kubeconfig %s: %w", strings.Join(paths, string(filepath.ListSeparator)), err)
	}
	var ns string // the current context's own namespace, not client-go's "default" fallback
	if raw, err := cc.RawConfig(); err == nil {
		if c := raw.Contexts[raw.CurrentContext]; c != nil {
			ns = c.Namespace
		}
	}
	return &Cluster{REST: cfg, Namespace: ns, Source: strings.Join(paths, string(filepath.ListSeparator))}, nil
}

func exists(path string) bool {
	info, err := os.Stat(path)
	return err == nil && !info.IsDir()
}
