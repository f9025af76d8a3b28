package kubetest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

// Shared starts one cluster per test binary on first use and stops it when
// the tests end, so a package pays the start-up once. Declare one in the test
// package and let TestMain run the tests through it:
//
//	var kube kubetest.Shared
//
//	func TestMain(m *testing.M) { os.Exit(kube.Run(m)) }
//
//	func TestSomething(t *testing.T) {
//		c := kube.Cluster(t)
//		ns := c.Namespace(t)
//		...
//	}
//
// Tests share the cluster, so each should work in its own Namespace.
type Shared struct {
	once    sync.Once
	dir     string
	cluster *Cluster
	err     error
}

// Cluster returns the shared cluster, starting it on the first call. Missing
// binaries fail t, or skip it when NANOFAAS_SKIP_KUBE=1; a failed start fails
// every test that asks.
func (s *Shared) Cluster(t testing.TB) *Cluster {
	t.Helper()
	bins := requireBinaries(t)
	s.once.Do(func() { s.cluster, s.err = s.start(bins) })
	if s.err != nil {
		t.Fatalf("kubetest: shared cluster: %v", s.err)
	}
	return s.cluster
}

func (s *Shared) start(bins binaries) (*Cluster, error) {
	dir, err := os.MkdirTemp("", "kubetest-")
	if err != nil {
		return nil, fmt.Errorf("kubetest: %w", err)
	}
	s.dir = dir
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	return launch(ctx, bins, dir, freePorts)
}

// Run runs the tests, then stops the cluster if one was started, and returns
// m.Run's exit code. Check for goroutine leaks (goleak.Find) after it.
func (s *Shared) Run(m *testing.M) int {
	code := m.Run()
	s.Stop()
	return code
}

// RunCheckingLeaks is Run followed by a goroutine-leak check (goleak), failing a passing run
// that leaked. klog's flush daemon, started by its package init, is not the tests' to stop.
func (s *Shared) RunCheckingLeaks(m *testing.M) int {
	code := s.Run(m)
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreTopFunction("k8s.io/klog/v2.(*flushDaemon).run.func1")); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	return code
}

// Stop stops the cluster and removes its files. Call it only once no test
// uses the cluster any more; Run does.
func (s *Shared) Stop() {
	if s.cluster != nil {
		s.cluster.stop()
	}
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
	}
}
