// Command nanofaas-bench is the control plane's performance harness. In its default mode it
// starts, on loopback, the project's Go function runtime (fnruntime, a no-op handler), a bare
// httputil.ReverseProxy and the real control-plane binary, and measures in one run: the latency
// the control plane adds to a sync invoke compared with calling the runtime directly, its CPU per
// invocation compared with the proxy's, the highest sustained rate of each path, async enqueue
// throughput and enqueue→execution latency, and start-up time and memory — with the default
// modules (sync-queue on) and with modules=none. It writes a JSON file and a markdown report.
//
// The runtime and the proxy are this same binary in -mode=runtime and -mode=reverse-proxy, so
// each runs in its own process and its CPU can be read from /proc.
//
//	go run ./cmd/nanofaas-bench -out bench-results.json -md bench-results.md
//	go run ./cmd/nanofaas-bench -smoke        # every phase in a few seconds, for CI
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Phases of a bench run (-phases).
const (
	phaseFootprint  = "footprint"
	phaseLatency    = "latency"
	phaseThroughput = "throughput"
	phaseAsync      = "async"
)

var allPhases = []string{phaseFootprint, phaseLatency, phaseThroughput, phaseAsync}

// options are the command-line settings.
type options struct {
	mode          string
	target        string // -mode=reverse-proxy: where to forward
	controlPlane  string // binary; "" = build ./cmd/control-plane
	rates         rateList
	asyncRates    rateList
	duration      time.Duration
	warmup        time.Duration
	stepDuration  time.Duration
	stepWarmup    time.Duration
	searchStart   float64
	searchMax     float64
	searchSteps   int
	confirm       int
	p99Limit      time.Duration
	functions     int
	startups      int
	settle        time.Duration
	workers       int
	fnConcurrency int
	fnQueueSize   int
	phases        []string
	out, md       string
	smoke         bool
	verbose       bool
}

func (o *options) has(phase string) bool { return slices.Contains(o.phases, phase) }

// smokeDefaults replace the defaults of the flags not given explicitly when -smoke is set.
var smokeDefaults = map[string]string{
	"rates": "100,200", "async-rates": "100", "duration": "150ms", "warmup": "50ms",
	"step-duration": "150ms", "step-warmup": "30ms", "search-start": "200", "search-max": "400",
	"search-steps": "2", "functions": "200", "startups": "2", "settle": "100ms", "workers": "32",
}

