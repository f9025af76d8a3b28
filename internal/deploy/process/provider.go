// Package process owns the `process` deployment backend (DECISIONS.md D15, process-backend.md):
// DEPLOYMENT functions run as child processes of the control plane on free loopback ports, behind
// a per-function round-robin proxy, or — for runtimeMode STDIO/FILE without a command — through
// the built-in watchdog, which runs runtimeCommand once per request. It owns every child it
// starts: each runs under a /bin/sh supervisor in its own process group, so that nothing it
// starts outlives the control plane, even a SIGKILLed one (supervisor.go); replicas are
// restarted with backoff when they die, stopped with SIGTERM then SIGKILL, and always reaped,
// including when provisioning fails part-way.
package process

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nanofaas/control-plane/internal/deploy"
	"github.com/nanofaas/control-plane/internal/deploy/localbackend"
	"github.com/nanofaas/control-plane/internal/deploy/proxy"
	"github.com/nanofaas/control-plane/internal/failure"
	"github.com/nanofaas/control-plane/internal/function"
)

// Defaults of process-backend.md.
const (
	DefaultReadinessTimeout  = 20 * time.Second
	DefaultRestartBackoff    = time.Second
	DefaultMaxRestartBackoff = 30 * time.Second
	DefaultStopGrace         = 5 * time.Second
)

// Config configures the provider. Zero values mean the documented defaults.
type Config struct {
	// WorkDir is the working directory of function processes ("" = the control plane's).
	WorkDir string
	// ReadinessTimeout bounds the wait for a replica's /health (<= 0 → 20s).
	ReadinessTimeout time.Duration
	// CallbackURL is injected as CALLBACK_URL ("" = not injected). The control plane passes
	// http://127.0.0.1:<api port>/v1/internal/executions when none is configured.
	CallbackURL string
	// Environ is the control plane's environment (nil → os.Environ()); its NANOFAAS_*,
	// SYNC_QUEUE_* and SYNCQUEUE_* entries are not passed on.
	Environ []string
	// Logger receives lifecycle events and function output (nil → discard).
	Logger *slog.Logger

	// RestartBackoff is the delay before the first restart of a dead replica, doubled on each
	// consecutive failure up to MaxRestartBackoff (<= 0 → 1s and 30s).
	RestartBackoff    time.Duration
	MaxRestartBackoff time.Duration
	// StopGrace is the wait between SIGTERM and SIGKILL (<= 0 → 5s).
	StopGrace time.Duration
	// Now is the clock used to tell a crash loop from a long run (nil → time.Now).
	Now func() time.Time
}

// Provider is the `process` deploy.Provider. Operations on one function are serialized; different
// functions proceed in parallel. Close stops everything.
type Provider struct {
	cfg    Config
	logger *slog.Logger
	// client probes /health and is shared by every function's proxy, so keep-alive connections
	// to replicas are pooled in one place.
	client *http.Client
	fns    *localbackend.Table[*fnState]
}

var _ deploy.Provider = (*Provider)(nil)

