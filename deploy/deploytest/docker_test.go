package deploytest

import (
	"bufio"
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction with its continuation lines joined.
type instruction struct{ cmd, args string }

// stage is one FROM and the instructions after it.
type stage struct {
	from, as string
	steps    []instruction
}

// find returns the args of the instructions of cmd in s.
func (s stage) find(cmd string) []string {
	var out []string
	for _, in := range s.steps {
		if in.cmd == cmd {
			out = append(out, in.args)
		}
	}
	return out
}

// parseDockerfile splits a Dockerfile into stages (comments and parser directives dropped).
func parseDockerfile(t testing.TB, data []byte) []stage {
	t.Helper()
	var (
		stages []stage
		buf    strings.Builder
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if cont, ok := strings.CutSuffix(line, "\\"); ok {
			buf.WriteString(cont + " ")
			continue
		}
		buf.WriteString(line)
		cmd, args, _ := strings.Cut(buf.String(), " ")
		buf.Reset()
		in := instruction{cmd: strings.ToUpper(cmd), args: strings.Join(strings.Fields(args), " ")}
		if in.cmd == "FROM" {
			from, as, _ := strings.Cut(in.args, " AS ")
			stages = append(stages, stage{from: from, as: as})
			continue
		}
		if len(stages) == 0 {
			if in.cmd != "ARG" {
				t.Fatalf("Dockerfile: %s before the first FROM", in.cmd)
			}
			continue
		}
		stages[len(stages)-1].steps = append(stages[len(stages)-1].steps, in)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return stages
}

// goDirective is the major.minor of go.mod's go directive.
func goDirective(t testing.TB) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(readRepoFile(t, "go.mod"))
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	return string(m[1])
}

func TestDockerfile_BuildsAStaticTrimmedBinaryWithTheGoOfGoMod(t *testing.T) {
	stages := parseDockerfile(t, readRepoFile(t, "Dockerfile"))
	if len(stages) != 2 {
		t.Fatalf("stages = %d, want builder and final", len(stages))
	}
	build := stages[0]
	var p problems
	equal(&p, "builder FROM", build.from, "golang:"+goDirective(t))
	equal(&p, "builder AS", build.as, "build")
	runs := build.find("RUN")
	i := slices.IndexFunc(runs, func(r string) bool { return strings.Contains(r, "go build") })
	if i < 0 {
		t.Fatalf("no RUN go build in the builder: %q", runs)
	}
	for _, want := range []string{
		"CGO_ENABLED=0", "-trimpath", `-ldflags "-s -w -X main.version=${VERSION}"`,
		"-o /out/control-plane", "./cmd/control-plane",
	} {
		if !strings.Contains(runs[i], want) {
			p.addf("go build %q lacks %q", runs[i], want)
		}
	}
	if args := build.find("ARG"); !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "VERSION") }) {
		p.addf("builder ARGs = %q, want VERSION", args)
	}
	for _, msg := range p {
		t.Error(msg)
	}
}

func TestDockerfile_FinalImageRunsTheBinaryAsTheManifestsNonRootUser(t *testing.T) {
	stages := parseDockerfile(t, readRepoFile(t, "Dockerfile"))
	final := stages[len(stages)-1]
	var p problems
	equal(&p, "final FROM", final.from, "gcr.io/distroless/static:nonroot")
	equal(&p, "COPY", final.find("COPY"), []string{"--from=build /out/control-plane /control-plane"})
	// The UID the manifests' runAsUser names, numeric so that runAsNonRoot can verify it.
	equal(&p, "USER", final.find("USER"), []string{fmt.Sprintf("%d:%d", nonRootUID, nonRootUID)})
	equal(&p, "EXPOSE", final.find("EXPOSE"), []string{fmt.Sprintf("%d %d", httpPort, actuatorPort)})
	equal(&p, "ENTRYPOINT", final.find("ENTRYPOINT"), []string{`["/control-plane"]`})
	for _, msg := range p {
		t.Error(msg)
	}
}

