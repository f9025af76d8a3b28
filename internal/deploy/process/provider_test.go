package process

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nanofaas/control-plane/internal/deploy"
	"github.com/nanofaas/control-plane/internal/dispatch"
	"github.com/nanofaas/control-plane/internal/execution"
	"github.com/nanofaas/control-plane/internal/failure"
	"github.com/nanofaas/control-plane/internal/function"
)

func TestIdentity_BackendProcessAlwaysAvailable(t *testing.T) {
	p := newTestProvider(t)
	if p.BackendID() != deploy.BackendProcess || !p.Available() {
		t.Fatalf("BackendID %q Available %v", p.BackendID(), p.Available())
	}
}

func TestSupports_CommandOrStdioFileWatchdog(t *testing.T) {
	p := newTestProvider(t)
	mk := func(mode function.ExecutionMode, rt function.RuntimeMode, cmd []string, rc *string) *function.Spec {
		return &function.Spec{Name: "f", Image: "i", Command: cmd, ExecutionMode: &mode, RuntimeMode: &rt, RuntimeCommand: rc}
	}
	tests := []struct {
		name string
		spec *function.Spec
		want bool
	}{
		{"deployment with command", mk(function.ModeDeployment, function.RuntimeHTTP, []string{"/bin/fn"}, nil), true},
		{"deployment without command (HTTP)", mk(function.ModeDeployment, function.RuntimeHTTP, []string{}, nil), false},
		{"blank command", mk(function.ModeDeployment, function.RuntimeHTTP, []string{"  "}, nil), false},
		{"HTTP with runtimeCommand only", mk(function.ModeDeployment, function.RuntimeHTTP, nil, ptr("/bin/h")), false},
		{"STDIO with runtimeCommand", mk(function.ModeDeployment, function.RuntimeSTDIO, nil, ptr("/bin/h arg")), true},
		{"FILE with runtimeCommand", mk(function.ModeDeployment, function.RuntimeFILE, nil, ptr("/bin/h")), true},
		{"STDIO with blank runtimeCommand", mk(function.ModeDeployment, function.RuntimeSTDIO, nil, ptr("   ")), false},
		{"STDIO without runtimeCommand", mk(function.ModeDeployment, function.RuntimeSTDIO, nil, nil), false},
		{"POOL with command", mk(function.ModePool, function.RuntimeHTTP, []string{"/bin/fn"}, nil), false},
		{"LOCAL with STDIO", mk(function.ModeLocal, function.RuntimeSTDIO, nil, ptr("/bin/h")), false},
		{"nil spec", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := p.Supports(tc.spec); got != tc.want {
				t.Fatalf("Supports = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestProvision_InvokeThroughProxyReachesReplica(t *testing.T) {
	p := newTestProvider(t)
	url := provision(t, p, httpSpec("echo", nil))
	if !strings.HasPrefix(url, "http://127.0.0.1:") || !strings.HasSuffix(url, "/invoke") {
		t.Fatalf("endpoint = %q", url)
	}
	r := post(t, url, `{"input":{"text":"hi"},"metadata":null}`, map[string]string{"X-Execution-Id": "e-42"})
	if r.status != http.StatusOK {
		t.Fatalf("invoke: %d %s", r.status, r.body)
	}
	m := r.json(t)
	if in, _ := json.Marshal(m["input"]); string(in) != `{"text":"hi"}` || m["executionId"] != "e-42" || m["attempt"] != "1" {
		t.Fatalf("replica saw %v", m)
	}
	if n := ready(t, p, "echo"); n != 1 {
		t.Fatalf("ReadyReplicas = %d, want 1", n)
	}
}

func TestProvision_DispatchedThroughPoolDispatcherSucceeds(t *testing.T) {
	p := newTestProvider(t)
	url := provision(t, p, httpSpec("pooled", nil))
	client := dispatch.NewHTTPClient(dispatch.ClientConfig{})
	defer client.CloseIdleConnections()
	spec := httpSpec("pooled", nil)
	spec.EndpointURL = &url
	dr, err := dispatch.NewPool(client, 0).Dispatch(context.Background(), &execution.Task{
		ExecutionID: "x-1", FunctionName: "pooled", Spec: spec, Attempt: 1,
		Request: &execution.Request{Input: json.RawMessage(`"hello"`)},
	})
	if err != nil || !dr.Result.Success {
		t.Fatalf("dispatch = %+v, %v", dr, err)
	}
	var out map[string]any
	if err := json.Unmarshal(dr.Result.Output, &out); err != nil || out["input"] != "hello" || out["executionId"] != "x-1" {
		t.Fatalf("output = %s (%v)", dr.Result.Output, err)
	}
}

func TestProvision_InjectsEnvironmentAndWorkingDirectory(t *testing.T) {
	workDir := t.TempDir()
	p := newTestProvider(t, func(c *Config) {
		c.WorkDir = workDir
		c.CallbackURL = "http://127.0.0.1:8080/v1/internal/executions"
		c.Environ = append(c.Environ,
			"NANOFAAS_DEFAULTS_TIMEOUT_MS=5", "nanofaas_lower=1", "SYNC_QUEUE_MAX_DEPTH=3",
			"SYNCQUEUE_ENABLED=true", "KEEP_ME=yes", "FUNCTION_NAME=control-plane", "PORT=8080")
	})
	spec := httpSpec("envfn", map[string]string{
		"USER_VAR": "v", "FUNCTION_NAME": "evil", "WARM": "false", "TIMEOUT_MS": "1",
		"EXECUTION_MODE": "FILE", "WATCHDOG_CMD": "x", "CALLBACK_URL": "http://evil", "PORT": "1",
		"NANOFAAS_HANDLER_TIMEOUT": "2s",
	})
	spec.TimeoutMs = ptr(1234)
	spec.RuntimeCommand = ptr("/app/handler.sh")
	provision(t, p, spec)

	base := *p.state("envfn").replicas[0].base.Load()
	var got struct {
		Env map[string]string `json:"env"`
		Cwd string            `json:"cwd"`
	}
	if err := json.Unmarshal([]byte(get(t, base+"/env").body), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"FUNCTION_NAME": "envfn", "WARM": "true", "TIMEOUT_MS": "1234", "EXECUTION_MODE": "HTTP",
		"WATCHDOG_CMD": "/app/handler.sh", "CALLBACK_URL": "http://127.0.0.1:8080/v1/internal/executions",
		"USER_VAR": "v", "KEEP_ME": "yes", "NANOFAAS_HANDLER_TIMEOUT": "2s",
		"PORT": strings.TrimPrefix(base, "http://127.0.0.1:"), "HOST": "127.0.0.1",
	}
	for k, v := range want {
		if got.Env[k] != v {
			t.Errorf("env %s = %q, want %q", k, got.Env[k], v)
		}
	}
	for _, k := range []string{"NANOFAAS_DEFAULTS_TIMEOUT_MS", "nanofaas_lower", "SYNC_QUEUE_MAX_DEPTH", "SYNCQUEUE_ENABLED"} {
		if v, ok := got.Env[k]; ok {
			t.Errorf("control-plane setting %s=%q leaked into the function", k, v)
		}
	}
	if resolved, _ := filepath.EvalSymlinks(workDir); got.Cwd != workDir && got.Cwd != resolved {
		t.Errorf("cwd = %q, want %q", got.Cwd, workDir)
	}
}

func TestProvision_NoCallbackURLMeansNotInjected(t *testing.T) {
	p := newTestProvider(t, func(c *Config) { c.Environ = append(c.Environ, "CALLBACK_URL=http://inherited") })
	provision(t, p, httpSpec("nocb", nil))
	base := *p.state("nocb").replicas[0].base.Load()
	var got struct{ Env map[string]string }
	if err := json.Unmarshal([]byte(get(t, base+"/env").body), &got); err != nil {
		t.Fatal(err)
	}
	if v, ok := got.Env["CALLBACK_URL"]; ok {
		t.Fatalf("CALLBACK_URL = %q, want unset", v)
	}
}

func TestProvision_AgainReturnsSameEndpoint(t *testing.T) {
	p := newTestProvider(t)
	first := provision(t, p, httpSpec("twice", nil))
	second := provision(t, p, httpSpec("twice", nil))
	if first != second || len(p.state("twice").replicas) != 1 {
		t.Fatalf("endpoints %q, %q; replicas %d", first, second, len(p.state("twice").replicas))
	}
}

func TestProvision_ConcurrentSameNameProvisionsOnce(t *testing.T) {
	p := newTestProvider(t)
	urls := make(chan string, 4)
	for range 4 {
		go func() {
			res, err := p.Provision(context.Background(), httpSpec("race", nil))
			if err != nil {
				t.Error(err)
			}
			urls <- res.EndpointURL
		}()
	}
	first := <-urls
	for range 3 {
		if u := <-urls; u != first {
			t.Fatalf("endpoints differ: %q vs %q", first, u)
		}
	}
	if n := len(p.state("race").replicas); n != 1 {
		t.Fatalf("replicas = %d", n)
	}
}

func TestSetReplicas_ScalesOneThreeZeroOneAndSpreadsRoundRobin(t *testing.T) {
	p := newTestProvider(t)
	pids := newPIDFile(t)
	ctx := context.Background()
	url := provision(t, p, httpSpec("scale", map[string]string{"TR_PID_FILE": string(pids)}))
	first := p.state("scale").replicas[0].pid.Load()

	if err := p.SetReplicas(ctx, "scale", 3); err != nil {
		t.Fatal(err)
	}
	if n := ready(t, p, "scale"); n != 3 {
		t.Fatalf("ReadyReplicas = %d, want 3", n)
	}
	if p.state("scale").replicas[0].pid.Load() != first {
		t.Fatal("scaling up restarted replica 1")
	}
	counts := map[string]int{}
	for range 9 {
		r := post(t, url, `{"input":1}`, nil)
		if r.status != http.StatusOK {
			t.Fatalf("invoke: %d %s", r.status, r.body)
		}
		counts[r.json(t)["port"].(string)]++
	}
	if len(counts) != 3 {
		t.Fatalf("requests hit %d replicas, want 3: %v", len(counts), counts)
	}
	for port, n := range counts {
		if n != 3 {
			t.Fatalf("round-robin uneven: %v (port %s got %d)", counts, port, n)
		}
	}

	if err := p.SetReplicas(ctx, "scale", 0); err != nil {
		t.Fatal(err)
	}
	started, ports, _ := pids.read(t)
	if len(started) != 3 {
		t.Fatalf("started pids = %v", started)
	}
	for i, pid := range started {
		assertChildGone(t, pid)
		assertPortFree(t, ports[i])
	}
	if n := ready(t, p, "scale"); n != 0 {
		t.Fatalf("ReadyReplicas after 0 = %d", n)
	}
	if r := post(t, url, `{"input":1}`, nil); r.status != http.StatusServiceUnavailable || r.body != "No ready container backends" {
		t.Fatalf("invoke with 0 replicas: %d %q", r.status, r.body)
	}

	if err := p.SetReplicas(ctx, "scale", 1); err != nil {
		t.Fatal(err)
	}
	if n := ready(t, p, "scale"); n != 1 {
		t.Fatalf("ReadyReplicas = %d, want 1", n)
	}
	if r := post(t, url, `{"input":1}`, nil); r.status != http.StatusOK {
		t.Fatalf("invoke after 0→1: %d %s", r.status, r.body)
	}
}

func TestSetReplicas_ScaleDownStopsHighestIndexed(t *testing.T) {
	p := newTestProvider(t)
	ctx := context.Background()
	provision(t, p, withMinReplicas(httpSpec("down", nil), 3))
	reps := p.state("down").replicas
	pids := []int{int(reps[0].pid.Load()), int(reps[1].pid.Load()), int(reps[2].pid.Load())}
	if err := p.SetReplicas(ctx, "down", 1); err != nil {
		t.Fatal(err)
	}
	assertChildGone(t, pids[1])
	assertChildGone(t, pids[2])
	if got := p.state("down").replicas; len(got) != 1 || int(got[0].pid.Load()) != pids[0] {
		t.Fatalf("replica 1 was not kept")
	}
	if b := p.backends(t, "down"); len(b) != 1 {
		t.Fatalf("backends = %v", b)
	}
	if err := p.SetReplicas(ctx, "down", -4); err != nil || ready(t, p, "down") != 0 {
		t.Fatalf("negative → 0: err %v", err)
	}
	assertChildGone(t, pids[0])
}

func TestSetReplicas_UnknownFunctionIsUnavailable(t *testing.T) {
	p := newTestProvider(t)
	err := p.SetReplicas(context.Background(), "ghost", 2)
	if !failure.IsKind(err, failure.Unavailable) || !strings.Contains(err.Error(), "ghost") {
		t.Fatalf("err = %v", err)
	}
	if n := ready(t, p, "ghost"); n != 0 {
		t.Fatalf("ReadyReplicas(ghost) = %d", n)
	}
}

func TestProvision_MinReplicasZeroStartsNothing(t *testing.T) {
	p := newTestProvider(t)
	url := provision(t, p, withMinReplicas(httpSpec("zero", nil), 0))
	if n := len(p.state("zero").replicas); n != 0 {
		t.Fatalf("replicas = %d", n)
	}
	if r := post(t, url, `{"input":1}`, nil); r.status != http.StatusServiceUnavailable {
		t.Fatalf("invoke: %d", r.status)
	}
	if r := get(t, strings.TrimSuffix(url, "/invoke")+"/health"); r.status != http.StatusServiceUnavailable || r.body != "DOWN" {
		t.Fatalf("proxy health: %d %q", r.status, r.body)
	}
}

func TestReplica_CrashIsRestartedAndNotRoutedWhileDown(t *testing.T) {
	p := newTestProvider(t, func(c *Config) { c.RestartBackoff = 400 * time.Millisecond })
	marker := filepath.Join(t.TempDir(), "crashed")
	url := provision(t, p, withMinReplicas(httpSpec("crashy", map[string]string{
		"TR_CRASH_AFTER": "1", "TR_CRASH_ONCE_FILE": marker,
	}), 2))
	st := p.state("crashy")
	oldPID := [2]int64{st.replicas[0].pid.Load(), st.replicas[1].pid.Load()}

	r := post(t, url, `{"input":1}`, nil) // replica 1 answers, then crashes
	if r.status != http.StatusOK {
		t.Fatalf("invoke: %d %s", r.status, r.body)
	}
	crashedPort := r.json(t)["port"].(string)
	eventually(t, "crashed replica to leave the routing", func() bool { return len(p.backends(t, "crashy")) == 1 })
	for range 4 {
		r := post(t, url, `{"input":1}`, nil)
		if r.status != http.StatusOK || r.json(t)["port"] == crashedPort {
			t.Fatalf("while down: %d %s", r.status, r.body)
		}
	}
	eventually(t, "crashed replica to be restarted", func() bool { return len(p.backends(t, "crashy")) == 2 })
	if n := ready(t, p, "crashy"); n != 2 {
		t.Fatalf("ReadyReplicas = %d", n)
	}
	newPID := [2]int64{st.replicas[0].pid.Load(), st.replicas[1].pid.Load()}
	restarted := 0
	for i := range newPID {
		if newPID[i] != oldPID[i] {
			restarted++
			assertChildGone(t, int(oldPID[i]))
		}
	}
	if restarted != 1 {
		t.Fatalf("pids %v → %v, want exactly one restarted", oldPID, newPID)
	}
	if log := p.log.String(); !strings.Contains(log, "process replica exited (exit status 1)") || !strings.Contains(log, "crashing after 1 invocations") {
		t.Fatalf("log does not report the crash with its output:\n%s", log)
	}
}

func TestProvision_CapturesOutputInLogWithFunctionAndReplica(t *testing.T) {
	p := newTestProvider(t)
	provision(t, p, withMinReplicas(httpSpec("chatty", nil), 2))
	log := p.log.String()
	for _, replica := range []string{"replica=1", "replica=2"} {
		found := false
		for _, line := range strings.Split(log, "\n") {
			if strings.Contains(line, `msg="function output"`) && strings.Contains(line, "function=chatty") &&
				strings.Contains(line, replica) && strings.Contains(line, "testruntime listening") {
				found = true
			}
		}
		if !found {
			t.Errorf("no output line for %s in log:\n%s", replica, log)
		}
	}
	if out := string(p.state("chatty").replicas[0].out.Bytes()); !strings.Contains(out, "testruntime starting on port") {
		t.Errorf("retained output = %q", out)
	}
}

// assertProvisionFailedCleanly checks a failed provisioning left no state, no proxy and no child.
func assertProvisionFailedCleanly(t *testing.T, p *testProvider, name string, pids pidFile) {
	t.Helper()
	if st := p.state(name); st != nil {
		t.Errorf("state of %s left behind", name)
	}
	assertRefused(t, p.proxyURLFromLog(t, name))
	started, ports, _ := pids.read(t)
	for i, pid := range started {
		assertChildGone(t, pid)
		if i < len(ports) && ports[i] != 0 {
			assertPortFree(t, ports[i])
		}
	}
}

func TestProvision_ReadinessTimeoutFailsWithOutputAndKillsChild(t *testing.T) {
	p := newTestProvider(t, func(c *Config) { c.ReadinessTimeout = 400 * time.Millisecond })
	pids := newPIDFile(t)
	_, err := p.Provision(context.Background(), httpSpec("sleepy", map[string]string{
		"TR_NEVER_HEALTHY": "1", "TR_PID_FILE": string(pids),
	}))
	if !failure.IsKind(err, failure.Unavailable) {
		t.Fatalf("err = %v, want Unavailable", err)
	}
	for _, want := range []string{"'sleepy'", "replica 1", "did not become ready within 400ms", "testruntime listening"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err.Error(), want)
		}
	}
	if started, _, _ := pids.read(t); len(started) != 1 {
		t.Fatalf("started = %v", started)
	}
	assertProvisionFailedCleanly(t, p, "sleepy", pids)
}

func TestProvision_MissingExecutableFailsCleanly(t *testing.T) {
	p := newTestProvider(t)
	spec := httpSpec("nobin", nil)
	spec.Command = []string{"/nonexistent/dir/function-binary", "--flag"}
	_, err := p.Provision(context.Background(), spec)
	if !failure.IsKind(err, failure.Unavailable) || !strings.Contains(err.Error(), "'nobin'") ||
		!strings.Contains(err.Error(), "no such file or directory") {
		t.Fatalf("err = %v", err)
	}
	assertProvisionFailedCleanly(t, p, "nobin", newPIDFile(t))
}

func TestProvision_CommandExitingAtOnceFailsFastWithLastOutput(t *testing.T) {
	p := newTestProvider(t) // readiness timeout 10 s: the failure must not wait for it
	pids := newPIDFile(t)
	start := time.Now()
	_, err := p.Provision(context.Background(), httpSpec("quitter", map[string]string{
		"TR_EXIT_AT_ONCE": "1", "TR_PID_FILE": string(pids),
	}))
	if !failure.IsKind(err, failure.Unavailable) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"'quitter'", "exited before becoming ready", "exit status 3", "loading configuration", "fatal: cannot start testruntime"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err.Error(), want)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("failure took %v", d)
	}
	assertProvisionFailedCleanly(t, p, "quitter", pids)
}

