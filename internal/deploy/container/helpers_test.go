package container

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/nanofaas/control-plane/internal/failure"
	"github.com/nanofaas/control-plane/internal/function"
	"github.com/nanofaas/control-plane/internal/syncbuffer"
)

// Built by TestMain: the fake Docker CLI and the word-stats function it runs as "containers".
// Every fake engine keeps its state in a directory under stateRoot, which TestMain sweeps for
// surviving processes at the end.
var (
	fakeCLI   string
	wordStats string
	stateRoot string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "nanofaas-container-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fakeCLI = filepath.Join(dir, "fakecli")
	wordStats = filepath.Join(dir, "word-stats")
	stateRoot = filepath.Join(dir, "state")
	for _, b := range []struct{ out, pkg string }{
		{fakeCLI, "./testdata/fakecli"},
		{wordStats, "github.com/nanofaas/control-plane/examples/word-stats"},
	} {
		build := exec.Command("go", "build", "-o", b.out, b.pkg)
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", b.pkg, err, out)
			_ = os.RemoveAll(dir)
			os.Exit(2)
		}
	}
	if err := os.Mkdir(stateRoot, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}

	code := m.Run()

	if leaked := sweep(stateRoot); len(leaked) > 0 {
		fmt.Fprintf(os.Stderr, "containers left running (killed now): %v\n", leaked)
		code = 1
	}
	_ = os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// sweep kills every fake container process still alive under root and returns them. It scans
// /proc for the fake's marker variable rather than trusting its records, so a container whose
// record was never written is found too.
func sweep(root string) []string {
	var leaked []string
	marker := []byte("FAKE_CLI_CONTAINER=" + root + string(filepath.Separator))
	procs, _ := filepath.Glob("/proc/[0-9]*/environ")
	for _, f := range procs {
		environ, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for kv := range bytes.SplitSeq(environ, []byte{0}) {
			if !bytes.HasPrefix(kv, marker) {
				continue
			}
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
			if alive(pid) {
				_ = syscall.Kill(-pid, syscall.SIGKILL)
				_ = syscall.Kill(pid, syscall.SIGKILL)
				leaked = append(leaked, fmt.Sprintf("%s (pid %d)", filepath.Base(string(kv)), pid))
			}
			break
		}
	}
	return leaked
}

// alive reports whether pid runs; a zombie (killed, not yet reaped by its adoptive parent) is
// dead.
func alive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(stat)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// fakeRecord mirrors the fake CLI's NAME.json.
type fakeRecord struct {
	Name    string   `json:"name"`
	PID     int      `json:"pid"`
	Image   string   `json:"image"`
	Publish string   `json:"publish"`
	Env     []string `json:"env"`
	Cmd     []string `json:"cmd"`
}

// fakeEngine is one test's view of the fake CLI's state.
type fakeEngine struct {
	t     *testing.T
	state string
	env   []string // environment of CLI commands

	mu   sync.Mutex
	pids map[int]string // every container process seen, for the final liveness check
}

// newFake returns a fresh fake engine; extra adds fault-injection variables. At cleanup (after
// the provider's, which is registered later) it checks that no container is left and that every
// container process it saw is dead.
func newFake(t *testing.T, extra ...string) *fakeEngine {
	t.Helper()
	state, err := os.MkdirTemp(stateRoot, "t-")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeEngine{
		t:     t,
		state: state,
		env:   append([]string{"FAKE_CLI_STATE=" + state, "FAKE_CLI_RUNTIME=" + wordStats}, extra...),
		pids:  map[int]string{},
	}
	t.Cleanup(func() {
		if left := f.containers(); len(left) > 0 {
			t.Errorf("containers left after cleanup: %v", slices.Sorted(maps.Keys(left)))
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		for pid, name := range f.pids {
			if alive(pid) {
				t.Errorf("process %d of container %s still alive after cleanup", pid, name)
			}
		}
	})
	return f
}

// containers returns the running containers by name.
func (f *fakeEngine) containers() map[string]fakeRecord {
	f.t.Helper()
	files, err := filepath.Glob(filepath.Join(f.state, "*.json"))
	if err != nil {
		f.t.Fatal(err)
	}
	out := make(map[string]fakeRecord, len(files))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			continue // removed meanwhile
		}
		var rec fakeRecord
		if err := json.Unmarshal(data, &rec); err != nil {
			f.t.Fatalf("%s: %v", file, err)
		}
		out[rec.Name] = rec
		f.mu.Lock()
		f.pids[rec.PID] = rec.Name
		f.mu.Unlock()
	}
	return out
}

