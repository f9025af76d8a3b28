//go:build unix && !linux

package kubetest

import "syscall"

// childSysProcAttr puts the child in its own process group (no Pdeathsig
// outside Linux).
func childSysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// signalGroup signals the whole process group led by pid.
func signalGroup(pid int, sig syscall.Signal) { _ = syscall.Kill(-pid, sig) }
