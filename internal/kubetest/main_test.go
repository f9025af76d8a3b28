package kubetest

import (
	"os"
	"testing"
)

// kube is this test binary's shared cluster.
var kube Shared

func TestMain(m *testing.M) {
	os.Exit(kube.RunCheckingLeaks(m))
}
