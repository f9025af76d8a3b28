package kubetest

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// kube is this test binary's shared cluster.
var kube Shared

func TestMain(m *testing.M) {
	code := kube.Run(m)
	if code == 0 {
		// After Run the cluster is gone, so client connections must be too.
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
