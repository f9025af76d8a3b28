package container

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nanofaas/control-plane/internal/deploy"
	"github.com/nanofaas/control-plane/internal/function"
)

var endpointRE = regexp.MustCompile(`^http://127\.0\.0\.1:\d+/invoke$`)

// invoke POSTs an invocation to url and returns status and body.
func invoke(t *testing.T, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t), http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Execution-Id", "exec-1")
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(data)
}

// requireClosed fails unless nothing listens at the proxy URL any more.
func requireClosed(t *testing.T, url string) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Second}
	resp, err := client.Post(url, "application/json", strings.NewReader(`{}`))
	if err == nil {
		_ = resp.Body.Close()
		t.Fatalf("proxy %s still answers (%d) after it should be closed", url, resp.StatusCode)
	}
}

// requireDead fails unless every named container's process is dead.
func requireDead(t *testing.T, recs map[string]fakeRecord, names ...string) {
	t.Helper()
	for _, n := range names {
		rec, ok := recs[n]
		if !ok {
			t.Fatalf("no record of container %s", n)
		}
		if alive(rec.PID) {
			t.Errorf("process %d of removed container %s is alive", rec.PID, n)
		}
	}
}

func TestAvailable_FollowsVersionExitCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		cli   string
		extra []string
		want  bool
	}{
		{"version exits 0", fakeCLI, nil, true},
		{"version fails", fakeCLI, []string{"FAKE_CLI_FAIL_VERSION=1"}, false},
		{"cli missing", "/nonexistent/docker", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, tc.extra...)
			p := newTestProvider(t, f, func(c *Config) { c.RuntimeAdapter = tc.cli })
			if got := p.Available(); got != tc.want {
				t.Fatalf("Available() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestAvailable_ReusesResultForOneSecond(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	now := time.Unix(1000, 0)
	p := newTestProvider(t, f, func(c *Config) { c.Now = func() time.Time { return now } })
	for range 3 {
		if !p.Available() {
			t.Fatal("Available() = false")
		}
	}
	if n := len(f.callsOf("version")); n != 1 {
		t.Fatalf("version ran %d times within the cache period, want 1", n)
	}
	now = now.Add(availabilityTTL)
	if !p.Available() {
		t.Fatal("Available() = false")
	}
	if n := len(f.callsOf("version")); n != 2 {
		t.Fatalf("version ran %d times after the cache period, want 2", n)
	}
}

func TestAvailable_HangingEngineIsUnavailableAfterCLITimeout(t *testing.T) {
	t.Parallel()
	f := newFake(t, "FAKE_CLI_HANG=version")
	p := newTestProvider(t, f, func(c *Config) { c.CLITimeout = 200 * time.Millisecond })
	start := time.Now()
	if p.Available() {
		t.Fatal("Available() = true with a hanging engine")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Available took %v", d)
	}
}

func TestSupports_DeploymentWithoutPullSecrets(t *testing.T) {
	t.Parallel()
	p := New(Config{})
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	pool := wordStatsSpec("a")
	pool.ExecutionMode = ptr(function.ModePool)
	secrets := wordStatsSpec("b")
	secrets.ImagePullSecrets = []string{"regcred"}
	emptySecrets := wordStatsSpec("c")
	emptySecrets.ImagePullSecrets = []string{}
	tests := []struct {
		name string
		spec *function.Spec
		want bool
	}{
		{"deployment", wordStatsSpec("d"), true},
		{"empty pull secrets", emptySecrets, true},
		{"pull secrets", secrets, false},
		{"pool", pool, false},
		{"nil", nil, false},
	}
	for _, tc := range tests {
		if got := p.Supports(tc.spec); got != tc.want {
			t.Errorf("%s: Supports = %v, want %v", tc.name, got, tc.want)
		}
	}
	if p.BackendID() != "container-local" {
		t.Errorf("BackendID = %q", p.BackendID())
	}
}

func TestProvision_InvokesWordStatsThroughProxy(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	p := newTestProvider(t, f)
	ctx := testCtx(t)

	res, err := p.Provision(ctx, wordStatsSpec("word-stats"))
	if err != nil {
		t.Fatalf("Provision: %v", err)
	}
	if !endpointRE.MatchString(res.EndpointURL) || res.BackendID != BackendID || res.EffectiveMode != function.ModeDeployment {
		t.Fatalf("result = %+v", res)
	}
	if got := f.containerNames(); !slices.Equal(got, []string{"nanofaas-word-stats-r1"}) {
		t.Fatalf("containers = %v", got)
	}

	status, body := invoke(t, res.EndpointURL, `{"input":{"text":"The cat and the hat","topN":2}}`)
	if status != http.StatusOK {
		t.Fatalf("status %d, body %s", status, body)
	}
	var got any
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	var want any
	_ = json.Unmarshal([]byte(`{"wordCount":5,"uniqueWords":4,"topWords":[{"word":"the","count":2},{"word":"and","count":1}],"averageWordLength":3}`), &want)
	if !jsonEqual(got, want) {
		t.Fatalf("body = %s", body)
	}

	again, err := p.Provision(ctx, wordStatsSpec("word-stats"))
	if err != nil || again.EndpointURL != res.EndpointURL {
		t.Fatalf("second Provision = %+v, %v; want the same URL", again, err)
	}
	if n := len(f.callsOf("run")); n != 1 {
		t.Fatalf("%d run commands, want 1 (an existing function is not reconciled)", n)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func TestProvision_RunsContainerWithSortedEnvPublishedOnBindHost(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	p := newTestProvider(t, f, func(c *Config) { c.CallbackURL = "http://127.0.0.1:9/v1/internal/executions" })
	spec := wordStatsSpec("Env_Test")
	spec.Env = map[string]string{"ZED": "z", "ALPHA": "a=b", "FUNCTION_NAME": "spoofed", "WARM": "false", "": "x"}
	spec.RuntimeCommand = ptr("cat -n")
	spec.Command = []string{"--greeting", "hello world"}

	if _, err := p.Provision(testCtx(t), spec); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	const name = "nanofaas-env-test-r1"
	rec, ok := f.containers()[name]
	if !ok {
		t.Fatalf("no container %s: %v", name, f.containerNames())
	}
	port := strings.TrimSuffix(strings.TrimPrefix(rec.Publish, "127.0.0.1:"), ":8080")
	if _, err := strconv.Atoi(port); err != nil || rec.Publish != "127.0.0.1:"+port+":8080" {
		t.Fatalf("publish = %q, want 127.0.0.1:<port>:8080 (D20)", rec.Publish)
	}

	calls := f.calls()
	want := [][]string{
		{"rm", "-f", name},
		{"run", "-d", "--name", name, "-p", "127.0.0.1:" + port + ":8080",
			"-e", "ALPHA=a=b",
			"-e", "CALLBACK_URL=http://127.0.0.1:9/v1/internal/executions",
			"-e", "EXECUTION_MODE=HTTP",
			"-e", "FUNCTION_NAME=Env_Test",
			"-e", "TIMEOUT_MS=5000",
			"-e", "WARM=true",
			"-e", "WATCHDOG_CMD=cat -n",
			"-e", "ZED=z",
			"nanofaas/example-word-stats:local", "--greeting", "hello world"},
	}
	if len(calls) != 2 || !slices.Equal(calls[0], want[0]) || !slices.Equal(calls[1], want[1]) {
		t.Fatalf("CLI calls =\n%q\nwant\n%q", calls, want)
	}

	// The "container" really runs with that environment, listening on the published port.
	environ, err := os.ReadFile("/proc/" + strconv.Itoa(rec.PID) + "/environ")
	if err != nil {
		t.Fatal(err)
	}
	vars := strings.Split(strings.TrimRight(string(environ), "\x00"), "\x00")
	for _, kv := range []string{"FUNCTION_NAME=Env_Test", "WARM=true", "PORT=" + port, "ALPHA=a=b"} {
		if !slices.Contains(vars, kv) {
			t.Errorf("container environment %q lacks %s", vars, kv)
		}
	}
	if n, err := p.ReadyReplicas(testCtx(t), "Env_Test"); err != nil || n != 1 {
		t.Fatalf("ReadyReplicas = %d, %v; want 1", n, err)
	}
}

func TestProvision_MinReplicasZeroStartsNothing(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	p := newTestProvider(t, f)
	res, err := p.Provision(testCtx(t), withMinReplicas(wordStatsSpec("idle"), 0))
	if err != nil {
		t.Fatalf("Provision: %v", err)
	}
	if runs := f.callsOf("run"); len(runs) != 0 {
		t.Fatalf("run calls = %q, want none", runs)
	}
	status, body := invoke(t, res.EndpointURL, `{"input":"a b"}`)
	if status != http.StatusServiceUnavailable || body != "No ready container backends" {
		t.Fatalf("proxy answered %d %q", status, body)
	}
}

func TestSetReplicas_ScalesUpThenDownHighestFirst(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	p := newTestProvider(t, f)
	ctx := testCtx(t)
	res, err := p.Provision(ctx, wordStatsSpec("scaler"))
	if err != nil {
		t.Fatalf("Provision: %v", err)
	}

	if err := p.SetReplicas(ctx, "scaler", 3); err != nil {
		t.Fatalf("SetReplicas(3): %v", err)
	}
	all := f.containers()
	names := []string{"nanofaas-scaler-r1", "nanofaas-scaler-r2", "nanofaas-scaler-r3"}
	if got := f.containerNames(); !slices.Equal(got, names) {
		t.Fatalf("containers = %v, want %v", got, names)
	}
	var wantBackends []string
	for _, n := range names {
		wantBackends = append(wantBackends, "http://"+strings.TrimSuffix(all[n].Publish, ":8080"))
	}
	if got := p.fns.Lookup("scaler").proxy.Backends(); !slices.Equal(got, wantBackends) {
		t.Fatalf("proxy backends = %v, want %v (index order)", got, wantBackends)
	}
	if n, err := p.ReadyReplicas(ctx, "scaler"); err != nil || n != 3 {
		t.Fatalf("ReadyReplicas = %d, %v; want 3", n, err)
	}
	for range 3 { // round robin over live replicas
		if status, body := invoke(t, res.EndpointURL, `{"input":"x y"}`); status != http.StatusOK {
			t.Fatalf("invoke: %d %s", status, body)
		}
	}

	if err := p.SetReplicas(ctx, "scaler", 1); err != nil {
		t.Fatalf("SetReplicas(1): %v", err)
	}
	if got := f.removed(); !slices.Equal(got[len(got)-2:], []string{"nanofaas-scaler-r3", "nanofaas-scaler-r2"}) {
		t.Fatalf("rm -f order = %v, want r3 then r2 last", got)
	}
	requireDead(t, all, "nanofaas-scaler-r2", "nanofaas-scaler-r3")
	if got := f.containerNames(); !slices.Equal(got, names[:1]) {
		t.Fatalf("containers = %v, want r1 only", got)
	}
	if got := p.fns.Lookup("scaler").proxy.Backends(); !slices.Equal(got, wantBackends[:1]) {
		t.Fatalf("proxy backends = %v", got)
	}
	if n, err := p.ReadyReplicas(ctx, "scaler"); err != nil || n != 1 {
		t.Fatalf("ReadyReplicas = %d, %v; want 1", n, err)
	}

	if err := p.SetReplicas(ctx, "scaler", -4); err != nil {
		t.Fatalf("SetReplicas(-4): %v", err)
	}
	requireDead(t, all, "nanofaas-scaler-r1")
	if status, body := invoke(t, res.EndpointURL, `{"input":"x"}`); status != http.StatusServiceUnavailable || body != "No ready container backends" {
		t.Fatalf("at 0 replicas the proxy answered %d %q", status, body)
	}
	if err := p.SetReplicas(ctx, "scaler", 1); err != nil {
		t.Fatalf("SetReplicas(1) from 0: %v", err)
	}
	if status, body := invoke(t, res.EndpointURL, `{"input":"x"}`); status != http.StatusOK {
		t.Fatalf("after scaling back up: %d %s", status, body)
	}
}

func TestUnknownFunction_OperationsAreNoOps(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	p := newTestProvider(t, f)
	ctx := testCtx(t)
	if err := p.SetReplicas(ctx, "ghost", 3); err != nil {
		t.Errorf("SetReplicas: %v", err)
	}
	if n, err := p.ReadyReplicas(ctx, "ghost"); err != nil || n != 0 {
		t.Errorf("ReadyReplicas = %d, %v", n, err)
	}
	if err := p.Deprovision(ctx, "ghost"); err != nil {
		t.Errorf("Deprovision: %v", err)
	}
	if calls := f.calls(); len(calls) != 0 {
		t.Errorf("CLI calls for an unknown function: %q", calls)
	}
}

func TestProvision_ReadinessTimeoutRemovesContainer(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	p := newTestProvider(t, f, func(c *Config) { c.ReadinessTimeout = 300 * time.Millisecond })
	spec := wordStatsSpec("slow")
	spec.Image = "never-ready"

	_, err := p.Provision(testCtx(t), spec)
	calls := f.callsOf("run")
	if len(calls) != 1 {
		t.Fatalf("run calls = %q", calls)
	}
	publish := calls[0][slices.Index(calls[0], "-p")+1]
	base := "http://" + strings.TrimSuffix(publish, ":8080")
	requireUnavailable(t, err, "Timed out waiting for container endpoint to become ready: "+base)

	if got := f.removed(); !slices.Equal(got, []string{"nanofaas-slow-r1", "nanofaas-slow-r1"}) {
		t.Fatalf("rm -f calls = %v, want the pre-run one and the removal", got)
	}
	if left := f.containerNames(); len(left) != 0 {
		t.Fatalf("containers left: %v", left)
	}
	if p.fns.Lookup("slow") != nil {
		t.Fatal("state kept after a failed provisioning")
	}
}

func TestProvision_PartWayFailureRemovesEveryStartedContainer(t *testing.T) {
	t.Parallel()
	f := newFake(t, "FAKE_CLI_FAIL_RUN=3")
	p := newTestProvider(t, f)
	ctx := testCtx(t)

	// Watch the containers while they run to know their processes.
	seen := map[string]fakeRecord{}
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			for n, r := range f.containers() {
				seen[n] = r
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	_, err := p.Provision(ctx, withMinReplicas(wordStatsSpec("partial"), 3))
	close(stop)
	<-watched

	requireUnavailable(t, err,
		"Failed to start container 'nanofaas-partial-r3': docker: Error response from daemon: injected failure for nanofaas-partial-r3.")
	if got := f.started(); !slices.Equal(got, []string{"nanofaas-partial-r1", "nanofaas-partial-r2", "nanofaas-partial-r3"}) {
		t.Fatalf("run order = %v", got)
	}
	removed := f.removed()
	wantTail := []string{"nanofaas-partial-r3", "nanofaas-partial-r2", "nanofaas-partial-r1"}
	if len(removed) < 3 || !slices.Equal(removed[len(removed)-3:], wantTail) {
		t.Fatalf("rm -f calls = %v, want to end with %v (D20)", removed, wantTail)
	}
	if left := f.containerNames(); len(left) != 0 {
		t.Fatalf("containers left: %v", left)
	}
	requireDead(t, seen, "nanofaas-partial-r1", "nanofaas-partial-r2")
	if p.fns.Lookup("partial") != nil {
		t.Fatal("state kept after a failed provisioning")
	}

	// The function can be provisioned again once the engine recovers (new state, new proxy).
	if _, err := p.Provision(ctx, wordStatsSpec("other")); err != nil {
		t.Fatalf("Provision after failure: %v", err)
	}
}

func TestDeprovision_RemovesAllInReverseAndClosesProxy(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	p := newTestProvider(t, f)
	ctx := testCtx(t)
	res, err := p.Provision(ctx, withMinReplicas(wordStatsSpec("gone"), 2))
	if err != nil {
		t.Fatalf("Provision: %v", err)
	}
	all := f.containers()
	if len(all) != 2 {
		t.Fatalf("containers = %v", f.containerNames())
	}
	rmBefore := len(f.removed())

	if err := p.Deprovision(ctx, "gone"); err != nil {
		t.Fatalf("Deprovision: %v", err)
	}
	if got := f.removed()[rmBefore:]; !slices.Equal(got, []string{"nanofaas-gone-r2", "nanofaas-gone-r1"}) {
		t.Fatalf("rm -f order = %v, want r2, r1", got)
	}
	requireDead(t, all, "nanofaas-gone-r1", "nanofaas-gone-r2")
	requireClosed(t, res.EndpointURL)
	if n, err := p.ReadyReplicas(ctx, "gone"); err != nil || n != 0 {
		t.Fatalf("ReadyReplicas after deprovision = %d, %v", n, err)
	}

	again, err := p.Provision(ctx, wordStatsSpec("gone"))
	if err != nil {
		t.Fatalf("re-Provision: %v", err)
	}
	if status, body := invoke(t, again.EndpointURL, `{"input":"a"}`); status != http.StatusOK {
		t.Fatalf("invoke after re-provision: %d %s", status, body)
	}
}

func TestClose_RemovesEverythingAndRefusesProvisioning(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	p := newTestProvider(t, f)
	ctx := testCtx(t)
	a, err := p.Provision(ctx, withMinReplicas(wordStatsSpec("a"), 2))
	if err != nil {
		t.Fatalf("Provision a: %v", err)
	}
	b, err := p.Provision(ctx, wordStatsSpec("b"))
	if err != nil {
		t.Fatalf("Provision b: %v", err)
	}
	all := f.containers()

	if err := p.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if left := f.containerNames(); len(left) != 0 {
		t.Fatalf("containers left: %v", left)
	}
	requireDead(t, all, "nanofaas-a-r1", "nanofaas-a-r2", "nanofaas-b-r1")
	requireClosed(t, a.EndpointURL)
	requireClosed(t, b.EndpointURL)
	_, err = p.Provision(ctx, wordStatsSpec("c"))
	requireUnavailable(t, err, "Provider 'container-local' is shut down")
	if err := p.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestClose_CancelsInFlightProvisioningAndRemovesItsContainer(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	p := newTestProvider(t, f, func(c *Config) { c.ReadinessTimeout = 30 * time.Second })
	spec := wordStatsSpec("stuck")
	spec.Image = "never-ready"
	done := make(chan error, 1)
	go func() {
		_, err := p.Provision(testCtx(t), spec)
		done <- err
	}()
	waitFor(t, func() bool { return len(f.containers()) == 1 })
	all := f.containers()

	if err := p.Close(testCtx(t)); err != nil {
		t.Fatalf("Close: %v", err)
	}
	requireUnavailable(t, <-done, "")
	requireDead(t, all, "nanofaas-stuck-r1")
	if left := f.containerNames(); len(left) != 0 {
		t.Fatalf("containers left: %v", left)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestOperations_SameFunctionSerializedOthersIndependent(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	p := newTestProvider(t, f, func(c *Config) { c.ReadinessTimeout = 2500 * time.Millisecond })
	slow := wordStatsSpec("slow")
	slow.Image = "never-ready"
	slowDone := make(chan error, 1)
	go func() {
		_, err := p.Provision(testCtx(t), slow)
		slowDone <- err
	}()
	waitFor(t, func() bool { return len(f.containers()) == 1 })

	// The same function waits for the provisioning in progress…
	ctx, cancel := context.WithTimeout(testCtx(t), 100*time.Millisecond)
	_, err := p.ReadyReplicas(ctx, "slow")
	cancel()
	requireUnavailable(t, err, "Function 'slow': context deadline exceeded")

	// …another one does not.
	if _, err := p.Provision(testCtx(t), wordStatsSpec("fast")); err != nil {
		t.Fatalf("Provision fast: %v", err)
	}
	select {
	case err := <-slowDone:
		t.Fatalf("slow provisioning finished (%v) before the other function's; it should still be waiting", err)
	default:
	}
	requireUnavailable(t, <-slowDone, "")
	if got := f.containerNames(); !slices.Equal(got, []string{"nanofaas-fast-r1"}) {
		t.Fatalf("containers = %v", got)
	}
}

func TestProvision_ConcurrentCallsStartOnce(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	p := newTestProvider(t, f)
	const callers = 4
	urls := make(chan string, callers)
	for range callers {
		go func() {
			res, err := p.Provision(testCtx(t), wordStatsSpec("shared"))
			if err != nil {
				t.Errorf("Provision: %v", err)
			}
			urls <- res.EndpointURL
		}()
	}
	first := <-urls
	for range callers - 1 {
		if u := <-urls; u != first {
			t.Fatalf("URLs differ: %s vs %s", u, first)
		}
	}
	if got := f.started(); !slices.Equal(got, []string{"nanofaas-shared-r1"}) {
		t.Fatalf("run calls = %v, want one", got)
	}
}

func TestProvision_UnsupportedSpecIsUnavailable(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	p := newTestProvider(t, f)
	spec := wordStatsSpec("secret")
	spec.ImagePullSecrets = []string{"regcred"}
	_, err := p.Provision(testCtx(t), spec)
	requireUnavailable(t, err, "Provider 'container-local' does not support function 'secret'")
}

var _ deploy.Provider = (*Provider)(nil)
