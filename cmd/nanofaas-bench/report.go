package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// Paths the load goes through.
const (
	pathDirect    = "direct"     // harness → runtime
	pathProxy     = "proxy"      // harness → bare reverse proxy → runtime
	pathCPDefault = "cp-default" // harness → control plane, default modules (sync-queue on) → runtime
	pathCPNone    = "cp-none"    // harness → control plane, modules=none (sync-queue off) → runtime
)

// Results is everything one run measured; it is written as JSON and rendered as markdown.
type Results struct {
	Machine    Machine         `json:"machine"`
	Run        RunInfo         `json:"run"`
	Targets    []Target        `json:"targets"`
	Latency    []LatencyRow    `json:"latency"`
	Added      []AddedRow      `json:"added"`
	Throughput []ThroughputRow `json:"throughput"`
	Async      []AsyncRow      `json:"async"`
	AsyncMax   *ThroughputRow  `json:"asyncMaxEnqueue,omitempty"`
	Footprint  []FootprintRow  `json:"footprint"`
}

// RunInfo is how the run was configured.
type RunInfo struct {
	Started       time.Time `json:"started"`
	ElapsedS      float64   `json:"elapsedSeconds"`
	Smoke         bool      `json:"smoke"`
	Rates         []float64 `json:"rates"`
	AsyncRates    []float64 `json:"asyncRates"`
	DurationS     float64   `json:"durationSeconds"`
	WarmupS       float64   `json:"warmupSeconds"`
	StepDurationS float64   `json:"stepDurationSeconds"`
	ConfirmFails  int       `json:"confirmFailures"`
	P99LimitMs    float64   `json:"p99LimitMs"`
	Workers       int       `json:"workers"`
	FnConcurrency int       `json:"fnConcurrency"`
	Functions     int       `json:"functions"`
	ControlPlane  string    `json:"controlPlane"`
}

// LatencyRow is one fixed-rate sync run through one path. CPU figures are milliseconds of CPU
// (utime+stime) per 1000 successful requests: Middle is the control plane or proxy (absent for
// direct), Runtime the function runtime, Loadgen this harness.
type LatencyRow struct {
	Path              string   `json:"path"`
	PairedWith        string   `json:"pairedWith,omitempty"` // a direct run taken just before this control plane's run
	Rate              float64  `json:"rate"`
	Achieved          float64  `json:"achieved"`
	OK                int      `json:"ok"`
	Errors            int      `json:"errors"`
	FirstError        string   `json:"firstError,omitempty"`
	P50Ms             float64  `json:"p50Ms"`
	P99Ms             float64  `json:"p99Ms"`
	P999Ms            float64  `json:"p999Ms"`
	MaxMs             float64  `json:"maxMs"`
	MiddleCPUMsPer1k  *float64 `json:"middleCpuMsPer1k,omitempty"`
	RuntimeCPUMsPer1k float64  `json:"runtimeCpuMsPer1k"`
	LoadgenCPUMsPer1k float64  `json:"loadgenCpuMsPer1k"`
}

// AddedRow compares a control-plane run with the direct run taken just before it at the same
// rate, and its CPU with the bare proxy's at that rate.
type AddedRow struct {
	Path            string   `json:"path"`
	Rate            float64  `json:"rate"`
	AddedP50Ms      float64  `json:"addedP50Ms"`
	AddedP99Ms      float64  `json:"addedP99Ms"`
	AddedP999Ms     float64  `json:"addedP999Ms"`
	CPUMsPer1k      *float64 `json:"cpuMsPer1k,omitempty"`
	ProxyCPUMsPer1k *float64 `json:"proxyCpuMsPer1k,omitempty"`
	CPUVsProxy      *float64 `json:"cpuVsProxy,omitempty"` // nil when the proxy's CPU read 0 ticks
	ProxyAddedP99Ms *float64 `json:"proxyAddedP99Ms,omitempty"`
	DirectP99Ms     float64  `json:"directP99Ms"`
}