func TestProvision_PartWayFailureKillsEveryStartedReplica(t *testing.T) {
	p := newTestProvider(t)
	// Which replica fails is up to the scheduler; repeating makes a failure before a
	// successful replica (the case that could leak it) all but certain.
	for round := range 3 {
		pids := newPIDFile(t)
		marker := filepath.Join(t.TempDir(), "failed")
		name := "partial" + strconv.Itoa(round)
		_, err := p.Provision(context.Background(), withMinReplicas(httpSpec(name, map[string]string{
			"TR_EXIT_ONCE_FILE": marker, "TR_PID_FILE": string(pids), "TR_GRANDCHILD": "1",
		}), 3))
		if !failure.IsKind(err, failure.Unavailable) || !strings.Contains(err.Error(), "this replica was chosen to fail") {
			t.Fatalf("err = %v", err)
		}
		started, _, grandchildren := pids.read(t)
		if len(started) != 3 {
			t.Fatalf("started = %v, want 3", started)
		}
		assertProvisionFailedCleanly(t, p, name, pids)
		for _, pid := range grandchildren {
			assertEventuallyDead(t, pid)
		}
	}
}

func TestSetReplicas_PartWayFailureKeepsReadyPrefixOnly(t *testing.T) {
	p := newTestProvider(t)
	pids := newPIDFile(t)
	markerDir := filepath.Join(t.TempDir(), "later")
	provision(t, p, httpSpec("grow", map[string]string{
		// The marker's directory does not exist yet, so replica 1 cannot be the one that fails.
		"TR_EXIT_ONCE_FILE": filepath.Join(markerDir, "failed"), "TR_PID_FILE": string(pids),
	}))
	if err := os.Mkdir(markerDir, 0o755); err != nil {
		t.Fatal(err)
	}
	err := p.SetReplicas(context.Background(), "grow", 4)
	if !failure.IsKind(err, failure.Unavailable) || !strings.Contains(err.Error(), "this replica was chosen to fail") {
		t.Fatalf("err = %v", err)
	}
	kept := map[int]bool{}
	for i, r := range p.state("grow").replicas {
		if r.index != i+1 {
			t.Fatalf("replica indices not contiguous: position %d has index %d", i, r.index)
		}
		kept[int(r.pid.Load())] = true
	}
	if len(kept) < 1 || len(kept) > 3 {
		t.Fatalf("kept %d replicas", len(kept))
	}
	started, _, _ := pids.read(t)
	if len(started) != 4 {
		t.Fatalf("started = %v", started)
	}
	for _, pid := range started {
		if !kept[pid] {
			assertChildGone(t, pid)
		}
	}
	if n := ready(t, p, "grow"); n != len(kept) || len(p.backends(t, "grow")) != len(kept) {
		t.Fatalf("ReadyReplicas %d, backends %v, kept %d", n, p.backends(t, "grow"), len(kept))
	}
}

