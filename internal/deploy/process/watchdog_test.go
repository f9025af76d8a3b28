package process

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nanofaas/control-plane/internal/dispatch"
	"github.com/nanofaas/control-plane/internal/execution"
	"github.com/nanofaas/control-plane/internal/failure"
	"github.com/nanofaas/control-plane/internal/function"
)

func TestWatchdog_StdioSuccessReturnsTheJSONDocument(t *testing.T) {
	p := newTestProvider(t)
	url := provision(t, p, watchdogSpec("stdio", function.RuntimeSTDIO, "echo", 10000))
	r := post(t, url, "{\n  \"input\": {\"n\": 7},\n  \"metadata\": {\"k\": \"v\"}\n}",
		map[string]string{"X-Execution-Id": "e-9", "X-Trace-Id": "t-3"})
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("got %d %q %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	m := r.json(t)
	out, _ := json.Marshal(m["output"])
	meta, _ := json.Marshal(m["metadata"])
	if string(out) != `{"n":7}` || string(meta) != `{"k":"v"}` || m["executionId"] != "e-9" ||
		m["traceId"] != "t-3" || m["function"] != "stdio" || m["compact"] != true {
		t.Fatalf("handler saw %v", m)
	}
}

func TestWatchdog_MissingTraceIDIsEmptyEnv(t *testing.T) {
	p := newTestProvider(t)
	url := provision(t, p, watchdogSpec("notrace", function.RuntimeSTDIO, "echo", 10000))
	m := post(t, url, `{"input":1}`, nil).json(t)
	if m["traceId"] != "" {
		t.Fatalf("traceId = %v", m["traceId"])
	}
}

func TestWatchdog_FileModeWritesPrettyInputAndReadsOutputFile(t *testing.T) {
	p := newTestProvider(t)
	url := provision(t, p, watchdogSpec("filefn", function.RuntimeFILE, "file", 10000))
	r := post(t, url, `{"input":{"a":[1,2]},"metadata":null}`, map[string]string{"X-Execution-Id": "e-f"})
	if r.status != http.StatusOK {
		t.Fatalf("got %d %s", r.status, r.body)
	}
	m := r.json(t)
	out, _ := json.Marshal(m["output"])
	if string(out) != `{"a":[1,2]}` || m["executionId"] != "e-f" || m["pretty"] != true {
		t.Fatalf("handler result %v", m)
	}
	tmp := p.state("filefn").wd.tmpDir
	entries, err := os.ReadDir(tmp)
	if err != nil || len(entries) != 0 {
		t.Fatalf("temp files left: %v %v", entries, err)
	}
	if err := p.Deprovision(context.Background(), "filefn"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Fatalf("temp dir %s survives Deprovision: %v", tmp, err)
	}
}

func TestWatchdog_FailuresAre500WithClearMessage(t *testing.T) {
	tests := []struct {
		name    string
		mode    function.RuntimeMode
		handler string
		want    []string
	}{
		{"non-zero exit", function.RuntimeSTDIO, "fail", []string{"Process exited with code 2", "handler exploded: bad input"}},
		{"text on stdout", function.RuntimeSTDIO, "invalid", []string{"Invalid JSON output", "oops, printed text"}},
		{"two JSON documents", function.RuntimeSTDIO, "twodocs", []string{"exactly one JSON document"}},
		{"empty stdout", function.RuntimeSTDIO, "nooutput", []string{"Invalid JSON output", "empty"}},
		{"FILE non-zero exit", function.RuntimeFILE, "fail", []string{"Process exited with code 2", "handler exploded: bad input"}},
		{"FILE output not written", function.RuntimeFILE, "nooutput", []string{"Cannot read OUTPUT_FILE", "no such file"}},
	}
	p := newTestProvider(t)
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name := "bad" + string(rune('a'+i))
			url := provision(t, p, watchdogSpec(name, tc.mode, tc.handler, 10000))
			r := post(t, url, `{"input":"x"}`, nil)
			if r.status != http.StatusInternalServerError || r.header.Get("Content-Type") != "application/json" {
				t.Fatalf("got %d %q %s", r.status, r.header.Get("Content-Type"), r.body)
			}
			msg, _ := r.json(t)["error"].(string)
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
		})
	}
}

