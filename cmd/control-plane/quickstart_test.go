package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nanofaas/control-plane/internal/proctree"
	"github.com/nanofaas/control-plane/internal/syncbuffer"
)

// quickstartBlock returns the shell block between the README's quickstart markers.
func quickstartBlock(t *testing.T, readme string) string {
	t.Helper()
	start := strings.Index(readme, "<!-- quickstart:start -->")
	end := strings.Index(readme, "<!-- quickstart:end -->")
	if start < 0 || end < start {
		t.Fatal("README.md lacks the quickstart markers")
	}
	block := readme[start:end]
	open := strings.Index(block, "```sh\n")
	closing := strings.LastIndex(block, "```")
	if open < 0 || closing <= open {
		t.Fatal("the quickstart block has no ```sh fence")
	}
	return block[open+len("```sh\n") : closing]
}

// TestQuickstart_READMECommandsWork starts the real binary as `make run` does (process backend,
// examples registered, repository root as working directory) and runs the README's quickstart
// block, with the ports rewritten to free ones. On SIGTERM every function process must be gone.
func TestQuickstart_READMECommandsWork(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is required by the README quickstart (CI installs it)")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	for _, ex := range []string{"word-stats", "json-transform"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(root, "bin", "examples", ex), "./examples/"+ex)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building %s: %v\n%s", ex, err, out)
		}
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	apiPort, mgmtPort := freePort(t), freePort(t)
	script := quickstartBlock(t, string(readme))
	script = strings.ReplaceAll(script, "localhost:8080", "localhost:"+strconv.Itoa(apiPort))
	script = strings.ReplaceAll(script, "localhost:8081", "localhost:"+strconv.Itoa(mgmtPort))

	p := &process{cmd: exec.Command(binaryPath, "--register-examples", "--nanofaas.deployment.default-backend=process"), output: &syncbuffer.Buffer{}, exited: make(chan struct{})}
	p.cmd.Dir = root
	p.cmd.Env = append(os.Environ(), "SERVER_PORT="+strconv.Itoa(apiPort), "MANAGEMENT_SERVER_PORT="+strconv.Itoa(mgmtPort))
	p.cmd.Stdout, p.cmd.Stderr = p.output, p.output
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
	})
	waitReady(t, p, "http://127.0.0.1:"+strconv.Itoa(mgmtPort))
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(p.output.String(), "Registered example functions") {
		if time.Now().After(deadline) {
			t.Fatalf("examples not registered in time\n%s", p.output)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(p.output.String(), "word-stats:invoke") {
		t.Errorf("make run does not print ready-to-paste commands:\n%s", p.output)
	}

	sh := exec.Command("sh", "-c", script)
	out, err := sh.CombinedOutput()
	if err != nil {
		t.Fatalf("quickstart block failed: %v\n%s\ncontrol plane:\n%s", err, out, p.output)
	}
	got := string(out)
	for _, want := range []string{
		`"status":"success","output":{"wordCount":5,"uniqueWords":4,"topWords":[{"word":"the","count":2}`,
		`"output":{"wordCount":2,"uniqueWords":2`,
		`{"function":"word-stats","replicas":3}`,
		`"output":{"upper":"HELLO FROM SH"}`,
		`function_success_total{function="word-stats"} 2`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("quickstart output lacks %s\noutput:\n%s", want, got)
		}
	}

	// Replicas run under supervisor shells: every process below the control plane counts.
	kids := proctree.Descendants(p.cmd.Process.Pid)
	if len(kids) < 2 {
		t.Errorf("expected function replicas below the control plane, found %v", kids)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.wait(t, 20*time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, p.output)
	}
	for _, pid := range kids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("function process %d outlived the control plane", pid)
		}
	}
}
