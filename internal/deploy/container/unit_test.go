package container

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nanofaas/control-plane/internal/config"
	"github.com/nanofaas/control-plane/internal/function"
)

func TestContainerName_NormalizesFunctionName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		fn   string
		k    int
		want string
	}{
		{"word-stats", 1, "nanofaas-word-stats-r1"},
		{"Word_Stats", 2, "nanofaas-word-stats-r2"},
		{"a..b--c", 3, "nanofaas-a-b-c-r3"},
		{"--Edge--", 1, "nanofaas-edge-r1"},
		{"élan", 1, "nanofaas-lan-r1"},
		{"___", 4, "nanofaas-fn-r4"},
		{"", 1, "nanofaas-fn-r1"},
	}
	for _, tc := range tests {
		if got := containerName(tc.fn, tc.k); got != tc.want {
			t.Errorf("containerName(%q, %d) = %q, want %q", tc.fn, tc.k, got, tc.want)
		}
	}
}

func TestContainerEnv_OptionalEntriesOnlyWhenSet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		mutate   func(*function.Spec)
		callback string
		want     []string
	}{
		{
			name:   "minimal",
			mutate: func(s *function.Spec) { s.RuntimeMode = nil },
			want:   []string{"FUNCTION_NAME=f", "TIMEOUT_MS=5000", "WARM=true"},
		},
		{
			name:     "blank runtime command and callback",
			mutate:   func(s *function.Spec) { s.RuntimeCommand = ptr("  ") },
			callback: " ",
			want:     []string{"EXECUTION_MODE=HTTP", "FUNCTION_NAME=f", "TIMEOUT_MS=5000", "WARM=true"},
		},
		{
			name: "user env cannot override reserved names",
			mutate: func(s *function.Spec) {
				s.Env = map[string]string{"TIMEOUT_MS": "1", "CALLBACK_URL": "x", "EXECUTION_MODE": "FILE", "WATCHDOG_CMD": "y", "B": "", "A": "1"}
			},
			callback: "http://cb",
			want:     []string{"A=1", "B=", "CALLBACK_URL=http://cb", "EXECUTION_MODE=HTTP", "FUNCTION_NAME=f", "TIMEOUT_MS=5000", "WARM=true"},
		},
	}
	for _, tc := range tests {
		spec := wordStatsSpec("f")
		tc.mutate(spec)
		if got := containerEnv(spec, tc.callback); !slices.Equal(got, tc.want) {
			t.Errorf("%s: env = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestRunArgs_PublishesOnBindHostOnly(t *testing.T) {
	t.Parallel()
	spec := wordStatsSpec("f")
	spec.Image = "img:1"
	got := runArgs("nanofaas-f-r1", "[::1]:4711", []string{"A=1"}, spec)
	want := []string{"run", "-d", "--name", "nanofaas-f-r1", "-p", "[::1]:4711:8080", "-e", "A=1", "img:1"}
	if !slices.Equal(got, want) {
		t.Fatalf("args = %q, want %q", got, want)
	}
}

func TestInitialReplicas_MinReplicasElseOne(t *testing.T) {
	t.Parallel()
	tests := []struct {
		sc   *function.ScalingConfig
		want int
	}{
		{nil, 1},
		{&function.ScalingConfig{}, 1},
		{&function.ScalingConfig{MinReplicas: ptr(0)}, 0},
		{&function.ScalingConfig{MinReplicas: ptr(3)}, 3},
		{&function.ScalingConfig{MinReplicas: ptr(-2)}, 0},
	}
	for _, tc := range tests {
		spec := wordStatsSpec("f")
		spec.ScalingConfig = tc.sc
		if got := initialReplicas(spec); got != tc.want {
			t.Errorf("initialReplicas(%+v) = %d, want %d", tc.sc, got, tc.want)
		}
	}
}

func TestCLI_ResultsOfExecutor(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	fail := newFake(t, "FAKE_CLI_FAIL_VERSION=1", "FAKE_CLI_FAIL_RUN=1")
	hang := newFake(t, "FAKE_CLI_HANG=version")
	tests := []struct {
		name       string
		c          *cli
		args       []string
		wantCode   int
		wantOutput string // prefix
	}{
		{"success", &cli{path: fakeCLI, env: f.env, timeout: time.Minute}, []string{"version"}, 0, "Client: fakecli"},
		{"non-zero exit keeps output", &cli{path: fakeCLI, env: fail.env, timeout: time.Minute}, []string{"version"}, 1, "Cannot connect to the Docker daemon"},
		{"exit code passed through", &cli{path: fakeCLI, env: fail.env, timeout: time.Minute},
			[]string{"run", "-d", "--name", "x-r1", "-p", "127.0.0.1:1:8080", "img"}, 125, "docker: Error response from daemon: injected failure for x-r1."},
		{"timeout", &cli{path: fakeCLI, env: hang.env, timeout: 150 * time.Millisecond}, []string{"version"}, 124, "Timed out after 150ms"},
		{"spawn failure", &cli{path: "/nonexistent/docker", timeout: time.Minute}, []string{"version"}, 1, "fork/exec /nonexistent/docker: no such file or directory"},
	}
	for _, tc := range tests {
		res := tc.c.run(context.Background(), tc.args...)
		if res.exitCode != tc.wantCode || !strings.HasPrefix(res.output, tc.wantOutput) {
			t.Errorf("%s: result = %d %q, want %d %q…", tc.name, res.exitCode, res.output, tc.wantCode, tc.wantOutput)
		}
	}
}

func TestCLI_CallerCancellationIsNotATimeout(t *testing.T) {
	t.Parallel()
	hang := newFake(t, "FAKE_CLI_HANG=version")
	c := &cli{path: fakeCLI, env: hang.env, timeout: time.Minute}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	res := c.run(ctx, "version")
	if res.exitCode == 0 || res.exitCode == exitTimedOut || !strings.HasPrefix(res.output, "Interrupted: context canceled") {
		t.Fatalf("result = %d %q", res.exitCode, res.output)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("cancellation took %v", d)
	}
}

func TestTailBuffer_KeepsTheEnd(t *testing.T) {
	t.Parallel()
	var b tailBuffer
	_, _ = b.Write([]byte("head "))
	for range 3 * maxOutput / 1024 {
		_, _ = b.Write([]byte(strings.Repeat("x", 1023) + "\n"))
	}
	_, _ = b.Write([]byte("the error"))
	s := b.String()
	if !strings.HasPrefix(s, "…") || !strings.HasSuffix(s, "the error") || len(s) > maxOutput+len("…") {
		t.Fatalf("tail buffer kept %d bytes, prefix %q, suffix %q", len(s), s[:8], s[len(s)-12:])
	}
	var small tailBuffer
	_, _ = small.Write([]byte("ok"))
	if small.String() != "ok" {
		t.Fatalf("small = %q", small.String())
	}
}

func TestNew_AppliesDefaults(t *testing.T) {
	t.Parallel()
	p := New(ConfigFrom(config.ContainerLocal{RuntimeAdapter: "  ", BindHost: ""}, nil))
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	c := p.cfg
	if c.RuntimeAdapter != "docker" || c.BindHost != "127.0.0.1" || c.ReadinessTimeout != 20*time.Second ||
		c.ReadinessPollInterval != 250*time.Millisecond || c.CLITimeout != 2*time.Minute || c.CallbackURL != "" {
		t.Fatalf("defaults = %+v", c)
	}
	if p.cli.path != "docker" {
		t.Fatalf("cli = %q", p.cli.path)
	}
}
