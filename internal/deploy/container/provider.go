// Package container owns the `container-local` deployment backend (spec-modules §7, DECISIONS.md
// D20): DEPLOYMENT functions run as warm containers started through a Docker-compatible CLI
// (docker, podman, nerdctl), each function behind its own round-robin proxy (internal/deploy/proxy)
// that gives it one stable endpointUrl. It owns every container it starts: a provisioning that
// fails part-way, Deprovision and Close remove them all.
package container

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nanofaas/control-plane/internal/config"
	"github.com/nanofaas/control-plane/internal/deploy"
	"github.com/nanofaas/control-plane/internal/deploy/localbackend"
	"github.com/nanofaas/control-plane/internal/deploy/proxy"
	"github.com/nanofaas/control-plane/internal/failure"
	"github.com/nanofaas/control-plane/internal/function"
)

// BackendID is the provider's backend id.
const BackendID = "container-local"

// Defaults of spec-modules §7.
const (
	DefaultRuntimeAdapter        = "docker"
	DefaultBindHost              = "127.0.0.1"
	DefaultReadinessTimeout      = 20 * time.Second
	DefaultReadinessPollInterval = 250 * time.Millisecond
)

// Availability checking: the result of `<cli> version` is reused for availabilityTTL so that a
// burst of registrations runs it once, and bounded by availabilityTimeout because Available has
// no context and must not hold a registration for the executor's 2 minutes.
const (
	availabilityTTL     = time.Second
	availabilityTimeout = 10 * time.Second
)

// Config configures the provider. Zero values mean the documented defaults.
type Config struct {
	// RuntimeAdapter is the CLI: docker, podman, nerdctl or a path (blank → docker).
	RuntimeAdapter string
	// BindHost is where container ports are published and proxies listen (blank → 127.0.0.1).
	BindHost string
	// ReadinessTimeout bounds the wait for a container's /health (<= 0 → 20s).
	ReadinessTimeout time.Duration
	// ReadinessPollInterval is the /health poll period (<= 0 → 250ms).
	ReadinessPollInterval time.Duration
	// CallbackURL is injected as CALLBACK_URL ("" = not injected).
	CallbackURL string
	// Environ is the environment of CLI commands (nil → the control plane's), e.g. to set
	// DOCKER_HOST.
	Environ []string
	// CLITimeout bounds one CLI command (<= 0 → 2 min).
	CLITimeout time.Duration
	// Logger receives lifecycle events (nil → discard).
	Logger *slog.Logger
	// Now is the clock of the availability cache (nil → time.Now).
	Now func() time.Time
}

// ConfigFrom maps the nanofaas.container-local properties onto a Config.
func ConfigFrom(c config.ContainerLocal, logger *slog.Logger) Config {
	return Config{
		RuntimeAdapter:        c.RuntimeAdapter,
		BindHost:              c.BindHost,
		ReadinessTimeout:      c.ReadinessTimeout,
		ReadinessPollInterval: c.ReadinessPollInterval,
		CallbackURL:           c.CallbackURL,
		Logger:                logger,
	}
}

// Provider is the `container-local` deploy.Provider. Operations on one function are serialized;
// different functions proceed in parallel. Close removes everything.
type Provider struct {
	cfg    Config
	cli    *cli
	logger *slog.Logger
	// client probes /health and is shared by every function's proxy, so keep-alive connections
	// to containers are pooled in one place.
	client *http.Client
	fns    *localbackend.Table[*fnState]

	availMu   sync.Mutex // held while `version` runs: concurrent callers share one check
	availAt   time.Time
	availOK   bool
	availSeen bool
}

var _ deploy.Provider = (*Provider)(nil)

