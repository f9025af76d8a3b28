package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/nanofaas/control-plane/internal/function"
	"github.com/nanofaas/control-plane/internal/registry"
)

// examplesGlob is where `make run` finds the example registrations, relative to the working
// directory (the repository root).
const examplesGlob = "examples/*/function.json"

// registerExamples registers every example function (--register-examples) and returns the names
// registered. A failing example is reported and skipped; the others still register.
func (a *App) registerExamples(ctx context.Context) ([]string, error) {
	files, err := filepath.Glob(examplesGlob)
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no %s found in %s (run from the repository root)", examplesGlob, mustGetwd())
	}
	sort.Strings(files)
	var names []string
	var errs []error
	for _, file := range files {
		name, err := a.registerExample(ctx, file)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", file, err))
			continue
		}
		names = append(names, name)
	}
	return names, errors.Join(errs...)
}

func (a *App) registerExample(ctx context.Context, file string) (string, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	spec, err := function.DecodeSpec(raw)
	if err != nil {
		return "", err
	}
	if details := spec.Validate(); len(details) > 0 {
		return "", errors.New(strings.Join(details, "; "))
	}
	if _, err := a.functions.Register(ctx, spec); err != nil && !errors.Is(err, registry.ErrAlreadyRegistered) {
		return "", err
	}
	return spec.Name, nil
}

func mustGetwd() string {
	wd, err := os.Getwd()
	if err != nil {
		return "."
	}
	return wd
}

// printQuickstart writes ready-to-paste commands for the registered examples.
func printQuickstart(w io.Writer, api, mgmt string, names []string) {
	has := map[string]bool{}
	for _, n := range names {
		has[n] = true
	}
	fmt.Fprintf(w, "\nnanofaas control plane is up: API %s, management %s\n", api, mgmt)
	fmt.Fprintf(w, "Registered example functions: %s\n\nTry:\n", strings.Join(names, ", "))
	if has["word-stats"] {
		fmt.Fprintf(w, "  curl -s -X POST %s/v1/functions/word-stats:invoke -H 'Content-Type: application/json' -d '{\"input\":{\"text\":\"the quick brown fox jumps over the lazy dog the end\",\"topN\":3}}'\n", api)
		fmt.Fprintf(w, "  curl -s -X POST %s/v1/functions/word-stats:enqueue -H 'Content-Type: application/json' -d '{\"input\":{\"text\":\"async hello\"}}'\n", api)
		fmt.Fprintf(w, "  curl -s %s/v1/executions/<executionId from the previous answer>\n", api)
		fmt.Fprintf(w, "  curl -s -X PUT %s/v1/functions/word-stats/replicas -H 'Content-Type: application/json' -d '{\"replicas\":3}'\n", api)
	}
	if has["json-transform"] {
		fmt.Fprintf(w, "  curl -s -X POST %s/v1/functions/json-transform:invoke -H 'Content-Type: application/json' -d '{\"input\":{\"data\":[{\"dept\":\"a\",\"salary\":10},{\"dept\":\"a\",\"salary\":20},{\"dept\":\"b\",\"salary\":5}],\"groupBy\":\"dept\",\"operation\":\"sum\",\"valueField\":\"salary\"}}'\n", api)
	}
	if has["shell-upper"] {
		fmt.Fprintf(w, "  curl -s -X POST %s/v1/functions/shell-upper:invoke -H 'Content-Type: application/json' -d '{\"input\":\"hello from sh\"}'\n", api)
	}
	fmt.Fprintf(w, "  curl -s %s/v1/functions\n", api)
	fmt.Fprintf(w, "  curl -s %s/actuator/prometheus | grep '^function_'\n\n", mgmt)
}
