// Package controlplane assembles the control plane from its configuration (stores, services,
// modules, listeners) and runs it until its context ends, then shuts it down gracefully
// (DECISIONS D18). cmd/control-plane only parses flags and signals and calls it.
package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/nanofaas/control-plane/internal/api"
	"github.com/nanofaas/control-plane/internal/buildinfo"
	"github.com/nanofaas/control-plane/internal/config"
	"github.com/nanofaas/control-plane/internal/deploy"
	"github.com/nanofaas/control-plane/internal/dispatch"
	"github.com/nanofaas/control-plane/internal/execution"
	"github.com/nanofaas/control-plane/internal/function"
	"github.com/nanofaas/control-plane/internal/invocation"
	"github.com/nanofaas/control-plane/internal/metrics"
	"github.com/nanofaas/control-plane/internal/ratelimit"
	"github.com/nanofaas/control-plane/internal/registry"
)

// App is an assembled control plane. Build it with New, then call Run once.
type App struct {
	cfg       *config.Config
	version   string
	stdout    io.Writer
	log       *slog.Logger
	readiness *api.Readiness

	store       *execution.Store
	idempotency *execution.IdempotencyStore
	limiter     *ratelimit.Limiter
	functions   *registry.Service
	invocations *invocation.Service

	loops   []func(context.Context) error // module background loops, run until shutdown
	closers []func(context.Context) error // providers to stop on shutdown (child processes)

	apiServer  *http.Server
	mgmtServer *http.Server
	apiLn      net.Listener
	mgmtLn     net.Listener
}

// Options are the parts of an App that do not come from the configuration.
type Options struct {
	Logger  *slog.Logger // nil = slog.Default()
	Version string       // logged at start-up; "" = from the Go build info
	Stdout  io.Writer    // where --register-examples prints its quickstart; nil = os.Stdout
}

// New builds the control plane and binds its two listeners (so their addresses are known
// before Run), without serving yet.
func New(cfg *config.Config, opt Options) (*App, error) {
	log := opt.Logger
	if log == nil {
		log = slog.Default()
	}
	a := &App{cfg: cfg, version: opt.Version, log: log, stdout: opt.Stdout, readiness: &api.Readiness{}}
	if a.stdout == nil {
		a.stdout = os.Stdout
	}

	// Listeners are bound first: the process backend tells its replicas the API port.
	var err error
	if a.apiLn, err = listen(cfg.Server.Port); err != nil {
		return nil, fmt.Errorf("server.port: %w", err)
	}
	if a.mgmtLn, err = listen(cfg.Management.Port); err != nil {
		_ = a.apiLn.Close()
		return nil, fmt.Errorf("management.server.port: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = a.apiLn.Close()
			_ = a.mgmtLn.Close()
		}
	}()

	promRegistry := metrics.NewRegistry()
	fnMetrics, err := metrics.NewFunctionMetrics(promRegistry, nil)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}

	a.limiter = ratelimit.New(cfg.Rate.MaxPerSecond, nil)
	a.store = execution.NewStore(execution.StoreConfig{
		TTL: cfg.ExecutionStore.TTL, CleanupTTL: cfg.ExecutionStore.CleanupTTL, MaxLifetime: cfg.ExecutionStore.MaxLifetime,
	}, nil)
	a.idempotency = execution.NewIdempotencyStore(execution.IdempotencyConfig{TTL: cfg.Idempotency.TTL}, nil)
	factory := execution.NewFactory(a.store, a.idempotency, nil, log)

	maxResponse := int64(cfg.HTTPClient.MaxInMemorySizeMB) << 20
	client := dispatch.NewHTTPClient(dispatch.ClientConfig{ConnectTimeout: cfg.HTTPClient.ConnectTimeout, MaxResponseBytes: maxResponse})
	router := dispatch.NewRouter(dispatch.Local{}, dispatch.NewPool(client, maxResponse, dispatch.WithDefaultTimeout(cfg.HTTPClient.ReadTimeout)))

	functions := registry.New()
	a.invocations = invocation.NewService(invocation.Deps{
		Limiter: a.limiter, Functions: functions, Store: a.store, Factory: factory,
		Dispatcher: router, Metrics: fnMetrics, Logger: log,
	})
	replicas := &lateReplicas{}
	mods, err := a.wireModules(coreParts{registerer: promRegistry, metrics: fnMetrics, functions: functions, replicas: replicas})
	if err != nil {
		return nil, err
	}
	providers, err := deploy.NewResolver(cfg.Deployment.DefaultBackend, mods.providers...)
	if err != nil {
		return nil, fmt.Errorf("deployment providers: %w", err)
	}
	a.functions = registry.NewService(registry.Deps{
		Registry: functions,
		Specs: registry.NewResolver(registry.Defaults{
			TimeoutMs: cfg.Defaults.TimeoutMs, Concurrency: cfg.Defaults.Concurrency,
			QueueSize: cfg.Defaults.QueueSize, MaxRetries: cfg.Defaults.MaxRetries,
		}),
		Providers: providers,
		Listeners: append([]registry.Listener{metricsListener{fnMetrics}}, mods.listeners...),
		Images:    mods.images,
		Logger:    log,
	})
	replicas.svc = a.functions

	a.apiServer = &http.Server{
		Handler: api.NewAPIHandler(api.Deps{
			Functions: a.functions, Invocations: a.invocations,
			MaxBodyBytes: int64(cfg.HTTP.MaxRequestBodyMB) << 20,
			Routes:       mods.routes,
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	a.mgmtServer = &http.Server{
		Handler:           api.NewManagementHandler(cfg.Management.BasePath, cfg.Management.ExposureInclude, a.readiness, promRegistry),
		ReadHeaderTimeout: 10 * time.Second,
	}
	ok = true
	return a, nil
}

// localURL is the address clients on this machine use for a listener bound to all interfaces.
func localURL(addr net.Addr) string {
	if tcp, ok := addr.(*net.TCPAddr); ok {
		return "http://localhost:" + strconv.Itoa(tcp.Port)
	}
	return "http://" + addr.String()
}

func listen(port int) (net.Listener, error) {
	return net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(port)))
}