func TestWatchdog_FailureIsRecordedAsPoolErrorByTheDispatcher(t *testing.T) {
	p := newTestProvider(t)
	url := provision(t, p, watchdogSpec("poolerr", function.RuntimeSTDIO, "fail", 10000))
	spec := watchdogSpec("poolerr", function.RuntimeSTDIO, "fail", 10000)
	spec.EndpointURL = &url
	client := dispatch.NewHTTPClient(dispatch.ClientConfig{})
	defer client.CloseIdleConnections()
	dr, err := dispatch.NewPool(client, 0).Dispatch(context.Background(), &execution.Task{
		ExecutionID: "x-2", FunctionName: "poolerr", Spec: spec, Attempt: 1,
		Request: &execution.Request{Input: json.RawMessage(`1`)},
	})
	if err != nil || dr.Result.Success || dr.Result.Error == nil || dr.Result.Error.Code != dispatch.CodePoolError ||
		!strings.Contains(dr.Result.Error.Message, "handler exploded: bad input") {
		t.Fatalf("dispatch = %+v %+v, %v", dr, dr.Result.Error, err)
	}
}

func TestWatchdog_TimeoutKillsTheProcessGroup(t *testing.T) {
	p := newTestProvider(t)
	pids := newPIDFile(t)
	spec := watchdogSpec("slow", function.RuntimeSTDIO, "sleep", 300)
	spec.Env = map[string]string{"TR_PID_FILE": string(pids)}
	url := provision(t, p, spec)
	start := time.Now()
	r := post(t, url, `{"input":1}`, nil)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("answer took %v", d)
	}
	if r.status != http.StatusInternalServerError || !strings.Contains(r.body, "Process timed out after 300ms") {
		t.Fatalf("got %d %s", r.status, r.body)
	}
	started, _, _ := pids.read(t)
	if len(started) != 1 {
		t.Fatalf("started = %v", started)
	}
	assertChildGone(t, started[0])
}

func TestWatchdog_TimeoutAlsoKillsWhatTheHandlerStartedWithoutDelay(t *testing.T) {
	p := newTestProvider(t)
	pids := newPIDFile(t)
	spec := watchdogSpec("spawner", function.RuntimeSTDIO, "spawn", 300)
	spec.Env = map[string]string{"TR_PID_FILE": string(pids)}
	url := provision(t, p, spec)
	start := time.Now()
	r := post(t, url, `{"input":1}`, nil)
	// The grandchild holds the output pipes: the answer must not wait for pipeWaitDelay.
	if d := time.Since(start); d > 300*time.Millisecond+pipeWaitDelay-200*time.Millisecond {
		t.Errorf("answer took %v", d)
	}
	if r.status != http.StatusInternalServerError || !strings.Contains(r.body, "Process timed out after 300ms") {
		t.Fatalf("got %d %s", r.status, r.body)
	}
	handlers, _, grandchildren := pids.read(t)
	if len(handlers) != 1 || len(grandchildren) != 1 {
		t.Fatalf("handlers %v grandchildren %v", handlers, grandchildren)
	}
	assertChildGone(t, handlers[0]) // reaped by its supervisor, not left to init
	assertEventuallyDead(t, grandchildren[0])
}