// ThroughputRow is a step search for the highest sustained rate of one path.
type ThroughputRow struct {
	Path     string   `json:"path"`
	MaxRate  float64  `json:"maxRate"`
	VsProxy  *float64 `json:"vsProxy,omitempty"`
	VsDirect *float64 `json:"vsDirect,omitempty"`
	Steps    []Step   `json:"steps"`
}

// AsyncRow is one fixed-rate :enqueue run on the default-modules control plane. Completion
// latency runs from each enqueue's scheduled send time to the moment the runtime ran it.
type AsyncRow struct {
	Rate            float64 `json:"rate"`
	Achieved        float64 `json:"achieved"`
	Accepted        int     `json:"accepted"`
	Errors          int     `json:"errors"`
	FirstError      string  `json:"firstError,omitempty"`
	EnqueueP50Ms    float64 `json:"enqueueP50Ms"`
	EnqueueP99Ms    float64 `json:"enqueueP99Ms"`
	Completed       int     `json:"completed"`
	Missing         int     `json:"missing"`
	CompletionP50Ms float64 `json:"completionP50Ms"`
	CompletionP99Ms float64 `json:"completionP99Ms"`
	CompletionP999  float64 `json:"completionP999Ms"`
	CompletionMaxMs float64 `json:"completionMaxMs"`
	CPUMsPer1k      float64 `json:"cpuMsPer1k"`
}

// FootprintRow is start-up and memory of one control-plane configuration.
type FootprintRow struct {
	Path                   string    `json:"path"`
	StartupMs              []float64 `json:"startupMs"` // exec → readiness 200, each start
	StartupMedianMs        float64   `json:"startupMedianMs"`
	IdleRSSBytes           int64     `json:"idleRssBytes"`     // VmRSS
	IdleRSSAnonBytes       int64     `json:"idleRssAnonBytes"` // RssAnon: heap, stacks
	IdleRSSFileBytes       int64     `json:"idleRssFileBytes"` // RssFile: mostly the mapped executable
	IdleCPUMsPerS          float64   `json:"idleCpuMsPerSecond"`
	IdleHeapInuseBytes     int64     `json:"idleHeapInuseBytes"`
	Functions              int       `json:"functions"`
	RegisterPerS           float64   `json:"registerPerSecond"`
	RSSWithFunctionsBytes  int64     `json:"rssWithFunctionsBytes"`
	HeapWithFunctionsBytes int64     `json:"heapInuseWithFunctionsBytes"`
	PerFunctionRSSBytes    float64   `json:"perFunctionRssBytes"`
	PerFunctionHeapBytes   float64   `json:"perFunctionHeapBytes"`
}

