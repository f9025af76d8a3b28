package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// benchFunction is the POOL function the load goes to on the control plane.
const benchFunction = "bench-noop"

// invokeBody is the request body of every sync invoke and enqueue (and of direct calls: the
// runtime reads the same envelope).
var invokeBody = []byte(`{"input":{"n":1}}`)

// harness runs the phases of one bench run and collects their results.
type harness struct {
	opt    *options
	log    *slog.Logger
	logDir string
	cpBin  string
	seq    int // numbers child log files

	runtime  *child
	fnURL    string // the runtime's base URL
	ctlURL   string // the runtime's recorder routes
	proxy    *child
	proxyURL string

	ctl     *http.Client            // control calls: health, registration, recorder
	clients map[string]*http.Client // one load client (connection pool) per path

	res Results
}

func runBench(ctx context.Context, opt *options, stdout io.Writer, log *slog.Logger) (err error) {
	h := &harness{opt: opt, log: log, clients: map[string]*http.Client{}}
	h.ctl = &http.Client{Timeout: 30 * time.Second}
	start := time.Now()
	h.res.Machine = describeMachine()
	h.res.Run = RunInfo{
		Started: start, Smoke: opt.smoke, Rates: opt.rates, AsyncRates: opt.asyncRates,
		DurationS: opt.duration.Seconds(), WarmupS: opt.warmup.Seconds(), StepDurationS: opt.stepDuration.Seconds(),
		ConfirmFails: opt.confirm,
		P99LimitMs:   ms(opt.p99Limit), Workers: opt.workers, FnConcurrency: opt.fnConcurrency, Functions: opt.functions,
	}
	if h.logDir, err = os.MkdirTemp("", "nanofaas-bench-"); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			log.Error("bench failed; child logs kept", "dir", h.logDir)
			return
		}
		_ = os.RemoveAll(h.logDir)
	}()

	if h.cpBin = opt.controlPlane; h.cpBin == "" {
		if h.cpBin, err = buildControlPlane(ctx, h.logDir); err != nil {
			return err
		}
		h.res.Run.ControlPlane = "built from ./cmd/control-plane"
	} else {
		h.res.Run.ControlPlane = h.cpBin
	}
	if err := h.startHelpers(ctx); err != nil {
		return err
	}
	defer func() { err = errors.Join(err, h.stopHelpers()) }()

	if err := h.runPhases(ctx); err != nil {
		return err
	}

	h.res.Machine.LoadAvgEnd = loadAvg()
	h.res.Run.ElapsedS = time.Since(start).Seconds()
	h.res.evaluateTargets()
	if opt.out != "" {
		if err := writeJSONFile(opt.out, &h.res); err != nil {
			return err
		}
	}
	var md bytes.Buffer
	if err := writeMarkdown(&md, &h.res); err != nil {
		return err
	}
	if opt.md != "" {
		if err := os.WriteFile(opt.md, md.Bytes(), 0o644); err != nil {
			return err
		}
	}
	_, err = stdout.Write(md.Bytes())
	return err
}