// New returns a provider with cfg (defaults applied).
func New(cfg Config) *Provider {
	if cfg.ReadinessTimeout <= 0 {
		cfg.ReadinessTimeout = DefaultReadinessTimeout
	}
	if cfg.RestartBackoff <= 0 {
		cfg.RestartBackoff = DefaultRestartBackoff
	}
	if cfg.MaxRestartBackoff <= 0 {
		cfg.MaxRestartBackoff = DefaultMaxRestartBackoff
	}
	cfg.MaxRestartBackoff = max(cfg.MaxRestartBackoff, cfg.RestartBackoff)
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = DefaultStopGrace
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Environ == nil {
		cfg.Environ = os.Environ()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Provider{
		cfg:    cfg,
		logger: cfg.Logger.With("backend", deploy.BackendProcess),
		client: proxy.NewClient(),
		fns:    localbackend.NewTable(deploy.BackendProcess, func() *fnState { return new(fnState) }),
	}
}

// fnState is one provisioned function; the embedded Entry's lock guards it unless said
// otherwise.
type fnState struct {
	localbackend.Entry
	url    string // written once by provision
	launch *launchSpec

	// HTTP runtime (command).
	proxy    *proxy.Proxy
	replicas []*replica // replicas[i] is replica i+1

	// routeMu guards routed, the replicas the proxy may use (those that are ready among them).
	// It is separate from lock because supervisors refresh routes while lock is held by an
	// operation waiting for them.
	routeMu sync.Mutex
	routed  []*replica

	// Built-in watchdog (STDIO/FILE without command).
	wd *watchdog
}

// refreshRoutes points the proxy at the ready replicas, in index order.
func (st *fnState) refreshRoutes() {
	st.routeMu.Lock()
	defer st.routeMu.Unlock()
	urls := make([]string, 0, len(st.routed))
	for _, r := range st.routed {
		if b := r.base.Load(); b != nil {
			urls = append(urls, *b)
		}
	}
	st.proxy.SetBackends(urls)
}

func (st *fnState) setRouted(reps []*replica) {
	st.routeMu.Lock()
	st.routed = slices.Clone(reps)
	st.routeMu.Unlock()
	st.refreshRoutes()
}

// BackendID returns "process".
func (p *Provider) BackendID() string { return deploy.BackendProcess }

// Available is always true: running child processes needs nothing external.
func (p *Provider) Available() bool { return true }

// Supports reports a DEPLOYMENT spec with a command, or with runtimeMode STDIO/FILE and a
// non-blank runtimeCommand. The image is ignored.
func (p *Provider) Supports(spec *function.Spec) bool {
	return spec != nil && spec.Mode() == function.ModeDeployment && (hasCommand(spec) || usesWatchdog(spec))
}

// Provision starts the function's initial replicas (minReplicas if set, else 1) and returns its
// endpoint. An already provisioned function returns its existing endpoint. On failure nothing is
// left: every child started is killed and reaped and the proxy is closed.
func (p *Provider) Provision(ctx context.Context, spec *function.Spec) (deploy.ProvisionResult, error) {
	if !p.Supports(spec) {
		return deploy.ProvisionResult{}, localbackend.Unsupported(deploy.BackendProcess, spec)
	}
	ctx, cancel := p.fns.OpContext(ctx)
	defer cancel()
	st, err := p.fns.Provision(ctx, spec.Name, func(st *fnState) error { return p.provision(ctx, st, spec) })
	if err != nil {
		return deploy.ProvisionResult{}, err
	}
	return deploy.Managed(st.url, deploy.BackendProcess), nil
}

func (p *Provider) provision(ctx context.Context, st *fnState, spec *function.Spec) error {
	env := functionEnv(p.cfg.Environ, spec, p.cfg.CallbackURL)
	initial := initialReplicas(spec)
	if usesWatchdog(spec) {
		argv := strings.Fields(runtimeCommand(spec))
		if err := checkExecutable(argv[0], p.cfg.WorkDir); err != nil {
			return failure.Unavailablef("Function '%s': cannot run runtimeCommand %q: %v", spec.Name, argv[0], err)
		}
		wd, err := newWatchdog(watchdogConfig{
			function: spec.Name, mode: *spec.RuntimeMode, argv: argv, env: env, dir: p.cfg.WorkDir,
			timeout: time.Duration(spec.Timeout()) * time.Millisecond,
			logger:  p.logger.With("function", spec.Name),
		})
		if err != nil {
			return failure.Unavailablef("Function '%s': cannot start its watchdog: %v", spec.Name, err)
		}
		wd.setSlots(initial)
		st.wd, st.url = wd, wd.url
		p.logger.Info("function provisioned", "function", spec.Name, "url", st.url, "watchdog", string(*spec.RuntimeMode), "replicas", initial)
		return nil
	}

	st.launch = &launchSpec{function: spec.Name, argv: slices.Clone(spec.Command), env: env, dir: p.cfg.WorkDir}
	px, err := proxy.New("127.0.0.1", p.client, p.logger.With("function", spec.Name))
	if err != nil {
		return failure.Unavailablef("Function '%s': cannot start its proxy: %v", spec.Name, err)
	}
	st.proxy, st.url = px, px.URL()
	p.logger.Debug("proxy started", "function", spec.Name, "url", st.url)
	if err := p.scaleUp(ctx, st, initial); err != nil {
		p.teardown(ctx, st)
		return err
	}
	p.logger.Info("function provisioned", "function", spec.Name, "url", st.url, "replicas", initial)
	return nil
}

// checkExecutable fails early when the watchdog's command cannot be found, instead of failing
// every invocation.
func checkExecutable(name, dir string) error {
	if !strings.ContainsRune(name, '/') {
		_, err := exec.LookPath(name)
		return err
	}
	if !filepath.IsAbs(name) && dir != "" {
		name = filepath.Join(dir, name)
	}
	fi, err := os.Stat(name)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", name)
	}
	return nil
}

