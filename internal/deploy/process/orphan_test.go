package process

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nanofaas/control-plane/internal/function"
	"github.com/nanofaas/control-plane/internal/syncbuffer"
)

// Environment of the helper control plane (the test binary re-executed by
// TestSIGKILLedControlPlane_LeavesNoReplicaOrGrandchild).
const (
	helperCPEnv       = "PROCESS_TEST_HELPER_CONTROL_PLANE" // the pid file its replicas append to
	helperWatchdogEnv = "PROCESS_TEST_HELPER_WATCHDOG"      // the pid file its watchdog handler appends to
	helperRuntimeEnv  = "PROCESS_TEST_HELPER_RUNTIME"       // the test runtime binary
)

// orphanCommand is the report's reproduction: a shell that leaves a grandchild behind and execs
// the runtime, which (TR_GRANDCHILD) starts one more.
const orphanCommand = `sleep 313 & echo "grandchild $!" >>"$TR_PID_FILE"; exec "$0"`

// runHelperControlPlane provisions two replicas of a function whose processes spawn
// grandchildren, and a watchdog function whose handler does the same and is left running; it
// prints "ready" once every process has recorded itself, then waits for its stdin to close. The
// test SIGKILLs it before.
func runHelperControlPlane(pidFile, wdPIDFile, runtime string) int {
	p := New(Config{
		Environ: []string{"PATH=" + os.Getenv("PATH")},
		Logger:  slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	spec := withMinReplicas(&function.Spec{
		Name:          "orphans",
		Image:         "ignored:latest",
		Command:       []string{"/bin/sh", "-c", orphanCommand, runtime},
		Env:           map[string]string{"TR_PID_FILE": pidFile, "TR_GRANDCHILD": "1"},
		TimeoutMs:     ptr(30000),
		ExecutionMode: ptr(function.ModeDeployment),
		RuntimeMode:   ptr(function.RuntimeHTTP),
	}, 2)
	if _, err := p.Provision(context.Background(), spec); err != nil {
		fmt.Fprintln(os.Stderr, "provision:", err)
		return 1
	}
	wdSpec := &function.Spec{
		Name:           "wd-orphans",
		Image:          "ignored:latest",
		Env:            map[string]string{"TR_PID_FILE": wdPIDFile},
		TimeoutMs:      ptr(60000),
		ExecutionMode:  ptr(function.ModeDeployment),
		RuntimeMode:    ptr(function.RuntimeSTDIO),
		RuntimeCommand: ptr(runtime + " handler spawn"),
	}
	res, err := p.Provision(context.Background(), wdSpec)
	if err != nil {
		fmt.Fprintln(os.Stderr, "provision watchdog:", err)
		return 1
	}
	go func() { // never answered: the handler outlives the helper
		req, _ := http.NewRequest(http.MethodPost, res.EndpointURL, strings.NewReader(`{"input":1}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Execution-Id", "orphan-1")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = resp.Body.Close()
		}
	}()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		data, _ := os.ReadFile(wdPIDFile)
		if strings.Count(string(data), "\n") >= 2 {
			break
		}
		if time.Now().After(deadline) {
			fmt.Fprintln(os.Stderr, "watchdog handler did not start")
			return 1
		}
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = p.Close(ctx)
	return 0
}

// procPGID returns the process group of pid from /proc (0 when pid does not exist).
func procPGID(pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	// After "(comm)": state ppid pgrp …
	f := strings.Fields(s[i+1:])
	if len(f) < 3 {
		return 0
	}
	pgid, _ := strconv.Atoi(f[2])
	return pgid
}

// groupMembers lists the live processes of process group pgid.
func groupMembers(t *testing.T, pgid int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if procPGID(pid) == pgid && procState(pid) != "Z" {
			pids = append(pids, pid)
		}
	}
	return pids
}

// alive reports the pids of pids that still run (a zombie has died).
func alive(pids []int) []int {
	var out []int
	for _, pid := range pids {
		if st := procState(pid); st != "" && st != "Z" {
			out = append(out, pid)
		}
	}
	return out
}

func TestSIGKILLedControlPlane_LeavesNoReplicaOrGrandchild(t *testing.T) {
	pids, wdPIDs := newPIDFile(t), newPIDFile(t)
	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), helperCPEnv+"="+string(pids), helperWatchdogEnv+"="+string(wdPIDs),
		helperRuntimeEnv+"="+testRuntime)
	stdin, err := helper.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stdin.Close() }()
	stdout, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var helperLog syncbuffer.Buffer
	helper.Stderr = &helperLog
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	reaped := false
	defer func() {
		if !reaped {
			_ = helper.Process.Kill()
			_ = helper.Wait()
		}
	}()

	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("helper control plane: %q, %v\n%s", line, err, helperLog.String())
	}
	runtimes, ports, grandchildren := pids.read(t)
	if len(runtimes) != 2 || len(grandchildren) != 4 {
		t.Fatalf("runtimes %v, grandchildren %v", runtimes, grandchildren)
	}
	handlers, _, handlerGrandchildren := wdPIDs.read(t)
	if len(handlers) != 1 || len(handlerGrandchildren) != 1 {
		t.Fatalf("watchdog handlers %v, grandchildren %v", handlers, handlerGrandchildren)
	}
	// Everything in the replicas' process groups, whatever the provider put there.
	seen := map[int]bool{}
	var watched []int
	watch := func(pids ...int) {
		for _, pid := range pids {
			if !seen[pid] {
				seen[pid] = true
				watched = append(watched, pid)
			}
		}
	}
	leaders := append(append([]int(nil), runtimes...), handlers...)
	watch(leaders...)
	watch(grandchildren...)
	watch(handlerGrandchildren...)
	for _, pid := range leaders {
		pgid := procPGID(pid)
		if pgid == 0 || pgid == helper.Process.Pid {
			t.Fatalf("process %d is in process group %d (helper %d)", pid, pgid, helper.Process.Pid)
		}
		watch(groupMembers(t, pgid)...)
	}
	t.Cleanup(func() { // never leave the machine with strays, even when the test fails
		for _, pid := range alive(watched) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	if a := alive(watched); len(a) != len(watched) {
		t.Fatalf("some of %v died before the control plane did", watched)
	}

	if err := helper.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()
	reaped = true
	killedAt := time.Now()

	const bound = 5 * time.Second
	for a := alive(watched); len(a) > 0; a = alive(watched) {
		if time.Since(killedAt) > bound {
			var desc []string
			for _, pid := range a {
				cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
				desc = append(desc, fmt.Sprintf("%d (%s)", pid, strings.ReplaceAll(strings.TrimSpace(string(cmdline)), "\x00", " ")))
			}
			t.Fatalf("%d s after the control plane was SIGKILLed these still run: %s", int(bound.Seconds()), strings.Join(desc, ", "))
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("%d processes gone %v after the control plane's SIGKILL", len(watched), time.Since(killedAt).Round(time.Millisecond))
	for _, port := range ports {
		eventually(t, "replica port to be released", func() bool {
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
			if err == nil {
				_ = ln.Close()
			}
			return err == nil
		})
	}
}