func TestDockerfile_VersionFlagTargetsAStringVarOfMain(t *testing.T) {
	// -X silently does nothing when main.version does not exist or is not a string variable.
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(repoRoot(t), "cmd/control-plane/main.go"), nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.VAR {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if n.Name != "version" {
					continue
				}
				if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "string" || len(vs.Values) > i {
					t.Fatalf("main.version must be an uninitialized string var, got %#v", vs)
				}
				return
			}
		}
	}
	t.Fatal("cmd/control-plane/main.go declares no package-level var version")
}

// ignoreRule is one line of .dockerignore.
type ignoreRule struct {
	pattern string
	negate  bool
}

// parseDockerignore reads the subset of the syntax that .dockerignore uses: globs, "!"
// re-inclusion, and a leading "**/" for any depth.
func parseDockerignore(t testing.TB, data []byte) []ignoreRule {
	t.Helper()
	var out []ignoreRule
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		r := ignoreRule{}
		r.pattern, r.negate = strings.CutPrefix(line, "!")
		if strings.Contains(strings.TrimPrefix(r.pattern, "**/"), "**") {
			t.Fatalf(".dockerignore: %q uses ** other than as a prefix; teach parseDockerignore", line)
		}
		out = append(out, r)
	}
	return out
}

// ignored applies the rules to a slash-separated path like Docker: the last matching rule
// wins, and a pattern matching a parent directory matches the path.
func ignored(rules []ignoreRule, path string) bool {
	out := false
	for _, r := range rules {
		for p := path; p != "." && p != "/"; p = filepath.Dir(p) {
			if globMatch(r.pattern, p) {
				out = !r.negate
				break
			}
		}
	}
	return out
}

func globMatch(pattern, path string) bool {
	if rest, ok := strings.CutPrefix(pattern, "**/"); ok {
		segs := strings.Split(path, "/")
		for i := range segs {
			if globMatch(rest, strings.Join(segs[i:], "/")) {
				return true
			}
		}
		return false
	}
	ok, _ := filepath.Match(pattern, path)
	return ok
}

func TestDockerignore_AdmitsEverySourceOfTheBinaryAndNothingElse(t *testing.T) {
	root := repoRoot(t)
	rules := parseDockerignore(t, readRepoFile(t, ".dockerignore"))
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go command not found: %v", err)
	}
	cmd := exec.CommandContext(t.Context(), gobin, "list", "-deps",
		"-f", `{{if not .Standard}}{{with .Module}}{{.Path}}{{end}}|{{.Dir}}|{{join .GoFiles ","}},{{join .EmbedFiles ","}}{{end}}`,
		"./cmd/control-plane")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	needed := []string{"go.mod", "go.sum"}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		parts := strings.Split(line, "|")
		if len(parts) != 3 || parts[0] != "github.com/nanofaas/control-plane" {
			continue
		}
		rel, err := filepath.Rel(root, parts[1])
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range strings.Split(parts[2], ",") {
			if f != "" {
				needed = append(needed, filepath.ToSlash(filepath.Join(rel, f)))
			}
		}
	}
	if len(needed) < 10 {
		t.Fatalf("go list found only %v", needed)
	}
	for _, f := range needed {
		if ignored(rules, f) {
			t.Errorf("%s is needed by the build but .dockerignore excludes it", f)
		}
	}
	for _, f := range []string{
		".git/config", "bin/control-plane", "deploy/k8s/02-deployment.yaml", "README.md",
		"internal/api/http_test.go", "internal/api/api.test", "internal/deploy/process/testdata/x",
		"examples/word-stats/main.go", "Dockerfile",
	} {
		if !ignored(rules, f) {
			t.Errorf("%s reaches the build context; .dockerignore should exclude it", f)
		}
	}
}

func TestIgnored_FollowsDockerMatching(t *testing.T) {
	rules := []ignoreRule{{pattern: "*"}, {pattern: "src", negate: true}, {pattern: "**/*.tmp"}, {pattern: "src/keep.tmp", negate: true}}
	cases := map[string]bool{
		"README.md":         true,
		"src/a/b.go":        false, // re-included through its parent
		"src/a/b.tmp":       true,  // ** at any depth
		"src/b.tmp":         true,
		"src/keep.tmp":      false, // the last matching rule wins
		"other/src/main.go": true,
	}
	for path, want := range cases {
		if got := ignored(rules, path); got != want {
			t.Errorf("ignored(%q) = %v, want %v", path, got, want)
		}
	}
}