// Target is one figure checked against the goal. Targets are printed, not asserted.
type Target struct {
	Figure string  `json:"figure"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	Goal   string  `json:"goal"`
	Met    bool    `json:"met"`
}

// Goals from the issue.
const (
	goalAddedP99Ms      = 1.0
	goalAddedP99AtRate  = 2000
	goalCPUVsProxy      = 2.0
	goalThroughputRatio = 0.8
	goalIdleRSSMiB      = 30.0
	goalPerFunctionKiB  = 4.0
	goalReadyMs         = 100.0
)

// evaluateTargets fills r.Targets from the measured figures.
func (r *Results) evaluateTargets() {
	r.Targets = nil
	add := func(figure string, value float64, unit, goal string, met bool) {
		r.Targets = append(r.Targets, Target{Figure: figure, Value: value, Unit: unit, Goal: goal, Met: met})
	}
	goalRate := float64(goalAddedP99AtRate)
	if !containsRate(r.Run.Rates, goalRate) && len(r.Run.Rates) > 0 {
		goalRate = r.Run.Rates[len(r.Run.Rates)-1] // the goal's rate was not run: use the highest
	}
	for _, a := range r.Added {
		if a.Rate == goalRate {
			add(fmt.Sprintf("%s added p99 at %s req/s", a.Path, fmtNum(a.Rate)), a.AddedP99Ms, "ms",
				fmt.Sprintf("≤ %g ms at %d req/s", goalAddedP99Ms, goalAddedP99AtRate), a.AddedP99Ms <= goalAddedP99Ms)
		}
		if a.CPUVsProxy != nil {
			add(fmt.Sprintf("%s CPU per invocation vs proxy at %s req/s", a.Path, fmtNum(a.Rate)), *a.CPUVsProxy, "×",
				fmt.Sprintf("≤ %g×", goalCPUVsProxy), *a.CPUVsProxy <= goalCPUVsProxy)
		}
	}
	for _, t := range r.Throughput {
		if t.VsProxy != nil && (t.Path == pathCPDefault || t.Path == pathCPNone) {
			add(t.Path+" max throughput vs proxy", *t.VsProxy, "×", fmt.Sprintf("≥ %g×", goalThroughputRatio),
				*t.VsProxy >= goalThroughputRatio)
		}
	}
	for _, f := range r.Footprint {
		idle := float64(f.IdleRSSBytes) / (1 << 20)
		add(f.Path+" idle RSS", idle, "MiB", fmt.Sprintf("≤ %g MiB", goalIdleRSSMiB), idle <= goalIdleRSSMiB)
		if f.Functions > 0 {
			per := f.PerFunctionRSSBytes / 1024
			add(fmt.Sprintf("%s RSS per registered function (%d)", f.Path, f.Functions), per, "KiB",
				fmt.Sprintf("≤ %g KiB", goalPerFunctionKiB), per <= goalPerFunctionKiB)
		}
		add(f.Path+" ready after exec (median)", f.StartupMedianMs, "ms", fmt.Sprintf("≤ %g ms", goalReadyMs),
			f.StartupMedianMs <= goalReadyMs)
	}
}

func containsRate(rates []float64, r float64) bool {
	for _, x := range rates {
		if x == r {
			return true
		}
	}
	return false
}

func writeJSONFile(path string, r *Results) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// writeMarkdown renders r as markdown tables.
func writeMarkdown(w io.Writer, r *Results) error {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "# nanofaas control-plane benchmark\n\n")
	fmt.Fprintf(&b, "**Machine:** %s, %d cores, %s, %s, kernel %s, RAM %s; load average %s at start, %s at end.\n\n",
		m.CPUModel, m.Cores, m.GoVersion, m.OSArch, m.Kernel, m.MemTotal, m.LoadAvgStart, m.LoadAvgEnd)
	ri := r.Run
	mode := "full"
	if ri.Smoke {
		mode = "SMOKE (tiny rates and durations: the numbers only show that every phase ran)"
	}
	fmt.Fprintf(&b, "**Run:** %s; started %s, took %.0f s; rates %s req/s, %g s each after %g s warm-up; "+
		"throughput steps %g s, sustained = p99 < %g ms, errors ≤ 1%%, ≥ 95%% of the offered rate served, "+
		"a failed step re-run up to %d time(s) before its rate counts as not sustained; "+
		"%d load workers; bench function concurrency %d; control plane %s.\n\n",
		mode, ri.Started.Format(time.RFC3339), ri.ElapsedS, joinRates(ri.Rates), ri.DurationS, ri.WarmupS,
		ri.StepDurationS, ri.P99LimitMs, ri.ConfirmFails, ri.Workers, ri.FnConcurrency, ri.ControlPlane)
	b.WriteString("Paths: `direct` = harness → fnruntime; `proxy` = harness → bare httputil.ReverseProxy → fnruntime; " +
		"`cp-default` = harness → control plane with default modules (sync-queue on) → fnruntime (POOL function); " +
		"`cp-none` = the same with `--nanofaas.control-plane.modules=none` (sync-queue off). The load is open-loop " +
		"(constant arrival rate); latency is measured from each request's scheduled send time.\n\n")

	if len(r.Targets) > 0 {
		b.WriteString("## Targets (printed, not asserted)\n\n| figure | value | goal | met |\n|---|---:|---|---|\n")
		for _, t := range r.Targets {
			fmt.Fprintf(&b, "| %s | %s %s | %s | %s |\n", t.Figure, fmtNum(t.Value), t.Unit, t.Goal, yesNo(t.Met))
		}
		b.WriteString("\n")
	}
	if len(r.Latency) > 0 {
		b.WriteString("## Sync invoke latency\n\nCPU columns: ms of CPU (utime+stime from /proc) per 1000 successful requests; " +
			"middle = control plane or proxy.\n\n")
		b.WriteString("| path | rate | achieved/s | ok | errors | p50 ms | p99 ms | p99.9 ms | max ms | middle CPU | runtime CPU | loadgen CPU |\n")
		b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, l := range r.Latency {
			fmt.Fprintf(&b, "| %s | %s | %s | %d | %d | %.3f | %.3f | %.3f | %.3f | %s | %s | %s |\n",
				l.label(), fmtNum(l.Rate), fmtNum(l.Achieved), l.OK, l.Errors, l.P50Ms, l.P99Ms, l.P999Ms, l.MaxMs,
				fmtPtr(l.MiddleCPUMsPer1k), fmtNum(l.RuntimeCPUMsPer1k), fmtNum(l.LoadgenCPUMsPer1k))
		}
		b.WriteString("\n")
		for _, l := range r.Latency {
			if l.FirstError != "" {
				fmt.Fprintf(&b, "- %s at %s req/s, first error: `%s`\n", l.label(), fmtNum(l.Rate), l.FirstError)
			}
		}
	}
	if len(r.Added) > 0 {
		b.WriteString("\n## Added latency and CPU vs the bare proxy\n\nAdded = control plane minus the direct run taken just " +
			"before it at the same rate. Goals: added p99 ≤ 1 ms at 2000 req/s; CPU per invocation ≤ 2× the proxy's.\n\n")
		b.WriteString("| path | rate | +p50 ms | +p99 ms | +p99.9 ms | proxy +p99 ms | CPU ms/1k | proxy CPU ms/1k | CPU vs proxy |\n")
		b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, a := range r.Added {
			fmt.Fprintf(&b, "| %s | %s | %.3f | %.3f | %.3f | %s | %s | %s | %s |\n", a.Path, fmtNum(a.Rate),
				a.AddedP50Ms, a.AddedP99Ms, a.AddedP999Ms, fmtPtr(a.ProxyAddedP99Ms), fmtPtr(a.CPUMsPer1k),
				fmtPtr(a.ProxyCPUMsPer1k), fmtRatio(a.CPUVsProxy))
		}
	}
	if len(r.Throughput) > 0 {
		b.WriteString("\n## Max sustained sync throughput (step search)\n\nGoal: control plane ≥ 0.8× the proxy.\n\n")
		b.WriteString("| path | max req/s | vs proxy | vs direct | steps (rate → p99 ms, ok?) |\n|---|---:|---:|---:|---|\n")
		for _, t := range r.Throughput {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", t.Path, fmtNum(t.MaxRate), fmtRatio(t.VsProxy),
				fmtRatio(t.VsDirect), fmtSteps(t.Steps))
		}
	}
	if len(r.Async) > 0 || r.AsyncMax != nil {
		b.WriteString("\n## Async (:enqueue, default modules)\n\nCompletion = from the scheduled enqueue to the moment the " +
			"runtime ran the execution (recorded by the runtime). CPU = control plane ms per 1000 enqueues.\n\n")
		b.WriteString("| rate | achieved/s | accepted | errors | enqueue p50 ms | enqueue p99 ms | completed | missing | " +
			"completion p50 ms | p99 ms | p99.9 ms | max ms | CPU ms/1k |\n")
		b.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, a := range r.Async {
			fmt.Fprintf(&b, "| %s | %s | %d | %d | %.3f | %.3f | %d | %d | %.3f | %.3f | %.3f | %.3f | %s |\n",
				fmtNum(a.Rate), fmtNum(a.Achieved), a.Accepted, a.Errors, a.EnqueueP50Ms, a.EnqueueP99Ms, a.Completed,
				a.Missing, a.CompletionP50Ms, a.CompletionP99Ms, a.CompletionP999, a.CompletionMaxMs, fmtNum(a.CPUMsPer1k))
		}
		if r.AsyncMax != nil {
			fmt.Fprintf(&b, "\nMax sustained enqueue rate (202 p99 < limit, no 429s, executions keep up): **%s req/s** — steps %s\n",
				fmtNum(r.AsyncMax.MaxRate), fmtSteps(r.AsyncMax.Steps))
		}
	}
	if len(r.Footprint) > 0 {
		b.WriteString("\n## Footprint\n\nGoals: ready ≤ 100 ms after exec; idle RSS ≤ 30 MiB; ≤ 4 KiB per registered function " +
			"(RSS growth ÷ functions; heap = go_memstats_heap_inuse_bytes growth, for comparison).\n\n")
		b.WriteString("| path | ready ms (each start) | median | idle RSS MiB (anon + file) | idle CPU ms/s | idle heap MiB | functions | " +
			"registrations/s | RSS MiB with them | per function RSS KiB | per function heap KiB |\n")
		b.WriteString("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, f := range r.Footprint {
			starts := make([]string, len(f.StartupMs))
			for i, s := range f.StartupMs {
				starts[i] = strconv.FormatFloat(s, 'f', 1, 64)
			}
			fmt.Fprintf(&b, "| %s | %s | %.1f | %.1f (%.1f + %.1f) | %.1f | %.1f | %d | %s | %.1f | %.2f | %.2f |\n", f.Path,
				strings.Join(starts, ", "), f.StartupMedianMs, mib(f.IdleRSSBytes), mib(f.IdleRSSAnonBytes), mib(f.IdleRSSFileBytes),
				f.IdleCPUMsPerS, mib(f.IdleHeapInuseBytes),
				f.Functions, fmtNum(f.RegisterPerS), mib(f.RSSWithFunctionsBytes), f.PerFunctionRSSBytes/1024,
				f.PerFunctionHeapBytes/1024)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (l LatencyRow) label() string {
	if l.PairedWith != "" {
		return l.Path + " (before " + l.PairedWith + ")"
	}
	return l.Path
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "**NO**"
}

// fmtNum prints a figure with three significant decimals at most.
func fmtNum(v float64) string {
	switch {
	case v >= 100 || v <= -100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10 || v <= -10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
}

func fmtPtr(v *float64) string {
	if v == nil {
		return "–"
	}
	return fmtNum(*v)
}

func fmtRatio(v *float64) string {
	if v == nil {
		return "–"
	}
	return strconv.FormatFloat(*v, 'f', 2, 64) + "×"
}

func fmtSteps(steps []Step) string {
	parts := make([]string, len(steps))
	for i, s := range steps {
		mark := "ok"
		if !s.Sustained {
			mark = "no"
			if s.ErrorRatio > 0 {
				mark = fmt.Sprintf("no, %.1f%% errors", 100*s.ErrorRatio)
			}
		}
		parts[i] = fmt.Sprintf("%s → %.2f %s", fmtNum(s.Rate), s.P99Ms, mark)
	}
	return strings.Join(parts, "; ")
}

func joinRates(rates []float64) string {
	parts := make([]string, len(rates))
	for i, r := range rates {
		parts[i] = fmtNum(r)
	}
	return strings.Join(parts, ", ")
}

func fptr(v float64) *float64 { return &v }