// APIAddr is the bound address of the API listener.
func (a *App) APIAddr() net.Addr { return a.apiLn.Addr() }

// ManagementAddr is the bound address of the management listener.
func (a *App) ManagementAddr() net.Addr { return a.mgmtLn.Addr() }

// Run serves until ctx ends, then shuts down: readiness goes DOWN, the API listener stops
// accepting and in-flight requests get up to nanofaas.shutdown.grace to finish, background
// loops stop, and the management listener closes last (D18). It returns nil on a clean stop.
func (a *App) Run(ctx context.Context) error {
	bg, stopBackground := context.WithCancel(context.Background())
	defer stopBackground()
	g, gctx := errgroup.WithContext(bg)
	g.Go(func() error { return ignoreCanceled(a.store.Run(gctx)) })
	g.Go(func() error { return ignoreCanceled(a.idempotency.Run(gctx)) })
	for _, loop := range a.loops {
		g.Go(func() error { return ignoreCanceled(loop(gctx)) })
	}

	serveErr := make(chan error, 2)
	go func() { serveErr <- serve(a.apiServer, a.apiLn) }()
	go func() { serveErr <- serve(a.mgmtServer, a.mgmtLn) }()

	a.readiness.MarkReady()
	a.log.Info("control plane ready",
		"version", buildinfo.Version(a.version),
		"api", a.APIAddr().String(), "management", a.ManagementAddr().String(),
		"modules", a.cfg.Modules.String())

	if a.cfg.RegisterExamples {
		names, err := a.registerExamples(ctx)
		if err != nil {
			a.log.Error("some example functions could not be registered", "error", err)
		}
		printQuickstart(a.stdout, localURL(a.APIAddr()), localURL(a.ManagementAddr()), names)
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-serveErr:
	case <-gctx.Done():
		runErr = g.Wait()
	}

	a.log.Info("shutting down", "grace", a.cfg.Shutdown.Grace.String())
	a.readiness.MarkShuttingDown()
	graceCtx, cancel := context.WithTimeout(context.Background(), a.cfg.Shutdown.Grace)
	defer cancel()
	if err := a.apiServer.Shutdown(graceCtx); err != nil {
		_ = a.apiServer.Close()
	}
	a.invocations.Close(graceCtx)
	stopBackground()
	stopCtx, cancelStop := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelStop()
	for _, closeProvider := range a.closers {
		if err := closeProvider(stopCtx); err != nil {
			a.log.Error("stopping a deployment provider", "error", err)
		}
	}
	if err := g.Wait(); err != nil && runErr == nil {
		runErr = err
	}
	shortCtx, cancelShort := context.WithTimeout(context.Background(), time.Second)
	defer cancelShort()
	if err := a.mgmtServer.Shutdown(shortCtx); err != nil {
		_ = a.mgmtServer.Close()
	}
	a.log.Info("stopped")
	return runErr
}

func serve(s *http.Server, ln net.Listener) error {
	if err := s.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func ignoreCanceled(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// metricsListener is the core registration listener (spec-core §4.6): it re-enables a
// function's meters on register and deletes them on removal.
type metricsListener struct{ m *metrics.FunctionMetrics }

func (l metricsListener) OnRegister(_ context.Context, spec *function.Spec) error {
	l.m.RegisterFunction(spec.Name)
	return nil
}

func (l metricsListener) OnRemove(_ context.Context, name string) error {
	l.m.RemoveFunction(name)
	return nil
}
