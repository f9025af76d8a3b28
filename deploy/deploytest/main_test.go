package deploytest

import (
	"os"
	"testing"

	"github.com/nanofaas/control-plane/internal/kubetest"
)

// kube is the real kube-apiserver of the dry-run and RBAC tests; it starts on first use, so
// runs of the static checks alone pay nothing.
var kube kubetest.Shared

func TestMain(m *testing.M) {
	os.Exit(kube.RunCheckingLeaks(m))
}