func TestProvision_CancelledContextKillsStartingChild(t *testing.T) {
	p := newTestProvider(t)
	pids := newPIDFile(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := p.Provision(ctx, httpSpec("slowstart", map[string]string{
		"TR_STARTUP_DELAY_MS": "20000", "TR_PID_FILE": string(pids),
	}))
	if !failure.IsKind(err, failure.Unavailable) || !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	eventually(t, "child to record its pid", func() bool { s, _, _ := pids.read(t); return len(s) == 1 })
	assertProvisionFailedCleanly(t, p, "slowstart", pids)
}

func TestProvision_SlowStartWithinTimeoutSucceeds(t *testing.T) {
	p := newTestProvider(t)
	url := provision(t, p, httpSpec("slowok", map[string]string{"TR_STARTUP_DELAY_MS": "300"}))
	if r := post(t, url, `{"input":1}`, nil); r.status != http.StatusOK {
		t.Fatalf("invoke: %d %s", r.status, r.body)
	}
}

func TestDeprovision_StopsReplicasGrandchildrenAndProxy(t *testing.T) {
	p := newTestProvider(t)
	pids := newPIDFile(t)
	ctx := context.Background()
	url := provision(t, p, withMinReplicas(httpSpec("gone", map[string]string{
		"TR_PID_FILE": string(pids), "TR_GRANDCHILD": "1",
	}), 2))
	if err := p.Deprovision(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	started, ports, grandchildren := pids.read(t)
	if len(started) != 2 || len(grandchildren) != 2 {
		t.Fatalf("pids %v grandchildren %v", started, grandchildren)
	}
	for i, pid := range started {
		assertChildGone(t, pid)
		assertPortFree(t, ports[i])
	}
	for _, pid := range grandchildren {
		assertEventuallyDead(t, pid)
	}
	assertRefused(t, url)
	if p.state("gone") != nil || ready(t, p, "gone") != 0 {
		t.Fatal("state left after Deprovision")
	}
	if err := p.SetReplicas(ctx, "gone", 1); !failure.IsKind(err, failure.Unavailable) {
		t.Fatalf("SetReplicas after Deprovision: %v", err)
	}
	if err := p.Deprovision(ctx, "gone"); err != nil {
		t.Fatalf("second Deprovision: %v", err)
	}
	if again := provision(t, p, httpSpec("gone", nil)); post(t, again, `{"input":1}`, nil).status != http.StatusOK {
		t.Fatal("re-provisioned function does not answer")
	}
}

func TestClose_KillsChildrenIgnoringSigtermAfterGrace(t *testing.T) {
	p := newTestProvider(t, func(c *Config) { c.StopGrace = 300 * time.Millisecond })
	pids := newPIDFile(t)
	env := map[string]string{"TR_IGNORE_TERM": "1", "TR_PID_FILE": string(pids)}
	provision(t, p, withMinReplicas(httpSpec("stubborn", env), 2))
	provision(t, p, httpSpec("other", map[string]string{"TR_PID_FILE": string(pids)}))
	provision(t, p, watchdogSpec("wd", function.RuntimeSTDIO, "echo", 5000))

	start := time.Now()
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > 5*time.Second {
		t.Errorf("Close took %v, want about the 300ms grace", d)
	}
	started, _, _ := pids.read(t)
	if len(started) != 3 {
		t.Fatalf("started = %v", started)
	}
	for _, pid := range started {
		assertChildGone(t, pid)
	}
	if _, err := p.Provision(context.Background(), httpSpec("late", nil)); !failure.IsKind(err, failure.Unavailable) {
		t.Fatalf("Provision after Close: %v", err)
	}
}

func TestClose_ExpiredContextKillsAtOnce(t *testing.T) {
	p := newTestProvider(t, func(c *Config) { c.StopGrace = time.Minute })
	pids := newPIDFile(t)
	provision(t, p, httpSpec("stubborn", map[string]string{"TR_IGNORE_TERM": "1", "TR_PID_FILE": string(pids)}))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := p.Close(ctx); err == nil || !strings.Contains(err.Error(), "forcibly") {
		t.Errorf("Close = %v, want a forced-stop error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v despite its context", d)
	}
	started, _, _ := pids.read(t)
	for _, pid := range started {
		assertChildGone(t, pid)
	}
}

func TestClose_AbortsProvisioningInProgress(t *testing.T) {
	p := newTestProvider(t)
	pids := newPIDFile(t)
	errc := make(chan error, 1)
	go func() {
		_, err := p.Provision(context.Background(), httpSpec("inflight", map[string]string{
			"TR_STARTUP_DELAY_MS": "20000", "TR_PID_FILE": string(pids),
		}))
		errc <- err
	}()
	eventually(t, "child to start", func() bool { s, _, _ := pids.read(t); return len(s) == 1 })
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !failure.IsKind(err, failure.Unavailable) {
		t.Fatalf("Provision during Close: %v", err)
	}
	started, _, _ := pids.read(t)
	assertChildGone(t, started[0])
}

func TestProvision_UnsupportedSpecIsUnavailable(t *testing.T) {
	p := newTestProvider(t)
	spec := httpSpec("nocmd", nil)
	spec.Command = nil
	if _, err := p.Provision(context.Background(), spec); !failure.IsKind(err, failure.Unavailable) {
		t.Fatalf("err = %v", err)
	}
}

// retryDelays returns the retry_in values of the logged replica exits, in order.
func retryDelays(log string) []string {
	var out []string
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, "process replica exited") {
			continue
		}
		if i := strings.Index(line, "retry_in="); i >= 0 {
			out = append(out, strings.Fields(line[i+len("retry_in="):])[0])
		}
	}
	return out
}

