package deploytest

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/nanofaas/control-plane/internal/kubetest"
)

// kube is the real kube-apiserver of the dry-run and RBAC tests; it starts on first use, so
// runs of the static checks alone pay nothing.
var kube kubetest.Shared

func TestMain(m *testing.M) {
	code := kube.Run(m)
	if code == 0 {
		// klog starts its flush daemon in init; it is not ours to stop.
		if err := goleak.Find(goleak.IgnoreTopFunction("k8s.io/klog/v2.(*flushDaemon).run.func1")); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
