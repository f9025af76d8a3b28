package controlplane

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nanofaas/control-plane/fnruntime"
	"github.com/nanofaas/control-plane/internal/config"
	"github.com/nanofaas/control-plane/internal/kubetest"
)

// kube is the real kube-apiserver used by the k8s end-to-end test; it starts on first use.
var kube kubetest.Shared

func TestMain(m *testing.M) {
	os.Exit(kube.RunCheckingLeaks(m))
}

// startApp runs a control plane on free ports with the given extra configuration flags.
func startApp(t testing.TB, args ...string) (api, mgmt string) {
	t.Helper()
	return startAppLogging(t, slog.New(slog.DiscardHandler), args...)
}

// startAppLogging is startApp with the app logging to log.
func startAppLogging(t testing.TB, log *slog.Logger, args ...string) (api, mgmt string) {
	t.Helper()
	cfg, err := config.Load(append([]string{"--server.port=0", "--management.server.port=0", "--nanofaas.shutdown.grace=2s"}, args...), nil)
	if err != nil {
		t.Fatal(err)
	}
	app, err := New(cfg, Options{Logger: log, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	api = "http://" + app.APIAddr().String()
	mgmt = "http://" + app.ManagementAddr().String()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if code, _ := call(t, "GET", mgmt+"/actuator/health/readiness", ""); code == 200 {
			return api, mgmt
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("control plane not ready")
	return "", ""
}

func call(t testing.TB, method, url, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// runtime is the project's Go function runtime (fnruntime) served in-process; its function
// answers {"echo": input}.
func runtime(t *testing.T) *httptest.Server {
	t.Helper()
	echo := func(_ context.Context, req fnruntime.Request) (any, error) {
		return json.RawMessage(`{"echo":` + string(req.Input) + `}`), nil
	}
	rt := fnruntime.New(echo, fnruntime.Config{}, fnruntime.WithLogger(slog.New(slog.DiscardHandler)))
	srv := httptest.NewServer(rt)
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := rt.Close(ctx); err != nil {
			t.Errorf("function runtime: %v", err)
		}
	})
	return srv
}

func TestApp_AllModules_SyncInvokeEnqueuePollAndMetrics(t *testing.T) {
	api, mgmt := startApp(t)
	fn := runtime(t)

	code, body := call(t, "POST", api+"/v1/functions", `{"name":"word.stats-1","image":"img","executionMode":"POOL","endpointUrl":"`+fn.URL+`/invoke"}`)
	if code != 201 {
		t.Fatalf("register = %d %s", code, body)
	}
	code, body = call(t, "POST", api+"/v1/functions/word.stats-1:invoke", `{"input":{"text":"a b"}}`)
	if code != 200 || !strings.Contains(body, `"status":"success"`) || !strings.Contains(body, `"output":{"echo":{"text":"a b"}}`) {
		t.Fatalf("invoke = %d %s", code, body)
	}

	code, body = call(t, "POST", api+"/v1/functions/word.stats-1:enqueue", `{"input":"x"}`)
	if code != 202 || !strings.Contains(body, `"status":"queued"`) {
		t.Fatalf("enqueue = %d %s", code, body)
	}
	var queued struct{ ExecutionID string }
	if err := json.Unmarshal([]byte(body), &queued); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, body = call(t, "GET", api+"/v1/executions/"+queued.ExecutionID, "")
		if code == 200 && strings.Contains(body, `"status":"success"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("execution never succeeded: %d %s", code, body)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !strings.Contains(body, `"output":{"echo":"x"}`) {
		t.Errorf("execution output = %s", body)
	}

	_, metrics := call(t, "GET", mgmt+"/actuator/prometheus", "")
	for _, want := range []string{
		`function_dispatch_total{function="word.stats-1"} 2`,
		`function_success_total{function="word.stats-1"} 2`,
		`function_enqueue_total{function="word.stats-1"} 1`,
		`function_latency_ms_seconds_count{function="word.stats-1"} 2`,
		`function_queue_depth{function="word.stats-1"} 0`,
		`sync_queue_admitted_total{function="word.stats-1"} 1`,
		"go_goroutines",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	code, body = call(t, "GET", api+"/modules/build-metadata", "")
	if code != 200 || !strings.Contains(body, `"module":"build-metadata"`) {
		t.Errorf("build-metadata = %d %s", code, body)
	}
	// The admin API exists only when explicitly enabled.
	if code, _ = call(t, "GET", api+"/v1/admin/runtime-config", ""); code != 404 {
		t.Errorf("runtime-config without enablement = %d, want 404", code)
	}
	code, _ = call(t, "DELETE", api+"/v1/functions/word.stats-1", "")
	if code != 204 {
		t.Errorf("delete = %d", code)
	}
	_, metrics = call(t, "GET", mgmt+"/actuator/prometheus", "")
	if strings.Contains(metrics, `function="word.stats-1"`) {
		t.Errorf("metrics of a removed function are still exported")
	}
}

func TestApp_CoreOnly_EnqueueIs501AndInvokeDispatchesInline(t *testing.T) {
	api, _ := startApp(t, "--nanofaas.control-plane.modules=none")
	if code, body := call(t, "POST", api+"/v1/functions", `{"name":"echo","image":"img","executionMode":"LOCAL"}`); code != 201 {
		t.Fatalf("register = %d %s", code, body)
	}
	if code, body := call(t, "POST", api+"/v1/functions/echo:invoke", `{"input":[1,2]}`); code != 200 || !strings.Contains(body, `"output":[1,2]`) {
		t.Errorf("invoke = %d %s", code, body)
	}
	if code, body := call(t, "POST", api+"/v1/functions/echo:enqueue", `{"input":1}`); code != 501 || body != "" {
		t.Errorf("enqueue = %d %q, want 501 empty", code, body)
	}
	if code, _ := call(t, "GET", api+"/modules/build-metadata", ""); code != 404 {
		t.Errorf("build-metadata without its module = %d, want 404", code)
	}
	// Core only, a DEPLOYMENT function without endpointUrl has no provider.
	code, body := call(t, "POST", api+"/v1/functions", `{"name":"managed","image":"img"}`)
	if code != 503 || body != "No managed deployment provider available for function 'managed'" {
		t.Errorf("DEPLOYMENT without provider = %d %q", code, body)
	}
}

func TestApp_RuntimeConfigPatchChangesTheRateLimitImmediately(t *testing.T) {
	api, _ := startApp(t, "--nanofaas.admin.runtime-config.enabled=true")
	if code, body := call(t, "POST", api+"/v1/functions", `{"name":"echo","image":"img","executionMode":"LOCAL"}`); code != 201 {
		t.Fatalf("register = %d %s", code, body)
	}
	code, body := call(t, "PATCH", api+"/v1/admin/runtime-config", `{"expectedRevision":0,"rateMaxPerSecond":1}`)
	if code != 200 || !strings.Contains(body, `"revision":1`) {
		t.Fatalf("patch = %d %s", code, body)
	}
	statuses := map[int]int{}
	for range 3 {
		code, _ := call(t, "POST", api+"/v1/functions/echo:invoke", `{"input":1}`)
		statuses[code]++
	}
	if statuses[429] < 1 {
		t.Errorf("with rateMaxPerSecond=1, three invocations got %v; want at least one 429", statuses)
	}
}

func TestApp_ShutdownLetsAnInFlightSyncRequestFinish(t *testing.T) {
	cfg, err := config.Load([]string{"--server.port=0", "--management.server.port=0", "--nanofaas.shutdown.grace=5s", "--nanofaas.control-plane.modules=none"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	app, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`"done"`))
	}))
	defer slow.Close()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	api := "http://" + app.APIAddr().String()
	mgmt := "http://" + app.ManagementAddr().String()
	for code := 0; code != 200; code, _ = call(t, "GET", mgmt+"/actuator/health/readiness", "") {
		time.Sleep(5 * time.Millisecond)
	}
	if code, body := call(t, "POST", api+"/v1/functions", `{"name":"slow","image":"i","executionMode":"POOL","endpointUrl":"`+slow.URL+`"}`); code != 201 {
		t.Fatalf("register = %d %s", code, body)
	}
	result := make(chan string, 1)
	go func() {
		resp, err := http.Post(api+"/v1/functions/slow:invoke", "application/json", strings.NewReader(`{"input":1}`))
		if err != nil {
			result <- "error: " + err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		result <- string(b)
	}()
	time.Sleep(100 * time.Millisecond) // the request is now waiting on the slow function
	cancel()
	time.Sleep(100 * time.Millisecond)
	if code, body := call(t, "GET", mgmt+"/actuator/health/readiness", ""); code != 503 {
		t.Errorf("readiness while shutting down = %d %s, want 503", code, body)
	}
	close(release)
	if got := <-result; !strings.Contains(got, `"status":"success"`) {
		t.Errorf("in-flight request during shutdown = %s", got)
	}
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
}