func (h *harness) runPhases(ctx context.Context) error {
	o := h.opt
	if o.has(phaseFootprint) {
		for _, path := range []string{pathCPDefault, pathCPNone} {
			row, err := h.footprint(ctx, path)
			if err != nil {
				return fmt.Errorf("footprint %s: %w", path, err)
			}
			h.res.Footprint = append(h.res.Footprint, row)
		}
	}
	baseline := map[string]map[float64]LatencyRow{pathDirect: {}, pathProxy: {}}
	if o.has(phaseLatency) {
		for _, rate := range o.rates {
			for _, path := range []string{pathDirect, pathProxy} {
				row, err := h.measureSync(ctx, path, rate, nil)
				if err != nil {
					return err
				}
				baseline[path][rate] = row
				h.res.Latency = append(h.res.Latency, row)
			}
		}
	}
	throughput := map[string]*ThroughputRow{}
	for _, path := range []string{pathCPDefault, pathCPNone} {
		needed := o.has(phaseLatency) || o.has(phaseThroughput) || (path == pathCPDefault && o.has(phaseAsync))
		if !needed {
			continue
		}
		if err := h.withControlPlane(ctx, path, func(cp *controlPlane) error {
			return h.controlPlanePhases(ctx, cp, baseline, throughput)
		}); err != nil {
			return err
		}
	}
	if o.has(phaseThroughput) {
		for _, path := range []string{pathDirect, pathProxy} {
			row, err := h.searchThroughput(ctx, path, nil)
			if err != nil {
				return err
			}
			throughput[path] = row
		}
		for _, path := range []string{pathDirect, pathProxy, pathCPDefault, pathCPNone} {
			row := throughput[path]
			if row == nil {
				continue
			}
			if p := throughput[pathProxy]; p != nil && p.MaxRate > 0 && path != pathProxy {
				row.VsProxy = fptr(row.MaxRate / p.MaxRate)
			}
			if d := throughput[pathDirect]; d != nil && d.MaxRate > 0 && path != pathDirect {
				row.VsDirect = fptr(row.MaxRate / d.MaxRate)
			}
			h.res.Throughput = append(h.res.Throughput, *row)
		}
	}
	return nil
}

// controlPlanePhases runs, on one started control plane, the latency runs (each paired with a
// direct run just before it), the throughput search and, with the default modules, the async runs.
func (h *harness) controlPlanePhases(ctx context.Context, cp *controlPlane, baseline map[string]map[float64]LatencyRow,
	throughput map[string]*ThroughputRow) error {
	o := h.opt
	if err := h.register(ctx, cp, benchFunction); err != nil {
		return err
	}
	if o.has(phaseLatency) {
		for _, rate := range o.rates {
			direct, err := h.measureSync(ctx, pathDirect, rate, nil)
			if err != nil {
				return err
			}
			direct.PairedWith = cp.path
			row, err := h.measureSync(ctx, cp.path, rate, cp)
			if err != nil {
				return err
			}
			h.res.Latency = append(h.res.Latency, direct, row)
			h.res.Added = append(h.res.Added, added(row, direct, baseline, rate))
		}
	}
	if o.has(phaseThroughput) {
		row, err := h.searchThroughput(ctx, cp.path, cp)
		if err != nil {
			return err
		}
		throughput[cp.path] = row
	}
	if o.has(phaseAsync) && cp.path == pathCPDefault {
		for _, rate := range o.asyncRates {
			row, err := h.measureAsync(ctx, cp, rate)
			if err != nil {
				return err
			}
			h.res.Async = append(h.res.Async, row)
		}
		row, err := h.searchAsync(ctx, cp)
		if err != nil {
			return err
		}
		h.res.AsyncMax = row
	}
	return nil
}

// added compares a control-plane run with its paired direct run and the proxy baseline.
func added(cp, direct LatencyRow, baseline map[string]map[float64]LatencyRow, rate float64) AddedRow {
	a := AddedRow{
		Path: cp.Path, Rate: rate, DirectP99Ms: direct.P99Ms,
		AddedP50Ms: cp.P50Ms - direct.P50Ms, AddedP99Ms: cp.P99Ms - direct.P99Ms, AddedP999Ms: cp.P999Ms - direct.P999Ms,
		CPUMsPer1k: cp.MiddleCPUMsPer1k,
	}
	proxy, ok := baseline[pathProxy][rate]
	if !ok {
		return a
	}
	if d, ok := baseline[pathDirect][rate]; ok {
		a.ProxyAddedP99Ms = fptr(proxy.P99Ms - d.P99Ms)
	}
	a.ProxyCPUMsPer1k = proxy.MiddleCPUMsPer1k
	if cp.MiddleCPUMsPer1k != nil && proxy.MiddleCPUMsPer1k != nil && *proxy.MiddleCPUMsPer1k > 0 {
		a.CPUVsProxy = fptr(*cp.MiddleCPUMsPer1k / *proxy.MiddleCPUMsPer1k)
	}
	return a
}

// ---- helpers: runtime and proxy ----

func (h *harness) childName(base string) string {
	h.seq++
	return fmt.Sprintf("%02d-%s", h.seq, base)
}

