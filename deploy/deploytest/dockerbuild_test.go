package deploytest

import (
	"bufio"
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// No Docker engine is needed to check what the image would contain: the builder stage's own
// `go build` command is run as written (the output path aside), and the binary is checked to be
// static and to report the version passed as the VERSION build argument.
func TestDockerfile_BuildCommandMakesAStaticBinaryReportingItsVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the control plane")
	}
	stages := parseDockerfile(t, readRepoFile(t, "Dockerfile"))
	runs := stages[0].find("RUN")
	i := slices.IndexFunc(runs, func(r string) bool { return strings.Contains(r, "go build") })
	if i < 0 {
		t.Fatalf("no RUN go build in the builder: %q", runs)
	}
	out := filepath.Join(t.TempDir(), "control-plane")
	script := strings.Replace(runs[i], "-o /out/control-plane", "-o "+out, 1)
	build := exec.Command("sh", "-c", script)
	build.Dir = repoRoot(t)
	const version = "v9.8.7-dockerfile-test"
	build.Env = append(os.Environ(), "VERSION="+version)
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, b)
	}

	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("binary has a %v program header: not static, distroless/static cannot run it", p.Type)
		}
	}
	if f.Section(".symtab") != nil {
		t.Error("binary keeps its symbol table: -s was not applied")
	}

	// The version reaches the start-up log line.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, out, "--server.port=0", "--management.server.port=0", "--nanofaas.control-plane.modules=none")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if line := sc.Text(); strings.Contains(line, "control plane ready") {
			if !strings.Contains(line, "version="+version) {
				t.Errorf("ready line %q does not report version %s", line, version)
			}
			return
		}
	}
	t.Fatalf("no ready line before the output ended: %v", sc.Err())
}
