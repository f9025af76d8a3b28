package controlplane

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nanofaas/control-plane/internal/proctree"
)

// functionProcesses counts this test process's descendants running binary (replicas run under
// a supervisor shell, so they are grandchildren).
func functionProcesses(t *testing.T, binary string) int {
	t.Helper()
	n := 0
	for _, pid := range proctree.Descendants(os.Getpid()) {
		if proctree.Exe(pid) == binary {
			n++
		}
	}
	return n
}

// TestApp_AutoscalerScalesProcessBackendReplicasWithQueueDepth drives the internal autoscaler
// against the process backend: a backlog in the async queue scales an INTERNAL function from one
// replica to its maximum.
func TestApp_AutoscalerScalesProcessBackendReplicasWithQueueDepth(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "slowfn")
	if out, err := exec.Command("go", "build", "-o", bin, "./testdata/slowfn").CombinedOutput(); err != nil {
		t.Fatalf("build slowfn: %v\n%s", err, out)
	}
	t.Setenv("SLOW_MS", "200")
	api, _ := startApp(t,
		"--nanofaas.deployment.default-backend=process",
		"--nanofaas.scaling.poll-interval-ms=100",
	)
	spec := `{"name":"slow","image":"unused","command":["` + bin + `"],"concurrency":1,"queueSize":100,"maxRetries":1,` +
		`"scalingConfig":{"strategy":"INTERNAL","minReplicas":1,"maxReplicas":3,"metrics":[{"type":"queue_depth","target":"2"}]}}`
	if code, body := call(t, "POST", api+"/v1/functions", spec); code != 201 {
		t.Fatalf("register = %d %s", code, body)
	}
	if n := functionProcesses(t, bin); n != 1 {
		t.Fatalf("replicas after register = %d, want 1", n)
	}
	for range 20 {
		if code, body := call(t, "POST", api+"/v1/functions/slow:enqueue", `{"input":1}`); code != 202 {
			t.Fatalf("enqueue = %d %s", code, body)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for functionProcesses(t, bin) != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("autoscaler did not reach 3 replicas; have %d", functionProcesses(t, bin))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, _ := call(t, "DELETE", api+"/v1/functions/slow", ""); code != 204 {
		t.Fatalf("delete = %d", code)
	}
	deadline = time.Now().Add(10 * time.Second)
	for functionProcesses(t, bin) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("replicas left after delete: %d", functionProcesses(t, bin))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestApp_DeletingAProcessFunctionWithInvocationsInFlightEndsThemCleanly deletes a function while
// a sync invocation is running in one of its replicas: the invocation still gets a proper answer
// (the replica finishes its request on SIGTERM, or the attempt fails with an error status), the
// delete succeeds and no function process is left.
func TestApp_DeletingAProcessFunctionWithInvocationsInFlightEndsThemCleanly(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "slowfn")
	if out, err := exec.Command("go", "build", "-o", bin, "./testdata/slowfn").CombinedOutput(); err != nil {
		t.Fatalf("build slowfn: %v\n%s", err, out)
	}
	t.Setenv("SLOW_MS", "500")
	api, _ := startApp(t, "--nanofaas.deployment.default-backend=process")
	spec := `{"name":"slow","image":"unused","command":["` + bin + `"],"maxRetries":1}`
	if code, body := call(t, "POST", api+"/v1/functions", spec); code != 201 {
		t.Fatalf("register = %d %s", code, body)
	}
	type answer struct {
		code int
		body string
	}
	answers := make(chan answer, 3)
	for range 3 {
		go func() {
			code, body := call(t, "POST", api+"/v1/functions/slow:invoke", `{"input":1}`)
			answers <- answer{code, body}
		}()
	}
	time.Sleep(150 * time.Millisecond) // the invocations are running in the replica
	if code, body := call(t, "DELETE", api+"/v1/functions/slow", ""); code != 204 {
		t.Fatalf("delete = %d %s", code, body)
	}
	for range 3 {
		select {
		case a := <-answers:
			if a.code != 200 || !(strings.Contains(a.body, `"status":"success"`) || strings.Contains(a.body, `"status":"error"`)) {
				t.Errorf("in-flight invocation answered %d %s", a.code, a.body)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("an in-flight invocation never answered after the delete")
		}
	}
	if n := functionProcesses(t, bin); n != 0 {
		t.Errorf("%d function processes left after delete", n)
	}
}