func (h *harness) startHelpers(ctx context.Context) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if h.runtime, err = startChild(h.childName("runtime"), self, h.logDir, []string{"-mode=runtime"}, nil); err != nil {
		return err
	}
	addrs, err := h.runtime.listenAddrs(ctx)
	if err != nil || len(addrs) != 2 {
		return errors.Join(fmt.Errorf("runtime: bad listen line %q", addrs), err, h.stopHelpers())
	}
	h.fnURL, h.ctlURL = "http://"+addrs[0], "http://"+addrs[1]
	h.proxy, err = startChild(h.childName("reverse-proxy"), self, h.logDir, []string{"-mode=reverse-proxy", "-target=" + h.fnURL}, nil)
	if err != nil {
		return errors.Join(err, h.stopHelpers())
	}
	addrs, err = h.proxy.listenAddrs(ctx)
	if err != nil || len(addrs) != 1 {
		return errors.Join(fmt.Errorf("reverse proxy: bad listen line %q", addrs), err, h.stopHelpers())
	}
	h.proxyURL = "http://" + addrs[0]
	for _, u := range []string{h.fnURL + "/health", h.proxyURL + "/health"} {
		if err := h.expectStatus(ctx, http.MethodGet, u, nil, http.StatusOK); err != nil {
			return errors.Join(err, h.stopHelpers())
		}
	}
	h.log.Info("runtime and proxy up", "runtime", h.fnURL, "proxy", h.proxyURL)
	return nil
}

// stopHelpers stops the proxy and runtime children. The load clients' idle connections are closed
// first: an unused one would hold a child's graceful shutdown for 5 s (see childShutdownBudget).
func (h *harness) stopHelpers() error {
	h.closeClients()
	var errs []error
	for _, c := range []*child{h.proxy, h.runtime} {
		if c != nil {
			errs = append(errs, c.stop(childShutdownBudget+5*time.Second))
		}
	}
	h.proxy, h.runtime = nil, nil
	return errors.Join(errs...)
}

// buildControlPlane builds ./cmd/control-plane of this module into dir.
func buildControlPlane(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, "control-plane")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "github.com/nanofaas/control-plane/cmd/control-plane")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build control plane (run inside the module, or pass -control-plane): %w\n%s", err, b)
	}
	return out, nil
}

// ---- control plane ----

type controlPlane struct {
	*child
	path       string
	api, mgmt  string        // base URLs
	readyAfter time.Duration // exec → readiness 200
}

// withControlPlane starts a control plane for path, runs fn, and stops it.
func (h *harness) withControlPlane(ctx context.Context, path string, fn func(*controlPlane) error) error {
	cp, err := h.startControlPlane(ctx, path)
	if err != nil {
		return err
	}
	err = fn(cp)
	stopping := time.Now()
	err = errors.Join(err, cp.stop(15*time.Second))
	h.log.Info("control plane stopped", "path", path, "took", time.Since(stopping).Round(time.Millisecond))
	return err
}

// startControlPlane execs the control plane on free loopback ports and waits for readiness. A
// port taken between choosing and binding makes the process exit; it is retried once.
func (h *harness) startControlPlane(ctx context.Context, path string) (*controlPlane, error) {
	var lastErr error
	for range 2 {
		apiPort, err1 := freePort()
		mgmtPort, err2 := freePort()
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		args := []string{"--server.port=" + strconv.Itoa(apiPort), "--management.server.port=" + strconv.Itoa(mgmtPort)}
		if path == pathCPNone {
			args = append(args, "--nanofaas.control-plane.modules=none")
		}
		c, err := startChild(h.childName("control-plane-"+path), h.cpBin, h.logDir, args, nil)
		if err != nil {
			return nil, err
		}
		cp := &controlPlane{child: c, path: path,
			api: "http://127.0.0.1:" + strconv.Itoa(apiPort), mgmt: "http://127.0.0.1:" + strconv.Itoa(mgmtPort)}
		if cp.readyAfter, err = h.waitReady(ctx, cp); err == nil {
			return cp, nil
		}
		lastErr = errors.Join(err, c.stop(5*time.Second))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

// waitReady polls the readiness endpoint every millisecond and returns the time since exec.
func (h *harness) waitReady(ctx context.Context, cp *controlPlane) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	u := cp.mgmt + "/actuator/health/readiness"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return 0, err
		}
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(cp.started), nil
			}
		}
		select {
		case <-cp.exited:
			return 0, cp.failure("exited before becoming ready")
		case <-ctx.Done():
			return 0, cp.failure("not ready: " + ctx.Err().Error())
		case <-time.After(time.Millisecond):
		}
	}
}

