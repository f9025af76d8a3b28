package examples_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nanofaas/control-plane/internal/function"
	"github.com/nanofaas/control-plane/internal/registry"
)

// repoRoot is where the control plane runs from under `make run`; commands are relative to it.
const repoRoot = ".."

func TestFunctionJSON_IsAValidProcessBackendRegistration(t *testing.T) {
	files, err := filepath.Glob("*/function.json")
	if err != nil || len(files) < 3 {
		t.Fatalf("function.json files = %v, %v; want one per example", files, err)
	}
	for _, file := range files {
		dir := filepath.Dir(file)
		t.Run(dir, func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			spec, err := function.DecodeSpec(raw)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if details := spec.Validate(); details != nil {
				t.Fatalf("validation: %v", details)
			}
			resolved, err := registry.NewResolver(registry.ReferenceDefaults()).Resolve(&spec)
			if err != nil {
				t.Fatalf("resolve: %v", err)
			}
			if spec.Name != dir {
				t.Errorf("name = %q, want the directory name %q", spec.Name, dir)
			}
			if resolved.Mode() != function.ModeDeployment {
				t.Errorf("executionMode = %q, want DEPLOYMENT", resolved.Mode())
			}
			if got := *resolved.ScalingConfig.MinReplicas; got != 1 {
				t.Errorf("minReplicas = %d, want 1", got)
			}
			switch *resolved.RuntimeMode {
			case function.RuntimeHTTP:
				want := []string{"./bin/examples/" + dir}
				if strings.Join(spec.Command, " ") != want[0] {
					t.Errorf("command = %q, want %q", spec.Command, want)
				}
				if _, err := os.Stat(filepath.Join(dir, "main.go")); err != nil {
					t.Errorf("HTTP example without a Go main package: %v", err)
				}
			case function.RuntimeSTDIO:
				if len(spec.Command) != 0 {
					t.Errorf("STDIO example has a command %q; the built-in watchdog runs runtimeCommand", spec.Command)
				}
				argv := strings.Fields(*spec.RuntimeCommand)
				if len(argv) != 2 || argv[0] != "sh" {
					t.Fatalf("runtimeCommand = %q, want \"sh <script>\"", *spec.RuntimeCommand)
				}
				if _, err := os.Stat(filepath.Join(repoRoot, argv[1])); err != nil {
					t.Errorf("runtimeCommand script not found from the repo root: %v", err)
				}
			default:
				t.Errorf("runtimeMode = %q", *resolved.RuntimeMode)
			}
		})
	}
}

func TestShellUpper_HandlesRequestsOnStdin(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh on PATH")
	}
	tests := []struct {
		name     string
		request  string
		want     string
		wantExit int
	}{
		{"string input", `{"input":"hello, World!","metadata":null}`, `{"upper":"HELLO, WORLD!"}`, 0},
		{"escapes are kept", `{"input":"a\"b\\c\nd \u00e9"}`, `{"upper":"A\"B\\C\nD \u00e9"}`, 0},
		{"non-ASCII passes through", `{"input":"café"}`, `{"upper":"CAFé"}`, 0},
		{"other members are skipped, even tricky ones", `{"metadata":{"k":"}\""},"x\"y":[1,{"input":"no"}],"input":"yes"}`, `{"upper":"YES"}`, 0},
		{"pretty-printed request", "{\n  \"input\" : \"multi line\"\n}\n", `{"upper":"MULTI LINE"}`, 0},
		{"non-string input is a domain error", `{"input":{"text":"x"}}`, `{"error":"Field 'input' must be a JSON string"}`, 0},
		{"missing input is a domain error", `{"metadata":null}`, `{"error":"Field 'input' must be a JSON string"}`, 0},
		{"not an object fails", `["input"]`, ``, 1},
		{"truncated request fails", `{"input":"abc`, ``, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command("sh", "examples/shell-upper/handler.sh") // as runtimeCommand runs it
			cmd.Dir = repoRoot
			cmd.Stdin = strings.NewReader(tt.request)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			exit := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				exit = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if exit != tt.wantExit {
				t.Fatalf("exit = %d, want %d (stderr %q)", exit, tt.wantExit, stderr.String())
			}
			if tt.wantExit != 0 {
				if stderr.Len() == 0 {
					t.Error("failure without a message on stderr")
				}
				return
			}
			out := strings.TrimSuffix(stdout.String(), "\n")
			if out != tt.want {
				t.Errorf("stdout = %s, want %s", out, tt.want)
			}
			dec := json.NewDecoder(strings.NewReader(stdout.String()))
			var doc any
			if err := dec.Decode(&doc); err != nil {
				t.Fatalf("stdout is not JSON: %v", err)
			}
			if dec.More() {
				t.Error("stdout holds more than one JSON document")
			}
		})
	}
}