func TestWatchdog_RequestsWithoutExecutionIDAreRejected(t *testing.T) {
	p := newTestProvider(t)
	url := provision(t, p, watchdogSpec("noid", function.RuntimeSTDIO, "echo", 10000))
	r := post(t, url, `{"input":1}`, map[string]string{"X-Execution-Id": ""})
	if r.status != http.StatusBadRequest || r.body != `{"error":"X-Execution-Id header is required"}` {
		t.Fatalf("got %d %s", r.status, r.body)
	}
	if r := post(t, url, `not json`, nil); r.status != http.StatusBadRequest {
		t.Fatalf("invalid JSON body: %d %s", r.status, r.body)
	}
	if r := get(t, url); r.status != http.StatusOK {
		t.Fatalf("GET /invoke = %d", r.status)
	}
}

func TestWatchdog_ReplicasAreConcurrencySlots(t *testing.T) {
	p := newTestProvider(t)
	slotLog := filepath.Join(t.TempDir(), "slots")
	spec := withMinReplicas(watchdogSpec("slots", function.RuntimeSTDIO, "slot", 10000), 2)
	spec.Env = map[string]string{"TR_SLOT_LOG": slotLog}
	url := provision(t, p, spec)
	if n := ready(t, p, "slots"); n != 2 {
		t.Fatalf("ReadyReplicas = %d", n)
	}

	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			if r := post(t, url, `{"input":1}`, nil); r.status != http.StatusOK {
				t.Errorf("got %d %s", r.status, r.body)
			}
		})
	}
	wg.Wait()
	data, err := os.ReadFile(slotLog)
	if err != nil {
		t.Fatal(err)
	}
	running, peak := 0, 0
	for _, ev := range strings.Fields(string(data)) {
		if ev == "start" {
			running++
		} else {
			running--
		}
		peak = max(peak, running)
	}
	if peak != 2 {
		t.Fatalf("peak concurrency = %d, want 2 (events %q)", peak, data)
	}

	if err := p.SetReplicas(context.Background(), "slots", 0); err != nil {
		t.Fatal(err)
	}
	if n := ready(t, p, "slots"); n != 0 {
		t.Fatalf("ReadyReplicas = %d", n)
	}
	if r := post(t, url, `{"input":1}`, nil); r.status != http.StatusServiceUnavailable || r.body != "No ready container backends" {
		t.Fatalf("0 slots: %d %q", r.status, r.body)
	}
	if r := get(t, strings.TrimSuffix(url, "/invoke")+"/health"); r.status != http.StatusServiceUnavailable {
		t.Fatalf("health with 0 slots = %d", r.status)
	}
}

func TestWatchdog_MissingRuntimeCommandFailsProvisioning(t *testing.T) {
	p := newTestProvider(t)
	for _, rc := range []string{"/nonexistent/handler.sh", "no-such-command-anywhere-42 arg"} {
		spec := watchdogSpec("nohandler", function.RuntimeSTDIO, "echo", 1000)
		spec.RuntimeCommand = &rc
		_, err := p.Provision(context.Background(), spec)
		if !failure.IsKind(err, failure.Unavailable) || !strings.Contains(err.Error(), "'nohandler'") {
			t.Fatalf("%q: err = %v", rc, err)
		}
		if p.state("nohandler") != nil {
			t.Fatal("state left behind")
		}
	}
}

func TestWatchdog_CloseKillsRunningCommand(t *testing.T) {
	p := newTestProvider(t)
	pids := newPIDFile(t)
	spec := watchdogSpec("closing", function.RuntimeSTDIO, "sleep", 60000)
	spec.Env = map[string]string{"TR_PID_FILE": string(pids)}
	url := provision(t, p, spec)
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"input":1}`))
		req.Header.Set("X-Execution-Id", "e")
		c := &http.Client{Transport: &http.Transport{}}
		defer c.CloseIdleConnections()
		if resp, err := c.Do(req); err == nil {
			_ = resp.Body.Close()
		}
	}()
	eventually(t, "command to start", func() bool { s, _, _ := pids.read(t); return len(s) == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_ = p.Close(ctx)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Close took %v", d)
	}
	started, _, _ := pids.read(t)
	assertChildGone(t, started[0])
	<-done
}