// register registers a POOL function pointing at the runtime.
func (h *harness) register(ctx context.Context, cp *controlPlane, name string) error {
	body, err := json.Marshal(map[string]any{
		"name": name, "image": "nanofaas-bench", "executionMode": "POOL", "endpointUrl": h.fnURL + "/invoke",
		"timeoutMs": 10000, "concurrency": h.opt.fnConcurrency, "queueSize": h.opt.fnQueueSize,
	})
	if err != nil {
		return err
	}
	return h.expectStatus(ctx, http.MethodPost, cp.api+"/v1/functions", body, http.StatusCreated)
}

// expectStatus sends one control request and checks its status.
func (h *harness) expectStatus(ctx context.Context, method, u string, body []byte, want int) error {
	_, err := h.call(ctx, method, u, body, want)
	return err
}

// call sends one control request, checks its status and returns the body.
func (h *harness) call(ctx context.Context, method, u string, body []byte, want int) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := h.ctl.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		return nil, fmt.Errorf("%s %s: status %d, want %d: %s", method, u, resp.StatusCode, want, bytes.TrimSpace(b))
	}
	return b, nil
}

// ---- load clients and hitters ----

// client returns the load client of path: one connection pool per path, sized for the workers.
func (h *harness) client(path string) *http.Client {
	if c, ok := h.clients[path]; ok {
		return c
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	c := &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			Protocols:           &protocols,
			MaxIdleConns:        2 * h.opt.workers,
			MaxIdleConnsPerHost: h.opt.workers,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
	h.clients[path] = c
	return c
}

func (h *harness) closeClients() {
	for _, c := range h.clients {
		c.CloseIdleConnections()
	}
	h.ctl.CloseIdleConnections()
}

// bufPool holds response buffers of the load clients, so reading a body does not allocate.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// post sends body to u and returns the status; inspect, if not nil, sees the response body.
func post(ctx context.Context, c *http.Client, u string, execID string, inspect func([]byte) error) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(invokeBody))
	if err != nil {
		return 0, err
	}
	req.Header["Content-Type"] = []string{"application/json"}
	if execID != "" {
		req.Header["X-Execution-Id"] = []string{execID}
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	buf := bufPool.Get().(*bytes.Buffer)
	defer bufPool.Put(buf)
	buf.Reset()
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return resp.StatusCode, err
	}
	if inspect != nil {
		return resp.StatusCode, inspect(buf.Bytes())
	}
	return resp.StatusCode, nil
}

var successMarker = []byte(`"status":"success"`)

// syncHitter is the request of a sync path: POST /invoke to the runtime (directly or through
// the proxy) or :invoke on the control plane, which must answer 200 with status success.
func (h *harness) syncHitter(path string, cp *controlPlane) hitFunc {
	c := h.client(path)
	switch path {
	case pathDirect, pathProxy:
		u := h.fnURL + "/invoke"
		if path == pathProxy {
			u = h.proxyURL + "/invoke"
		}
		return func(ctx context.Context, _ int) error {
			status, err := post(ctx, c, u, "bench-direct", nil)
			if err == nil && status != http.StatusOK {
				err = fmt.Errorf("status %d", status)
			}
			return err
		}
	default:
		u := cp.api + "/v1/functions/" + benchFunction + ":invoke"
		return func(ctx context.Context, _ int) error {
			status, err := post(ctx, c, u, "", func(b []byte) error {
				if !bytes.Contains(b, successMarker) {
					return fmt.Errorf("not a success: %.200s", b)
				}
				return nil
			})
			if err == nil && status != http.StatusOK {
				err = fmt.Errorf("status %d", status)
			}
			return err
		}
	}
}

