package process

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// procField returns the value of a "Name:\tvalue" line of /proc/<pid>/status.
func procField(t *testing.T, pid int, name string) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s in /proc/%d/status", name, pid)
	return ""
}

// replicaSelf asks the test runtime behind base for its pid and environment.
func replicaSelf(t *testing.T, base string) (pid int, env map[string]string) {
	t.Helper()
	var got struct {
		Env map[string]string `json:"env"`
		PID int               `json:"pid"`
	}
	if err := json.Unmarshal([]byte(get(t, base+"/env").body), &got); err != nil {
		t.Fatal(err)
	}
	return got.PID, got.Env
}

func TestReplica_RunsUnderSupervisorAndTracksTheCommandPID(t *testing.T) {
	p := newTestProvider(t)
	provision(t, p, httpSpec("supervised", nil))
	r := p.state("supervised").replicas[0]
	pid, _ := replicaSelf(t, *r.base.Load())
	if got := int(r.pid.Load()); got != pid {
		t.Fatalf("provider tracks pid %d, the runtime is %d", got, pid)
	}
	ppid, _ := strconv.Atoi(procField(t, pid, "PPid"))
	if pgid := procPGID(pid); pgid != ppid {
		t.Fatalf("runtime %d: group %d, parent %d; want its supervisor to be both", pid, pgid, ppid)
	}
	if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", ppid)); !strings.HasPrefix(string(cmdline), supervisorShell+"\x00-c\x00") {
		t.Fatalf("supervisor cmdline %q", cmdline)
	}
	if n := len(groupMembers(t, ppid)); n != 3 {
		t.Fatalf("group %d has %d processes, want supervisor, watcher and command", ppid, n)
	}
	// The command is not started as an asynchronous list (which ignores SIGINT and SIGQUIT): it
	// ignores exactly what the control plane (here the test) ignored and passed on through exec.
	if ign, own := procField(t, pid, "SigIgn"), procField(t, os.Getpid(), "SigIgn"); ign != own {
		t.Fatalf("runtime starts with ignored signals %s, the control plane with %s", ign, own)
	}
	if !strings.Contains(p.log.String(), fmt.Sprintf("pid=%d pgid=%d", pid, ppid)) {
		t.Fatalf("start not logged with pid and pgid:\n%s", p.log.String())
	}
}

func TestDeprovision_LeavesNoSupervisorWatcherOrZombie(t *testing.T) {
	for _, tc := range []struct {
		name  string
		env   map[string]string
		grace time.Duration
		log   string
	}{
		{"graceful", nil, 2 * time.Second, "process replica stopped"},
		{"hard after the grace period", map[string]string{"TR_IGNORE_TERM": "1"}, 200 * time.Millisecond, "process replica killed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestProvider(t, func(c *Config) { c.StopGrace = tc.grace })
			provision(t, p, httpSpec("clean", tc.env))
			r := p.state("clean").replicas[0]
			members := groupMembers(t, procPGID(int(r.pid.Load())))
			if len(members) != 3 {
				t.Fatalf("group = %v", members)
			}
			if err := p.Deprovision(t.Context(), "clean"); err != nil {
				t.Fatal(err)
			}
			// Every one of them is reaped, by the provider or the supervisor: none waits for init.
			for _, pid := range members {
				assertChildGone(t, pid)
			}
			if !strings.Contains(p.log.String(), tc.log) {
				t.Fatalf("log lacks %q:\n%s", tc.log, p.log.String())
			}
			if out := string(r.out.Bytes()); strings.Contains(out, supervisorName) || strings.Contains(out, "Killed") {
				t.Fatalf("the supervisor wrote to the replica's output: %q", out)
			}
		})
	}
}

func TestProvision_RelativeCommandIsResolvedInWorkDir(t *testing.T) {
	p := newTestProvider(t, func(c *Config) { c.WorkDir = filepath.Dir(testRuntime) })
	spec := httpSpec("relative", nil)
	spec.Command = []string{"./" + filepath.Base(testRuntime)}
	url := provision(t, p, spec)
	if r := post(t, url, `{"input":1}`, nil); r.status != http.StatusOK {
		t.Fatalf("invoke: %d %s", r.status, r.body)
	}
}

func TestProvision_InjectsLoopbackHostOverridingInheritedAndSpecHost(t *testing.T) {
	p := newTestProvider(t, func(c *Config) { c.Environ = append(c.Environ, "HOST=0.0.0.0") })
	provision(t, p, httpSpec("hosted", map[string]string{"HOST": "0.0.0.0"}))
	_, env := replicaSelf(t, *p.state("hosted").replicas[0].base.Load())
	if env["HOST"] != "127.0.0.1" {
		t.Fatalf("HOST = %q, want 127.0.0.1", env["HOST"])
	}
}

func TestProvision_FnruntimeReplicaListensOnLoopbackOnly(t *testing.T) {
	p := newTestProvider(t)
	spec := httpSpec("fnrt", nil)
	spec.Command = []string{testRuntime, "fnruntime"}
	url := provision(t, p, spec)
	if r := post(t, url, `{"input":{"a":1}}`, nil); r.status != http.StatusOK || r.body != `{"a":1}` {
		t.Fatalf("invoke: %d %s", r.status, r.body)
	}
	base := *p.state("fnrt").replicas[0].base.Load()
	port := strings.TrimPrefix(base, "http://127.0.0.1:")
	if !strings.Contains(p.log.String(), "addr=127.0.0.1:"+port) {
		t.Fatalf("fnruntime did not report listening on 127.0.0.1:%s:\n%s", port, p.log.String())
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok || n.IP.IsLoopback() || n.IP.IsLinkLocalUnicast() {
			continue
		}
		if c, err := net.DialTimeout("tcp", net.JoinHostPort(n.IP.String(), port), time.Second); err == nil {
			_ = c.Close()
			t.Errorf("replica port %s answers on %s", port, n.IP)
		}
	}
}

func TestDescribeExit_NamesTheSignalBehindAShellStatus(t *testing.T) {
	run := func(script string) error { return exec.Command("/bin/sh", "-c", script).Run() }
	tests := []struct {
		err  error
		want string
	}{
		{nil, "exit status 0"},
		{run("exit 3"), "exit status 3"},
		{run("exit 143"), "exit status 143 (signal: terminated)"},
		{run("kill -KILL $$"), "signal: killed"},
		{errors.New("boom"), "boom"},
	}
	for _, tc := range tests {
		if got := describeExit(tc.err); got != tc.want {
			t.Errorf("describeExit(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
	var exitErr *exec.ExitError
	if !errors.As(run("exit 137"), &exitErr) || exitText(exitErr) != "signal killed (code 137)" {
		t.Errorf("exitText(137) = %q", exitText(exitErr))
	}
	if !errors.As(run("exit 2"), &exitErr) || exitText(exitErr) != "code 2" {
		t.Errorf("exitText(2) = %q", exitText(exitErr))
	}
	if _, ok := shellSignal(int(syscall.SIGTERM)); ok {
		t.Error("a small status is not a signal")
	}
}