// scaleUp starts replicas len+1..n in parallel and waits for them to be ready. The ready prefix
// is kept; every replica after the first failure is halted (killed and reaped) and the first
// failure is returned.
func (p *Provider) scaleUp(ctx context.Context, st *fnState, n int) error {
	from := len(st.replicas)
	if n <= from {
		return nil
	}
	fresh := make([]*replica, n-from)
	for i := range fresh {
		fresh[i] = p.newReplica(st, from+i+1)
		go fresh[i].supervise()
	}
	errs := make([]error, len(fresh))
	for i, r := range fresh {
		select {
		case errs[i] = <-r.first:
		case <-ctx.Done():
			errs[i] = failure.Unavailablef("Function '%s': replica %d not started: %v", st.Name(), r.index, context.Cause(ctx))
		}
	}
	ok := 0
	for ok < len(fresh) && errs[ok] == nil {
		ok++
	}
	if ok < len(fresh) {
		haltAll(ctx, fresh[ok:])
	}
	st.replicas = append(st.replicas, fresh[:ok]...)
	st.setRouted(st.replicas)
	if ok < len(fresh) {
		return errs[ok]
	}
	return nil
}

// scaleDown stops the highest-indexed replicas: they leave the routing first, then are halted.
func (p *Provider) scaleDown(ctx context.Context, st *fnState, n int) {
	if n >= len(st.replicas) {
		return
	}
	victims := slices.Clone(st.replicas[n:])
	st.replicas = st.replicas[:n]
	st.setRouted(st.replicas)
	haltAll(ctx, victims)
}

// teardown stops everything of st.
func (p *Provider) teardown(ctx context.Context, st *fnState) {
	if st.wd != nil {
		if err := st.wd.close(ctx); err != nil {
			p.logger.Warn("watchdog close", "function", st.Name(), "error", err)
		}
		return
	}
	reps := st.replicas
	st.replicas = nil
	if st.proxy != nil {
		st.setRouted(nil)
	}
	haltAll(ctx, reps)
	if st.proxy != nil {
		if err := st.proxy.Close(ctx); err != nil {
			p.logger.Warn("proxy close", "function", st.Name(), "error", err)
		}
	}
}

func errUnknown(name string) error {
	return failure.Unavailablef("Function '%s' is not deployed by the '%s' backend", name, deploy.BackendProcess)
}

// SetReplicas starts or stops the highest-indexed replicas so that n (< 0 read as 0) remain;
// for a watchdog function it sets the number of concurrency slots. Started replicas must become
// ready; on failure the ready ones are kept and the error says which one failed.
func (p *Provider) SetReplicas(ctx context.Context, name string, n int) error {
	ctx, cancel := p.fns.OpContext(ctx)
	defer cancel()
	found, err := p.fns.Locked(ctx, name, func(st *fnState) error {
		n = max(n, 0)
		if st.wd != nil {
			st.wd.setSlots(n)
			return nil
		}
		if n > len(st.replicas) {
			return p.scaleUp(ctx, st, n)
		}
		p.scaleDown(ctx, st, n)
		return nil
	})
	if !found && err == nil {
		return errUnknown(name)
	}
	return err
}

// ReadyReplicas counts the replicas whose /health answers 2xx now (probed in parallel); a
// replica that is down counts as not ready. For a watchdog function it is the number of slots.
// An unknown function has 0.
func (p *Provider) ReadyReplicas(ctx context.Context, name string) (int, error) {
	st := p.fns.Lookup(name)
	if st == nil {
		return 0, nil
	}
	if st.wd != nil {
		return st.wd.slotCount(), nil
	}
	st.routeMu.Lock()
	var bases []string
	for _, r := range st.routed {
		if b := r.base.Load(); b != nil {
			bases = append(bases, *b)
		}
	}
	st.routeMu.Unlock()
	ready := make(chan bool, len(bases))
	for _, b := range bases {
		go func() { ready <- localbackend.Healthy(ctx, p.client, b) }()
	}
	n := 0
	for range bases {
		if <-ready {
			n++
		}
	}
	return n, nil
}

// Deprovision stops all replicas (SIGTERM, SIGKILL after the grace period or when ctx is done;
// always reaped) and the proxy or watchdog. Unknown names succeed.
func (p *Provider) Deprovision(ctx context.Context, name string) error {
	return p.fns.Deprovision(ctx, name, func(st *fnState) { p.deprovision(ctx, st) })
}

// deprovision tears a retired st down.
func (p *Provider) deprovision(ctx context.Context, st *fnState) {
	p.teardown(ctx, st)
	p.logger.Info("function deprovisioned", "function", st.Name())
}

// Close stops every function (as Deprovision) and refuses new provisioning. In-flight operations
// are cancelled. When ctx ends, remaining children are SIGKILLed at once; they are always reaped
// before Close returns, and the error then says the stop was forced. Close may be called again.
func (p *Provider) Close(ctx context.Context) error {
	n := p.fns.Close(func(st *fnState) { p.deprovision(ctx, st) })
	p.client.CloseIdleConnections()
	if err := ctx.Err(); err != nil && n > 0 {
		return fmt.Errorf("process provider: children stopped forcibly: %w", err)
	}
	return nil
}