var executionIDKey = []byte(`"executionId":"`)

// enqueueHitter enqueues and stores each accepted execution id at ids[seq].
func (h *harness) enqueueHitter(cp *controlPlane, ids []string) hitFunc {
	c := h.client(pathCPDefault + "-enqueue")
	u := cp.api + "/v1/functions/" + benchFunction + ":enqueue"
	return func(ctx context.Context, seq int) error {
		status, err := post(ctx, c, u, "", func(b []byte) error {
			_, rest, ok := bytes.Cut(b, executionIDKey)
			id, _, ok2 := bytes.Cut(rest, []byte{'"'})
			if ok && ok2 {
				ids[seq] = string(id)
			}
			return nil
		})
		if err == nil && status != http.StatusAccepted {
			err = fmt.Errorf("status %d", status)
		}
		if err == nil && ids[seq] == "" {
			err = errors.New("202 without executionId")
		}
		return err
	}
}

// ---- CPU accounting ----

// cpuSample is the CPU time of the processes a run involves.
type cpuSample struct{ middle, runtime, self time.Duration }

func (h *harness) sampleCPU(middle *child) cpuSample {
	var s cpuSample
	if middle != nil {
		s.middle, _ = cpuTime(middle.pid())
	}
	s.runtime, _ = cpuTime(h.runtime.pid())
	s.self, _ = cpuTime(os.Getpid())
	return s
}

// per1k is milliseconds of CPU per 1000 requests.
func per1k(d time.Duration, n int) float64 {
	if n == 0 {
		return 0
	}
	return ms(d) * 1000 / float64(n)
}

// ---- phases ----

// middleOf is the process between the harness and the runtime on path (nil for direct).
func (h *harness) middleOf(path string, cp *controlPlane) *child {
	switch {
	case path == pathProxy:
		return h.proxy
	case cp != nil:
		return cp.child
	}
	return nil
}

// measureSync runs the fixed-rate sync load on path at rate; cp is the control plane of the cp-*
// paths, nil for the others.
func (h *harness) measureSync(ctx context.Context, path string, rate float64, cp *controlPlane) (LatencyRow, error) {
	middle := h.middleOf(path, cp)
	plan := loadPlan{rate: rate, warmup: h.opt.warmup, duration: h.opt.duration, workers: h.opt.workers}
	var before cpuSample
	run, err := runLoad(ctx, plan, h.syncHitter(path, cp), func() { before = h.sampleCPU(middle) })
	if err != nil {
		return LatencyRow{}, err
	}
	after := h.sampleCPU(middle)
	if run.ok == 0 {
		return LatencyRow{}, fmt.Errorf("%s at %v req/s: every request failed: %s", path, rate, run.firstErr)
	}
	row := LatencyRow{
		Path: path, Rate: rate, Achieved: run.achieved(), OK: run.ok, Errors: run.errors, FirstError: run.firstErr,
		P50Ms: ms(run.percentile(0.5)), P99Ms: ms(run.percentile(0.99)), P999Ms: ms(run.percentile(0.999)),
		MaxMs:             ms(run.percentile(1)),
		RuntimeCPUMsPer1k: per1k(after.runtime-before.runtime, run.ok),
		LoadgenCPUMsPer1k: per1k(after.self-before.self, run.ok),
	}
	if middle != nil {
		row.MiddleCPUMsPer1k = fptr(per1k(after.middle-before.middle, run.ok))
	}
	h.log.Info("sync run", "path", path, "rate", rate, "achieved", fmtNum(row.Achieved), "errors", row.Errors,
		"p50ms", fmtNum(row.P50Ms), "p99ms", fmtNum(row.P99Ms), "p999ms", fmtNum(row.P999Ms))
	return row, nil
}

func (h *harness) stepPlan(rate float64) loadPlan {
	return loadPlan{rate: rate, warmup: h.opt.stepWarmup, duration: h.opt.stepDuration, workers: h.opt.workers}
}

