package imagevalidator

import (
	"os"
	"testing"

	"github.com/nanofaas/control-plane/internal/kubetest"
)

// kube is the real kube-apiserver shared by this package's integration tests; it starts on
// first use, so unit-test-only runs pay nothing.
var kube kubetest.Shared

func TestMain(m *testing.M) {
	os.Exit(kube.RunCheckingLeaks(m))
}