func TestReplica_CrashLoopBacksOffDoublingUpToMax(t *testing.T) {
	p := newTestProvider(t, func(c *Config) {
		c.RestartBackoff = 20 * time.Millisecond
		c.MaxRestartBackoff = 80 * time.Millisecond
	})
	provision(t, p, httpSpec("loop", map[string]string{"TR_EXIT_AFTER_READY_MS": "30"}))
	eventually(t, "five crashes", func() bool { return len(retryDelays(p.log.String())) >= 5 })
	if got, want := strings.Join(retryDelays(p.log.String())[:5], " "), "20ms 40ms 80ms 80ms 80ms"; got != want {
		t.Fatalf("retry delays %q, want %q", got, want)
	}
}

func TestReplica_BackoffResetsAfterALongRun(t *testing.T) {
	var ticks atomic.Int64
	p := newTestProvider(t, func(c *Config) {
		c.RestartBackoff = 20 * time.Millisecond
		c.MaxRestartBackoff = 80 * time.Millisecond
		// Every reading is an hour later: each run counts as long, so no crash loop is seen.
		c.Now = func() time.Time { return time.Unix(0, 0).Add(time.Duration(ticks.Add(1)) * time.Hour) }
	})
	provision(t, p, httpSpec("longrun", map[string]string{"TR_EXIT_AFTER_READY_MS": "30"}))
	eventually(t, "three crashes", func() bool { return len(retryDelays(p.log.String())) >= 3 })
	if got := strings.Join(retryDelays(p.log.String())[:3], " "); got != "20ms 20ms 20ms" {
		t.Fatalf("retry delays %q, want the initial delay each time", got)
	}
}