func (h *harness) searchLimits() searchLimits {
	return searchLimits{start: h.opt.searchStart, min: max(1, h.opt.searchStart/64), max: h.opt.searchMax,
		maxSteps: h.opt.searchSteps, precision: 0.1, confirm: h.opt.confirm}
}

// pause lets the processes settle between steps (GC, closing connections).
func (h *harness) pause(ctx context.Context) error {
	return sleepCtx(ctx, min(200*time.Millisecond, h.opt.stepDuration/4))
}

// searchThroughput finds the highest sustained sync rate of path (cp as for measureSync).
func (h *harness) searchThroughput(ctx context.Context, path string, cp *controlPlane) (*ThroughputRow, error) {
	hit := h.syncHitter(path, cp)
	criteria := sustainCriteria{p99Limit: h.opt.p99Limit, maxErrors: defaultSustain.maxErrors, minAchieved: defaultSustain.minAchieved}
	best, steps, err := searchMaxRate(ctx, h.searchLimits(), func(ctx context.Context, rate float64) (Step, error) {
		if err := h.pause(ctx); err != nil {
			return Step{}, err
		}
		run, err := runLoad(ctx, h.stepPlan(rate), hit, nil)
		if err != nil {
			return Step{}, err
		}
		s := criteria.step(rate, run)
		h.log.Info("throughput step", "path", path, "rate", rate, "achieved", fmtNum(s.Achieved), "p99ms", fmtNum(s.P99Ms),
			"errors", fmtNum(s.ErrorRatio), "sustained", s.Sustained)
		return s, nil
	})
	if err != nil {
		return nil, fmt.Errorf("throughput %s: %w", path, err)
	}
	return &ThroughputRow{Path: path, MaxRate: best, Steps: steps}, nil
}

// recorder control on the runtime.
func (h *harness) setRecording(ctx context.Context, on bool) error {
	return h.expectStatus(ctx, http.MethodPost, h.ctlURL+pathRecord+"?on="+strconv.FormatBool(on), nil, http.StatusNoContent)
}

func (h *harness) takeRecorded(ctx context.Context) (map[string]int64, error) {
	b, err := h.call(ctx, http.MethodPost, h.ctlURL+pathRecorded, nil, http.StatusOK)
	if err != nil {
		return nil, err
	}
	var v struct {
		At map[string]int64 `json:"at"`
	}
	return v.At, json.Unmarshal(b, &v)
}

// waitRecorded waits until the runtime has recorded want executions, or until no new one arrived
// for idle. It returns the count it saw last.
func (h *harness) waitRecorded(ctx context.Context, want int, idle time.Duration) (int, error) {
	last, lastChange := -1, time.Now()
	for {
		b, err := h.call(ctx, http.MethodGet, h.ctlURL+pathCount, nil, http.StatusOK)
		if err != nil {
			return 0, err
		}
		var v struct{ Count int }
		if err := json.Unmarshal(b, &v); err != nil {
			return 0, err
		}
		if v.Count >= want {
			return v.Count, nil
		}
		if v.Count != last {
			last, lastChange = v.Count, time.Now()
		} else if time.Since(lastChange) > idle {
			return v.Count, nil
		}
		if err := sleepCtx(ctx, 10*time.Millisecond); err != nil {
			return 0, err
		}
	}
}

// asyncRun enqueues at rate under plan and collects, from the runtime, when each accepted
// execution ran.
type asyncRun struct {
	run      *loadRun
	ids      []string
	accepted int // including warm-up
	at       map[string]int64
	cpu      time.Duration // control plane, measured part
}