// containerNames returns the running containers' names, sorted.
func (f *fakeEngine) containerNames() []string {
	return slices.Sorted(maps.Keys(f.containers()))
}

// calls returns every CLI invocation's arguments in order.
func (f *fakeEngine) calls() [][]string {
	f.t.Helper()
	data, err := os.ReadFile(filepath.Join(f.state, "calls.jsonl"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		f.t.Fatal(err)
	}
	var out [][]string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var args []string
		if err := json.Unmarshal(sc.Bytes(), &args); err != nil {
			f.t.Fatalf("calls.jsonl: %v", err)
		}
		out = append(out, args)
	}
	return out
}

// callsOf returns the invocations whose first argument is cmd.
func (f *fakeEngine) callsOf(cmd string) [][]string {
	var out [][]string
	for _, c := range f.calls() {
		if len(c) > 0 && c[0] == cmd {
			out = append(out, c)
		}
	}
	return out
}

// removed returns the names passed to `rm -f`, in call order.
func (f *fakeEngine) removed() []string {
	var out []string
	for _, c := range f.callsOf("rm") {
		out = append(out, c[2:]...)
	}
	return out
}

// started returns the --name of every `run`, in call order.
func (f *fakeEngine) started() []string {
	var out []string
	for _, c := range f.callsOf("run") {
		if i := slices.Index(c, "--name"); i >= 0 && i+1 < len(c) {
			out = append(out, c[i+1])
		}
	}
	return out
}

// newTestProvider returns a provider driving f with short timings; it is closed at cleanup.
func newTestProvider(t *testing.T, f *fakeEngine, mods ...func(*Config)) *Provider {
	t.Helper()
	log := &syncbuffer.Buffer{}
	cfg := Config{
		RuntimeAdapter:        fakeCLI,
		Environ:               f.env,
		ReadinessTimeout:      10 * time.Second,
		ReadinessPollInterval: 10 * time.Millisecond,
		CLITimeout:            30 * time.Second,
		Logger:                slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})),
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
		if t.Failed() {
			t.Logf("provider log:\n%s", log.String())
		}
	})
	return p
}

func ptr[T any](v T) *T { return &v }

// wordStatsSpec is a resolved DEPLOYMENT spec of the word-stats image.
func wordStatsSpec(name string) *function.Spec {
	return &function.Spec{
		Name:          name,
		Image:         "nanofaas/example-word-stats:local",
		TimeoutMs:     ptr(5000),
		ExecutionMode: ptr(function.ModeDeployment),
		RuntimeMode:   ptr(function.RuntimeHTTP),
	}
}

func withMinReplicas(s *function.Spec, n int) *function.Spec {
	s.ScalingConfig = &function.ScalingConfig{MinReplicas: ptr(n)}
	return s
}

// requireUnavailable fails unless err is a failure.Unavailable with exactly msg.
func requireUnavailable(t *testing.T, err error, msg string) {
	t.Helper()
	var fe *failure.Error
	if !errors.As(err, &fe) || fe.Kind != failure.Unavailable {
		t.Fatalf("error = %v (%T), want failure.Unavailable", err, err)
	}
	if msg != "" && fe.Message != msg {
		t.Fatalf("message = %q\nwant      %q", fe.Message, msg)
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}
