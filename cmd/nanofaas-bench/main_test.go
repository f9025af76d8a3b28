package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseOptions_SmokeShrinksOnlyTheFlagsNotGiven(t *testing.T) {
	o, err := parseOptions([]string{"-smoke", "-rates=300", "-functions=5"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.rates, []float64{300}) || o.functions != 5 {
		t.Errorf("explicit flags overridden: rates %v functions %d", o.rates, o.functions)
	}
	if o.duration != 150*time.Millisecond || o.startups != 2 || !slices.Equal(o.asyncRates, []float64{100}) {
		t.Errorf("smoke defaults not applied: duration %v startups %d async %v", o.duration, o.startups, o.asyncRates)
	}
}

func TestParseOptions_Defaults(t *testing.T) {
	o, err := parseOptions(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.rates, []float64{500, 2000}) || !slices.Equal(o.asyncRates, o.rates) || o.duration != 10*time.Second ||
		o.functions != 10000 || o.p99Limit != 10*time.Millisecond || len(o.phases) != len(allPhases) ||
		o.out != "bench-results.json" || o.md != "bench-results.md" {
		t.Errorf("defaults = %+v", o)
	}
}

func TestParseOptions_RejectsBadSettings(t *testing.T) {
	for _, args := range [][]string{
		{"-rates=0"}, {"-rates=abc"}, {"-mode=nope"}, {"-mode=reverse-proxy"}, {"-phases=latency,warp"},
		{"-duration=0s"}, {"-search-start=10", "-search-max=5"}, {"-startups=0"}, {"extra"},
	} {
		if _, err := parseOptions(args, io.Discard); err == nil {
			t.Errorf("%v: want an error", args)
		}
	}
}

// TestSmoke_EveryPhaseProducesNumbers builds the harness and runs it end to end in -smoke mode:
// it builds and starts the real control plane, the fnruntime child and the proxy child. Timings
// are not asserted, only that each phase measured something.
func TestSmoke_EveryPhaseProducesNumbers(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end smoke run; skipped with -short")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "nanofaas-bench")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	jsonPath, mdPath := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.md")
	cmd := exec.CommandContext(ctx, bin, "-smoke", "-out", jsonPath, "-md", mdPath)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("smoke run: %v\n%s", err, out)
	}

	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var r Results
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if r.Machine.Cores <= 0 || r.Machine.GoVersion == "" || r.Machine.CPUModel == "" || !r.Run.Smoke {
		t.Errorf("machine/run = %+v %+v", r.Machine, r.Run)
	}
	paths := map[string]int{}
	for _, l := range r.Latency {
		if l.OK == 0 || l.P50Ms <= 0 || l.P99Ms < l.P50Ms || l.Achieved <= 0 {
			t.Errorf("latency row without numbers: %+v", l)
		}
		if (l.Path == pathDirect) != (l.MiddleCPUMsPer1k == nil) {
			t.Errorf("%s: middle CPU %v", l.Path, l.MiddleCPUMsPer1k)
		}
		paths[l.Path]++
	}
	for _, p := range []string{pathDirect, pathProxy, pathCPDefault, pathCPNone} {
		if paths[p] == 0 {
			t.Errorf("no latency rows for %s", p)
		}
	}
	if len(r.Added) != 2*len(r.Run.Rates) {
		t.Errorf("%d added rows, want %d", len(r.Added), 2*len(r.Run.Rates))
	}
	for _, a := range r.Added {
		if a.CPUMsPer1k == nil || a.ProxyCPUMsPer1k == nil {
			t.Errorf("added row without CPU: %+v", a)
		}
	}
	if len(r.Throughput) != 4 {
		t.Errorf("throughput rows = %+v", r.Throughput)
	}
	for _, tr := range r.Throughput {
		if tr.MaxRate <= 0 || len(tr.Steps) == 0 {
			t.Errorf("throughput row without numbers: %+v", tr)
		}
	}
	if len(r.Async) == 0 || r.AsyncMax == nil || len(r.AsyncMax.Steps) == 0 {
		t.Fatalf("async = %+v, max %+v", r.Async, r.AsyncMax)
	}
	for _, a := range r.Async {
		if a.Accepted == 0 || a.Completed == 0 || a.CompletionP50Ms <= 0 {
			t.Errorf("async row without numbers: %+v", a)
		}
	}
	if len(r.Footprint) != 2 {
		t.Fatalf("footprint = %+v", r.Footprint)
	}
	for _, f := range r.Footprint {
		if f.StartupMedianMs <= 0 || f.IdleRSSBytes <= 0 || f.RSSWithFunctionsBytes <= 0 || f.RegisterPerS <= 0 || f.Functions == 0 {
			t.Errorf("footprint row without numbers: %+v", f)
		}
	}
	if len(r.Targets) == 0 {
		t.Error("no targets evaluated")
	}
	md, err := os.ReadFile(mdPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), r.Machine.CPUModel) || !strings.Contains(string(md), "## Targets") {
		t.Errorf("markdown lacks the machine or the targets:\n%s", md)
	}
}