func (h *harness) runAsync(ctx context.Context, cp *controlPlane, plan loadPlan) (*asyncRun, error) {
	if err := h.setRecording(ctx, true); err != nil {
		return nil, err
	}
	defer func() { _ = h.setRecording(context.WithoutCancel(ctx), false) }()
	if _, err := h.takeRecorded(ctx); err != nil { // forget earlier executions
		return nil, err
	}
	ids := make([]string, plan.total())
	var before time.Duration
	run, err := runLoad(ctx, plan, h.enqueueHitter(cp, ids), func() { before, _ = cpuTime(cp.pid()) })
	if err != nil {
		return nil, err
	}
	accepted := 0
	for _, id := range ids {
		if id != "" {
			accepted++
		}
	}
	if _, err := h.waitRecorded(ctx, accepted, max(time.Second, h.opt.stepDuration/2)); err != nil {
		return nil, err
	}
	after, _ := cpuTime(cp.pid())
	at, err := h.takeRecorded(ctx)
	if err != nil {
		return nil, err
	}
	return &asyncRun{run: run, ids: ids, accepted: accepted, at: at, cpu: after - before}, nil
}

// completion is the measured part's enqueue→execution latencies (sorted) and how many accepted
// executions never ran.
func (a *asyncRun) completion() (lat []time.Duration, missing int) {
	plan := a.run.plan
	for i := plan.warmupCount(); i < len(a.ids); i++ {
		id := a.ids[i]
		if id == "" {
			continue
		}
		t, ok := a.at[id]
		if !ok {
			missing++
			continue
		}
		due := a.run.start.Add(plan.due(i)).UnixNano()
		lat = append(lat, time.Duration(t-due))
	}
	slices.Sort(lat)
	return lat, missing
}

func (h *harness) measureAsync(ctx context.Context, cp *controlPlane, rate float64) (AsyncRow, error) {
	plan := loadPlan{rate: rate, warmup: h.opt.warmup, duration: h.opt.duration, workers: h.opt.workers}
	a, err := h.runAsync(ctx, cp, plan)
	if err != nil {
		return AsyncRow{}, err
	}
	r := a.run
	if r.ok == 0 {
		return AsyncRow{}, fmt.Errorf("enqueue at %v req/s: every request failed: %s", rate, r.firstErr)
	}
	lat, missing := a.completion()
	row := AsyncRow{
		Rate: rate, Achieved: r.achieved(), Accepted: r.ok, Errors: r.errors, FirstError: r.firstErr,
		EnqueueP50Ms: ms(r.percentile(0.5)), EnqueueP99Ms: ms(r.percentile(0.99)),
		Completed: len(lat), Missing: missing,
		CompletionP50Ms: ms(percentile(lat, 0.5)), CompletionP99Ms: ms(percentile(lat, 0.99)),
		CompletionP999: ms(percentile(lat, 0.999)), CompletionMaxMs: ms(percentile(lat, 1)),
		CPUMsPer1k: per1k(a.cpu, r.ok),
	}
	h.log.Info("async run", "rate", rate, "accepted", row.Accepted, "errors", row.Errors, "completed", row.Completed,
		"missing", missing, "completionP99ms", fmtNum(row.CompletionP99Ms))
	return row, nil
}

// searchAsync finds the highest enqueue rate that is answered in time without 429s and whose
// executions all run.
func (h *harness) searchAsync(ctx context.Context, cp *controlPlane) (*ThroughputRow, error) {
	criteria := sustainCriteria{p99Limit: h.opt.p99Limit, maxErrors: defaultSustain.maxErrors, minAchieved: defaultSustain.minAchieved}
	best, steps, err := searchMaxRate(ctx, h.searchLimits(), func(ctx context.Context, rate float64) (Step, error) {
		if err := h.pause(ctx); err != nil {
			return Step{}, err
		}
		a, err := h.runAsync(ctx, cp, h.stepPlan(rate))
		if err != nil {
			return Step{}, err
		}
		s := criteria.step(rate, a.run)
		_, missing := a.completion()
		s.Sustained = s.Sustained && missing == 0
		h.log.Info("async step", "rate", rate, "achieved", fmtNum(s.Achieved), "p99ms", fmtNum(s.P99Ms),
			"errors", fmtNum(s.ErrorRatio), "missing", missing, "sustained", s.Sustained)
		return s, nil
	})
	if err != nil {
		return nil, fmt.Errorf("async throughput: %w", err)
	}
	return &ThroughputRow{Path: pathCPDefault + " :enqueue", MaxRate: best, Steps: steps}, nil
}

