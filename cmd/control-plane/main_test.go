package main

import (
	"encoding/json"
	"errors"
	"io"
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

	"github.com/nanofaas/control-plane/internal/syncbuffer"
)

// binaryPath is the real control-plane binary, built once by TestMain.
var binaryPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "control-plane-test")
	if err != nil {
		panic(err)
	}
	binaryPath = filepath.Join(dir, "control-plane")
	cmd := exec.Command("go", "build", "-o", binaryPath, ".")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		panic("go build: " + err.Error())
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func buildBinary(t *testing.T) string {
	t.Helper()
	return binaryPath
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

type process struct {
	cmd    *exec.Cmd
	output *syncbuffer.Buffer
	exited chan struct{} // closed when the process has exited; err is set before
	err    error
}

// wait returns the exit error, or fails the test if the process runs past d.
func (p *process) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case <-p.exited:
		return p.err
	case <-time.After(d):
		t.Fatalf("control plane still running after %s\n%s", d, p.output)
		return nil
	}
}

func start(t *testing.T, bin string, env []string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(bin, args...), output: &syncbuffer.Buffer{}, exited: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout = p.output
	p.cmd.Stderr = p.output
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
	return p
}

func get(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func waitReady(t *testing.T, p *process, mgmt string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(mgmt + "/actuator/health/readiness")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-p.exited:
			t.Fatalf("control plane exited early: %v\n%s", p.err, p.output)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("control plane not ready in time\n%s", p.output)
}

func TestBinary_ServesHealthAndJSON404ThenStopsCleanlyOnSIGTERM(t *testing.T) {
	bin := buildBinary(t)
	apiPort, mgmtPort := freePort(t), freePort(t)
	p := start(t, bin, []string{
		"SERVER_PORT=" + strconv.Itoa(apiPort),
		"MANAGEMENT_SERVER_PORT=" + strconv.Itoa(mgmtPort),
		"NANOFAAS_SHUTDOWN_GRACE=5s",
	})
	api := "http://127.0.0.1:" + strconv.Itoa(apiPort)
	mgmt := "http://127.0.0.1:" + strconv.Itoa(mgmtPort)
	waitReady(t, p, mgmt)

	status, body, _ := get(t, mgmt+"/actuator/health")
	if status != 200 || body != `{"status":"UP","groups":["liveness","readiness"]}` {
		t.Errorf("health = %d %s", status, body)
	}
	status, body, _ = get(t, mgmt+"/actuator/health/liveness")
	if status != 200 || body != `{"status":"UP"}` {
		t.Errorf("liveness = %d %s", status, body)
	}
	status, body, hdr := get(t, api+"/no/such/route")
	if status != 404 || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
		t.Errorf("unknown route = %d %q %s", status, hdr.Get("Content-Type"), body)
	}
	var errBody map[string]string
	if err := json.Unmarshal([]byte(body), &errBody); err != nil || errBody["error"] != "404 NOT_FOUND" || errBody["message"] == "" {
		t.Errorf("404 body = %s (%v)", body, err)
	}
	status, body, _ = get(t, mgmt+"/actuator/prometheus")
	if status != 200 || !strings.Contains(body, "go_goroutines") {
		t.Errorf("prometheus = %d, missing go_goroutines", status)
	}
	if !strings.Contains(p.output.String(), "Loaded control-plane modules") {
		t.Errorf("start-up log does not list the loaded modules:\n%s", p.output)
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.wait(t, 10*time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, p.output)
	}
}

func TestBinary_InvalidConfigurationStopsStartUpNamingThePropertyAndValue(t *testing.T) {
	bin := buildBinary(t)
	p := start(t, bin, []string{"NANOFAAS_DEFAULTS_TIMEOUT_MS=abc", "SERVER_PORT=0", "MANAGEMENT_SERVER_PORT=0"})
	var exit *exec.ExitError
	if err := p.wait(t, 10*time.Second); !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("want non-zero exit, got %v", err)
	}
	out := p.output.String()
	for _, want := range []string{"nanofaas.defaults.timeoutMs", `"abc"`, "NANOFAAS_DEFAULTS_TIMEOUT_MS"} {
		if !strings.Contains(out, want) {
			t.Errorf("error output does not mention %s:\n%s", want, out)
		}
	}
}

func TestBinary_UnknownModuleStopsStartUp(t *testing.T) {
	bin := buildBinary(t)
	p := start(t, bin, []string{"NANOFAAS_CONTROL_PLANE_MODULES=async-queue,warp-drive", "SERVER_PORT=0", "MANAGEMENT_SERVER_PORT=0"})
	if err := p.wait(t, 10*time.Second); err == nil {
		t.Fatal("want non-zero exit")
	}
	if !strings.Contains(p.output.String(), "warp-drive") {
		t.Errorf("error output does not name the unknown module:\n%s", p.output)
	}
}
