//go:build !unix

package kubetest

import (
	"os"
	"syscall"
)

// childSysProcAttr has no process groups to set up off unix.
func childSysProcAttr() *syscall.SysProcAttr { return nil }

// signalGroup can only kill the child itself off unix.
func signalGroup(pid int, _ syscall.Signal) {
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
	}
}