// footprint times start-ups of the control plane for path, then reads its idle memory and CPU
// and its memory with opt.functions registered functions.
func (h *harness) footprint(ctx context.Context, path string) (FootprintRow, error) {
	row := FootprintRow{Path: path, Functions: h.opt.functions}
	var cp *controlPlane
	for i := range h.opt.startups {
		c, err := h.startControlPlane(ctx, path)
		if err != nil {
			return row, err
		}
		row.StartupMs = append(row.StartupMs, ms(c.readyAfter))
		if i < h.opt.startups-1 {
			if err := c.stop(15 * time.Second); err != nil {
				return row, err
			}
			continue
		}
		cp = c
	}
	err := h.measureMemory(ctx, cp, &row)
	err = errors.Join(err, cp.stop(15*time.Second))
	sorted := slices.Sorted(slices.Values(row.StartupMs))
	row.StartupMedianMs = sorted[len(sorted)/2]
	h.log.Info("footprint", "path", path, "readyMedianMs", fmtNum(row.StartupMedianMs), "idleRssMiB", fmtNum(mib(row.IdleRSSBytes)),
		"perFunctionKiB", fmtNum(row.PerFunctionRSSBytes/1024))
	return row, err
}

func (h *harness) measureMemory(ctx context.Context, cp *controlPlane, row *FootprintRow) error {
	cpu0, _ := cpuTime(cp.pid())
	t0 := time.Now()
	if err := sleepCtx(ctx, h.opt.settle); err != nil {
		return err
	}
	cpu1, _ := cpuTime(cp.pid())
	if el := time.Since(t0).Seconds(); el > 0 {
		row.IdleCPUMsPerS = ms(cpu1-cpu0) / el
	}
	idle, err := residentMemory(cp.pid())
	if err != nil {
		return err
	}
	row.IdleRSSBytes, row.IdleRSSAnonBytes, row.IdleRSSFileBytes = idle.rss, idle.anon, idle.file
	if row.IdleHeapInuseBytes, err = h.heapInuse(ctx, cp); err != nil {
		return err
	}
	if h.opt.functions == 0 {
		return nil
	}
	start := time.Now()
	if err := h.registerMany(ctx, cp, h.opt.functions); err != nil {
		return err
	}
	row.RegisterPerS = float64(h.opt.functions) / time.Since(start).Seconds()
	if err := sleepCtx(ctx, h.opt.settle); err != nil {
		return err
	}
	loaded, err := residentMemory(cp.pid())
	if err != nil {
		return err
	}
	row.RSSWithFunctionsBytes = loaded.rss
	if row.HeapWithFunctionsBytes, err = h.heapInuse(ctx, cp); err != nil {
		return err
	}
	n := float64(h.opt.functions)
	row.PerFunctionRSSBytes = float64(row.RSSWithFunctionsBytes-row.IdleRSSBytes) / n
	row.PerFunctionHeapBytes = float64(row.HeapWithFunctionsBytes-row.IdleHeapInuseBytes) / n
	return nil
}

// registerMany registers n POOL functions, eight at a time.
func (h *harness) registerMany(ctx context.Context, cp *controlPlane, n int) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i := range n {
		g.Go(func() error { return h.register(gctx, cp, fmt.Sprintf("fp-%05d", i)) })
	}
	return g.Wait()
}

// heapInuse reads go_memstats_heap_inuse_bytes from the control plane's Prometheus endpoint.
func (h *harness) heapInuse(ctx context.Context, cp *controlPlane) (int64, error) {
	b, err := h.call(ctx, http.MethodGet, cp.mgmt+"/actuator/prometheus", nil, http.StatusOK)
	if err != nil {
		return 0, err
	}
	return promValue(string(b), "go_memstats_heap_inuse_bytes")
}

// promValue returns the value of an unlabelled sample in a Prometheus text exposition.
func promValue(text, name string) (int64, error) {
	for line := range strings.Lines(text) {
		rest, ok := strings.CutPrefix(line, name+" ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			return 0, fmt.Errorf("metric %s: %w", name, err)
		}
		return int64(v), nil
	}
	return 0, fmt.Errorf("metric %s not exposed", name)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