func parseOptions(args []string, stderr io.Writer) (*options, error) {
	o := &options{rates: rateList{500, 2000}}
	var phases string
	fs := flag.NewFlagSet("nanofaas-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.mode, "mode", "bench", "bench | runtime (the no-op fnruntime function) | reverse-proxy (a bare httputil.ReverseProxy to -target)")
	fs.StringVar(&o.target, "target", "", "reverse-proxy mode: base URL to forward to")
	fs.StringVar(&o.controlPlane, "control-plane", "", "control-plane binary (default: go build ./cmd/control-plane into a temp dir)")
	fs.Var(&o.rates, "rates", "sync rates in req/s, comma-separated")
	fs.Var(&o.asyncRates, "async-rates", "enqueue rates in req/s (default: -rates)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured time per fixed-rate run")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured warm-up before each fixed-rate run, at the same rate")
	fs.DurationVar(&o.stepDuration, "step-duration", 3*time.Second, "measured time per throughput-search step")
	fs.DurationVar(&o.stepWarmup, "step-warmup", 500*time.Millisecond, "warm-up per throughput-search step")
	fs.Float64Var(&o.searchStart, "search-start", 1000, "first rate of the throughput search (req/s)")
	fs.Float64Var(&o.searchMax, "search-max", 100000, "highest rate the throughput search tries (req/s)")
	fs.IntVar(&o.searchSteps, "search-steps", 12, "most rates tried per throughput search")
	fs.IntVar(&o.confirm, "confirm-failures", 1, "re-runs of a failed throughput step before the rate counts as not sustained")
	fs.DurationVar(&o.p99Limit, "p99-limit", 10*time.Millisecond, "a rate is sustained while p99 stays below this")
	fs.IntVar(&o.functions, "functions", 10000, "functions registered for the memory footprint")
	fs.IntVar(&o.startups, "startups", 5, "control-plane starts timed per configuration")
	fs.DurationVar(&o.settle, "settle", time.Second, "pause before idle and post-registration memory readings")
	fs.IntVar(&o.workers, "workers", 256, "concurrent load senders (requests beyond them queue and count as latency)")
	fs.IntVar(&o.fnConcurrency, "fn-concurrency", 64, "concurrency of the bench function on the control plane")
	fs.IntVar(&o.fnQueueSize, "fn-queue-size", 1000, "queueSize of the bench function on the control plane")
	fs.StringVar(&phases, "phases", strings.Join(allPhases, ","), "phases to run: "+strings.Join(allPhases, ","))
	fs.StringVar(&o.out, "out", "bench-results.json", "JSON results file (\"\" = none)")
	fs.StringVar(&o.md, "md", "bench-results.md", "markdown results file (\"\" = none; the table is printed either way)")
	fs.BoolVar(&o.smoke, "smoke", false, "tiny rates and durations: checks that every phase produces numbers, in seconds")
	fs.BoolVar(&o.verbose, "v", false, "log every step")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if o.smoke {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, v := range smokeDefaults {
			if !set[name] {
				if err := fs.Set(name, v); err != nil {
					return nil, err
				}
			}
		}
	}
	if len(o.asyncRates) == 0 {
		o.asyncRates = slices.Clone(o.rates)
	}
	for p := range strings.SplitSeq(phases, ",") {
		p = strings.TrimSpace(p)
		if !slices.Contains(allPhases, p) {
			return nil, fmt.Errorf("-phases: unknown phase %q (known: %s)", p, strings.Join(allPhases, ","))
		}
		o.phases = append(o.phases, p)
	}
	switch {
	case o.mode != "bench" && o.mode != "runtime" && o.mode != "reverse-proxy":
		return nil, fmt.Errorf("-mode: want bench, runtime or reverse-proxy, got %q", o.mode)
	case o.mode == "reverse-proxy" && o.target == "":
		return nil, errors.New("-mode=reverse-proxy needs -target")
	case len(o.rates) == 0 || o.duration <= 0 || o.stepDuration <= 0 || o.workers <= 0:
		return nil, errors.New("-rates, -duration, -step-duration and -workers must be positive")
	case o.warmup < 0 || o.stepWarmup < 0 || o.settle < 0:
		return nil, errors.New("-warmup, -step-warmup and -settle must not be negative")
	case o.searchStart <= 0 || o.searchMax < o.searchStart || o.searchSteps <= 0 || o.confirm < 0:
		return nil, errors.New("need 0 < -search-start ≤ -search-max, -search-steps > 0 and -confirm-failures ≥ 0")
	case o.startups <= 0 || o.functions < 0 || o.fnConcurrency <= 0 || o.fnQueueSize <= 0:
		return nil, errors.New("-startups, -fn-concurrency and -fn-queue-size must be positive, -functions not negative")
	}
	return o, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	opt, err := parseOptions(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "nanofaas-bench:", err)
		return 2
	}
	level := slog.LevelInfo
	if opt.mode != "bench" {
		level = slog.LevelWarn // children: only problems
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	switch opt.mode {
	case "runtime":
		err = runRuntimeChild(ctx, stdout, log)
	case "reverse-proxy":
		err = runProxyChild(ctx, stdout, log, opt.target)
	default:
		err = runBench(ctx, opt, stdout, log)
	}
	if err != nil {
		fmt.Fprintln(stderr, "nanofaas-bench:", err)
		return 1
	}
	return 0
}

// rateList is a comma-separated list of positive rates.
type rateList []float64

func (r *rateList) String() string {
	if r == nil {
		return ""
	}
	return joinRates(*r)
}

func (r *rateList) Set(s string) error {
	var out rateList
	for part := range strings.SplitSeq(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(part), 64)
		if err != nil || v <= 0 {
			return fmt.Errorf("want positive numbers, got %q", part)
		}
		out = append(out, v)
	}
	*r = out
	return nil
}