// New returns a provider with cfg (defaults applied). It starts nothing.
func New(cfg Config) *Provider {
	cfg.RuntimeAdapter = strings.TrimSpace(cfg.RuntimeAdapter)
	if cfg.RuntimeAdapter == "" {
		cfg.RuntimeAdapter = DefaultRuntimeAdapter
	}
	cfg.BindHost = strings.TrimSpace(cfg.BindHost)
	if cfg.BindHost == "" {
		cfg.BindHost = DefaultBindHost
	}
	if cfg.ReadinessTimeout <= 0 {
		cfg.ReadinessTimeout = DefaultReadinessTimeout
	}
	if cfg.ReadinessPollInterval <= 0 {
		cfg.ReadinessPollInterval = DefaultReadinessPollInterval
	}
	if cfg.CLITimeout <= 0 {
		cfg.CLITimeout = DefaultCLITimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Provider{
		cfg:    cfg,
		cli:    &cli{path: cfg.RuntimeAdapter, env: cfg.Environ, timeout: cfg.CLITimeout},
		logger: cfg.Logger.With("backend", BackendID),
		client: proxy.NewClient(),
		fns:    localbackend.NewTable(BackendID, func() *fnState { return new(fnState) }),
	}
}

// fnState is one provisioned function; the embedded Entry's lock guards it.
type fnState struct {
	localbackend.Entry
	spec *function.Spec
	env  []string // KEY=VALUE of every container, sorted
	url  string   // written once by provision

	proxy    *proxy.Proxy
	replicas []replica // replicas[i] is replica i+1
}

// routeAll points the proxy at every replica, in index order.
func (st *fnState) routeAll() {
	bases := make([]string, len(st.replicas))
	for i, r := range st.replicas {
		bases[i] = r.base
	}
	st.proxy.SetBackends(bases)
}

// BackendID returns "container-local".
func (p *Provider) BackendID() string { return BackendID }

// Available reports whether `<cli> version` exits 0. The answer is reused for a second.
func (p *Provider) Available() bool {
	p.availMu.Lock()
	defer p.availMu.Unlock()
	now := p.cfg.Now()
	if p.availSeen && !now.Before(p.availAt) && now.Sub(p.availAt) < availabilityTTL {
		return p.availOK
	}
	ctx, cancel := context.WithTimeout(p.fns.Context(), availabilityTimeout)
	defer cancel()
	res := p.cli.run(ctx, "version")
	if !res.ok() {
		p.logger.Debug("container engine unavailable", "cli", p.cfg.RuntimeAdapter, "exit", res.exitCode, "output", res.output)
	}
	p.availAt, p.availOK, p.availSeen = p.cfg.Now(), res.ok(), true
	return p.availOK
}

// Supports reports a DEPLOYMENT spec without imagePullSecrets.
func (p *Provider) Supports(spec *function.Spec) bool {
	return spec != nil && spec.Mode() == function.ModeDeployment && len(spec.ImagePullSecrets) == 0
}

// Provision starts the function's initial replicas (minReplicas if set, else 1) behind a new
// proxy and returns the proxy's endpoint. An already provisioned function returns its existing
// endpoint unchanged. On failure nothing is left: every container started is removed and the
// proxy is closed (D20).
func (p *Provider) Provision(ctx context.Context, spec *function.Spec) (deploy.ProvisionResult, error) {
	if !p.Supports(spec) {
		return deploy.ProvisionResult{}, localbackend.Unsupported(BackendID, spec)
	}
	ctx, cancel := p.fns.OpContext(ctx)
	defer cancel()
	st, err := p.fns.Provision(ctx, spec.Name, func(st *fnState) error { return p.provision(ctx, st, spec) })
	if err != nil {
		return deploy.ProvisionResult{}, err
	}
	return deploy.Managed(st.url, BackendID), nil
}

func (p *Provider) provision(ctx context.Context, st *fnState, spec *function.Spec) error {
	st.spec = spec
	st.env = containerEnv(spec, p.cfg.CallbackURL)
	px, err := proxy.New(p.cfg.BindHost, p.client, p.logger.With("function", spec.Name))
	if err != nil {
		return failure.Unavailablef("Function '%s': cannot start its proxy on %s: %v", spec.Name, p.cfg.BindHost, err)
	}
	st.proxy, st.url = px, px.URL()
	desired := initialReplicas(spec)
	if err := p.scaleUp(ctx, st, desired); err != nil {
		p.teardown(ctx, st)
		p.logger.Warn("function provisioning failed", "function", spec.Name, "error", err)
		return err
	}
	p.logger.Info("function provisioned", "function", spec.Name, "url", st.url, "replicas", desired)
	return nil
}

// scaleUp starts replicas len+1..n one after the other; each joins the proxy once ready. The
// first failure stops it; the replicas started before it are kept.
func (p *Provider) scaleUp(ctx context.Context, st *fnState, n int) error {
	for k := len(st.replicas) + 1; k <= n; k++ {
		r, err := p.startReplica(ctx, st, k)
		if err != nil {
			return err
		}
		st.replicas = append(st.replicas, r)
		st.routeAll()
	}
	return nil
}

// scaleDown removes the highest-indexed replicas first; they leave the proxy before their
// container is removed, so no request is sent to a container being killed.
func (p *Provider) scaleDown(ctx context.Context, st *fnState, n int) {
	victims := st.replicas[n:]
	st.replicas = st.replicas[:n:n]
	st.routeAll()
	for i := len(victims) - 1; i >= 0; i-- {
		p.remove(ctx, victims[i].name)
	}
}

// remove runs `rm -f name`; a failure is logged and reported.
func (p *Provider) remove(ctx context.Context, name string) bool {
	res := p.cli.run(ctx, "rm", "-f", name)
	if !res.ok() {
		p.logger.Warn("container removal failed", "container", name, "exit", res.exitCode, "output", res.output)
		return false
	}
	p.logger.Debug("container removed", "container", name)
	return true
}

// teardown removes every container of st (highest index first) and closes its proxy. Removals ignore ctx's cancellation (each is bounded by the CLI timeout) because a
// skipped one is a leaked container; ctx bounds the proxy's wait for in-flight requests. It
// returns the names it could not remove.
func (p *Provider) teardown(ctx context.Context, st *fnState) []string {
	var failed []string
	if st.proxy != nil {
		st.proxy.SetBackends(nil)
	}
	rmCtx := context.WithoutCancel(ctx)
	for i := len(st.replicas) - 1; i >= 0; i-- {
		if !p.remove(rmCtx, st.replicas[i].name) {
			failed = append(failed, st.replicas[i].name)
		}
	}
	st.replicas = nil
	if st.proxy != nil {
		if err := st.proxy.Close(ctx); err != nil {
			p.logger.Warn("proxy close", "function", st.Name(), "error", err)
		}
	}
	return failed
}

// SetReplicas starts or removes the highest-indexed replicas so that n (< 0 read as 0) remain.
// An unknown function is a silent no-op, as in the reference. Started replicas must become
// ready; on failure the ones already ready are kept and the error is returned.
func (p *Provider) SetReplicas(ctx context.Context, name string, n int) error {
	ctx, cancel := p.fns.OpContext(ctx)
	defer cancel()
	_, err := p.fns.Locked(ctx, name, func(st *fnState) error {
		n = max(n, 0)
		if n > len(st.replicas) {
			return p.scaleUp(ctx, st, n)
		}
		if n < len(st.replicas) {
			p.scaleDown(context.WithoutCancel(ctx), st, n)
			p.logger.Info("function scaled down", "function", name, "replicas", n)
		}
		return nil
	})
	return err
}

// ReadyReplicas counts the replicas whose /health answers 2xx now, probed one after the other;
// an unknown function has 0.
func (p *Provider) ReadyReplicas(ctx context.Context, name string) (int, error) {
	ctx, cancel := p.fns.OpContext(ctx)
	defer cancel()
	ready := 0
	_, err := p.fns.Locked(ctx, name, func(st *fnState) error {
		for _, r := range st.replicas {
			if localbackend.Healthy(ctx, p.client, r.base) {
				ready++
			}
		}
		return nil
	})
	return ready, err
}

// Deprovision removes every container of name (highest index first) and closes its proxy.
// Unknown names succeed. Removal failures are logged, not returned: the function is gone from
// this provider either way.
func (p *Provider) Deprovision(ctx context.Context, name string) error {
	return p.fns.Deprovision(ctx, name, func(st *fnState) { p.deprovision(ctx, st) })
}

// deprovision tears a retired st down and returns the containers it could not remove.
func (p *Provider) deprovision(ctx context.Context, st *fnState) []string {
	failed := p.teardown(ctx, st)
	p.logger.Info("function deprovisioned", "function", st.Name())
	return failed
}

// Close deprovisions every function and refuses new provisioning; in-flight operations are
// cancelled first. ctx bounds the proxies' wait for in-flight requests; every container is
// removed regardless (each removal is bounded by the CLI timeout). The error lists containers
// that could not be removed. Close may be called again.
func (p *Provider) Close(ctx context.Context) error {
	var (
		failedMu sync.Mutex
		failed   []string
	)
	p.fns.Close(func(st *fnState) {
		if f := p.deprovision(ctx, st); len(f) > 0 {
			failedMu.Lock()
			failed = append(failed, f...)
			failedMu.Unlock()
		}
	})
	p.client.CloseIdleConnections()
	if len(failed) > 0 {
		return fmt.Errorf("container-local: could not remove containers %s", strings.Join(failed, ", "))
	}
	return nil
}
