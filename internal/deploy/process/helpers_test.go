package process

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/nanofaas/control-plane/internal/function"
	"github.com/nanofaas/control-plane/internal/syncbuffer"
)

// testRuntime is the path of the test runtime binary built by TestMain.
var testRuntime string

func TestMain(m *testing.M) {
	if pidFile := os.Getenv(helperCPEnv); pidFile != "" {
		os.Exit(runHelperControlPlane(pidFile, os.Getenv(helperWatchdogEnv), os.Getenv(helperRuntimeEnv)))
	}
	dir, err := os.MkdirTemp("", "nanofaas-testruntime-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	testRuntime = filepath.Join(dir, "testruntime")
	build := exec.Command("go", "build", "-o", testRuntime, "./testdata/testruntime")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building test runtime: %v\n%s", err, out)
		_ = os.RemoveAll(dir)
		os.Exit(2)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// testProvider is a provider with short timings whose log is kept; it is closed at cleanup,
// and the test checks that nothing it started survives.
type testProvider struct {
	*Provider
	log *syncbuffer.Buffer
}

func newTestProvider(t *testing.T, mods ...func(*Config)) *testProvider {
	t.Helper()
	log := &syncbuffer.Buffer{}
	cfg := Config{
		ReadinessTimeout:  10 * time.Second,
		RestartBackoff:    50 * time.Millisecond,
		MaxRestartBackoff: 400 * time.Millisecond,
		StopGrace:         2 * time.Second,
		Environ:           []string{"PATH=" + os.Getenv("PATH")},
		Logger:            slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, m := range mods {
		m(&cfg)
	}
	p := New(cfg)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return &testProvider{Provider: p, log: log}
}

func ptr[T any](v T) *T { return &v }

// httpSpec is a resolved DEPLOYMENT spec running the test runtime with env.
func httpSpec(name string, env map[string]string) *function.Spec {
	return &function.Spec{
		Name:          name,
		Image:         "ignored:latest",
		Command:       []string{testRuntime},
		Env:           env,
		TimeoutMs:     ptr(30000),
		ExecutionMode: ptr(function.ModeDeployment),
		RuntimeMode:   ptr(function.RuntimeHTTP),
	}
}

// withMinReplicas sets scalingConfig.minReplicas.
func withMinReplicas(s *function.Spec, n int) *function.Spec {
	s.ScalingConfig = &function.ScalingConfig{MinReplicas: ptr(n), MaxReplicas: ptr(10)}
	return s
}

// watchdogSpec is a resolved DEPLOYMENT spec served by the built-in watchdog running
// `testruntime handler <mode>`.
func watchdogSpec(name string, mode function.RuntimeMode, handlerMode string, timeoutMs int) *function.Spec {
	return &function.Spec{
		Name:           name,
		Image:          "ignored:latest",
		Command:        []string{},
		Env:            map[string]string{},
		TimeoutMs:      ptr(timeoutMs),
		ExecutionMode:  ptr(function.ModeDeployment),
		RuntimeMode:    ptr(mode),
		RuntimeCommand: ptr(testRuntime + " handler " + handlerMode),
	}
}

func provision(t *testing.T, p *testProvider, spec *function.Spec) string {
	t.Helper()
	res, err := p.Provision(context.Background(), spec)
	if err != nil {
		t.Fatalf("Provision(%s): %v", spec.Name, err)
	}
	if res.BackendID != "process" || res.EffectiveMode != function.ModeDeployment {
		t.Fatalf("ProvisionResult = %+v", res)
	}
	return res.EndpointURL
}

// reply is an HTTP answer.
type reply struct {
	status int
	header http.Header
	body   string
}

// json decodes the body into a map.
func (r reply) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", r.body, err)
	}
	return m
}

// post sends an invocation the way the dispatcher does.
func post(t *testing.T, url, body string, header map[string]string) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Execution-Id", "exec-1")
	req.Header.Set("X-Dispatch-Attempt", "1")
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	return send(t, req)
}

func get(t *testing.T, url string) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return send(t, req)
}

func send(t *testing.T, req *http.Request) reply {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second}
	defer c.CloseIdleConnections()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{resp.StatusCode, resp.Header, string(b)}
}

// pidFile is the record the test runtime appends to (TR_PID_FILE).
type pidFile string

func newPIDFile(t *testing.T) pidFile { return pidFile(filepath.Join(t.TempDir(), "pids")) }

// read returns the runtime pids with their ports, and the grandchild pids.
func (f pidFile) read(t *testing.T) (pids []int, ports []int, grandchildren []int) {
	t.Helper()
	data, err := os.ReadFile(string(f))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		n, _ := strconv.Atoi(fields[1])
		switch fields[0] {
		case "pid":
			pids = append(pids, n)
			if len(fields) > 2 {
				port, _ := strconv.Atoi(fields[2])
				ports = append(ports, port)
			}
		case "grandchild":
			grandchildren = append(grandchildren, n)
		}
	}
	return pids, ports, grandchildren
}

// procState returns the state letter of pid from /proc ("" when the process does not exist).
func procState(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// pid (comm) S …: the state follows the last ')'.
	s := string(data)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2 : i+3]
	}
	return "?"
}

// assertChildGone fails unless pid, a direct child of this test process, has exited AND been
// reaped (a zombie still exists in /proc).
func assertChildGone(t *testing.T, pid int) {
	t.Helper()
	if st := procState(pid); st != "" {
		t.Errorf("child pid %d still exists (state %s)", pid, st)
	}
}

// assertEventuallyDead fails unless pid (a grandchild, reaped by whoever adopted it) is dead
// within 2 s; a zombie counts as dead.
func assertEventuallyDead(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		st := procState(pid)
		if st == "" || st == "Z" {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("pid %d still alive (state %s)", pid, st)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// assertPortFree fails unless port can be bound on loopback (no process kept it).
func assertPortFree(t *testing.T, port int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Errorf("port %d is still taken: %v", port, err)
		return
	}
	_ = ln.Close()
}

// assertRefused fails unless nothing accepts connections at the host:port of url.
func assertRefused(t *testing.T, rawURL string) {
	t.Helper()
	addr := strings.TrimPrefix(rawURL, "http://")
	if i := strings.IndexByte(addr, '/'); i >= 0 {
		addr = addr[:i]
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		_ = c.Close()
		t.Errorf("%s still accepts connections", addr)
	}
}

// eventually polls cond every 5 ms for up to 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// state returns the provider's state of name (nil when none).
func (p *testProvider) state(name string) *fnState { return p.fns.Lookup(name) }

// backends returns the proxy backends of name.
func (p *testProvider) backends(t *testing.T, name string) []string {
	t.Helper()
	st := p.state(name)
	if st == nil || st.proxy == nil {
		t.Fatalf("no proxy for %s", name)
	}
	return st.proxy.Backends()
}

// proxyURLFromLog returns the URL of the proxy the provider logged as started for fn.
func (p *testProvider) proxyURLFromLog(t *testing.T, fn string) string {
	t.Helper()
	for _, line := range strings.Split(p.log.String(), "\n") {
		if strings.Contains(line, `msg="proxy started"`) && strings.Contains(line, "function="+fn+" ") {
			if i := strings.Index(line, "url="); i >= 0 {
				return strings.Fields(line[i+4:])[0]
			}
		}
	}
	t.Fatalf("no proxy started for %s in log:\n%s", fn, p.log.String())
	return ""
}

func ready(t *testing.T, p *testProvider, name string) int {
	t.Helper()
	n, err := p.ReadyReplicas(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
