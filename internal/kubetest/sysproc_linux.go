package kubetest

import "syscall"

// childSysProcAttr puts the child in its own process group and has the kernel
// kill it if the test binary dies without running its cleanups (e.g. on a
// `go test -timeout` panic), so no apiserver or etcd outlives the tests.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// signalGroup signals the whole process group led by pid.
func signalGroup(pid int, sig syscall.Signal) { _ = syscall.Kill(-pid, sig) }
