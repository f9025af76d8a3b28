package controlplane

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nanofaas/control-plane/internal/api"
	"github.com/nanofaas/control-plane/internal/autoscaler"
	"github.com/nanofaas/control-plane/internal/buildinfo"
	"github.com/nanofaas/control-plane/internal/deploy"
	"github.com/nanofaas/control-plane/internal/deploy/container"
	"github.com/nanofaas/control-plane/internal/deploy/process"
	"github.com/nanofaas/control-plane/internal/metrics"
	"github.com/nanofaas/control-plane/internal/modules"
	"github.com/nanofaas/control-plane/internal/queue"
	"github.com/nanofaas/control-plane/internal/registry"
	"github.com/nanofaas/control-plane/internal/runtimeconfig"
	"github.com/nanofaas/control-plane/internal/syncqueue"
)

// coreParts are the core services the modules plug into.
type coreParts struct {
	registerer prometheus.Registerer
	metrics    *metrics.FunctionMetrics
	functions  *registry.Registry
	replicas   *lateReplicas
}

// lateReplicas forwards to the FunctionService, which is built after the modules because the
// modules' listeners are part of it (the autoscaler both listens and scales).
type lateReplicas struct{ svc *registry.Service }

func (l *lateReplicas) ReadyReplicas(ctx context.Context, name string) (int, error) {
	return l.svc.ReadyReplicas(ctx, name)
}

func (l *lateReplicas) SetReplicas(ctx context.Context, name string, n int) (int, error) {
	return l.svc.SetReplicas(ctx, name, n)
}

// releaseNotifier is the async queue as the invocation service sees it, telling the sync
// queue's scheduler whenever a completion frees a dispatch slot it may be waiting for.
type releaseNotifier struct {
	*queue.Manager
	released func()
}

func (n releaseNotifier) ReleaseDispatchSlot(fn string) {
	n.Manager.ReleaseDispatchSlot(fn)
	n.released()
}

// wiredModules is what the selected modules contribute to the core.
type wiredModules struct {
	listeners []registry.Listener
	routes    []api.Route
	providers []deploy.Provider
	images    registry.ImageValidator // nil = the core no-op
}

// wireModules plugs each selected module (D6) into the core's seams. A module that is not
// selected leaves the core default in place: no async queue (:enqueue → 501, inline dispatch,
// direct retries per D2), no sync queue, fixed rate limit, no extra routes.
func (a *App) wireModules(core coreParts) (wiredModules, error) {
	var w wiredModules
	set := a.cfg.Modules
	reg := core.registerer

	var manager *queue.Manager
	if set.Has(modules.AsyncQueue) {
		m, err := queue.NewManager(queue.Deps{Store: a.store, Dispatch: a.invocations.Dispatch, Registerer: reg, Logger: a.log})
		if err != nil {
			return w, fmt.Errorf("async-queue: %w", err)
		}
		manager = m
		a.invocations.SetEnqueuer(m)
		w.listeners = append(w.listeners, m)
		a.loops = append(a.loops, m.Run)
	}

	syncDefaults := runtimeconfig.CoreSyncQueueDefaults()
	if set.Has(modules.SyncQueue) {
		syncDefaults = runtimeconfig.SyncQueueDefaultsFromConfig(a.cfg.SyncQueue)
	}
	var live syncqueue.ConfigSource
	if set.Has(modules.RuntimeConfig) {
		rc, err := runtimeconfig.New(runtimeconfig.Deps{Limiter: a.limiter, SyncQueue: syncDefaults, Registerer: reg, Logger: a.log})
		if err != nil {
			return w, fmt.Errorf("runtime-config: %w", err)
		}
		live = rc
		if a.cfg.Admin.RuntimeConfigEnabled {
			w.routes = append(w.routes, api.RuntimeConfigRoutes(rc, int64(a.cfg.HTTP.MaxRequestBodyMB)<<20)...)
		}
	}

	if set.Has(modules.SyncQueue) {
		deps := syncqueue.Deps{
			Settings: a.cfg.SyncQueue, Config: live, Dispatch: a.invocations.Dispatch,
			Store: a.store, Registerer: reg, Logger: a.log,
		}
		if manager != nil {
			deps.Slots = manager
		}
		sq, err := syncqueue.New(deps)
		if err != nil {
			return w, fmt.Errorf("sync-queue: %w", err)
		}
		if manager != nil {
			a.invocations.SetEnqueuer(releaseNotifier{Manager: manager, released: sq.SlotReleased})
		}
		a.invocations.SetSyncQueue(sq)
		w.listeners = append(w.listeners, sq)
		a.loops = append(a.loops, sq.Run) // D19: runs whenever the module is loaded
	}

	if set.Has(modules.Autoscaler) {
		deps := autoscaler.Deps{
			Functions: core.functions, Replicas: core.replicas, Dispatches: core.metrics,
			PollInterval: a.cfg.Scaling.PollInterval, Registerer: reg, Logger: a.log,
		}
		if manager != nil {
			deps.Metrics = manager
		}
		scaler, err := autoscaler.New(deps)
		if err != nil {
			return w, fmt.Errorf("autoscaler: %w", err)
		}
		w.listeners = append(w.listeners, scaler)
		a.loops = append(a.loops, scaler.Run)
	}

	if set.Has(modules.K8sDeploymentProvider) {
		a.wireKubernetes(set, &w)
	}

	if set.Has(modules.ContainerDeploymentProvider) {
		p := container.New(container.ConfigFrom(a.cfg.ContainerLocal, a.log))
		w.providers = append(w.providers, p)
		a.closers = append(a.closers, p.Close)
	}

	if set.Has(modules.ProcessDeploymentProvider) {
		callback := a.cfg.Process.CallbackURL
		if callback == "" {
			callback = "http://127.0.0.1:" + strconv.Itoa(a.apiLn.Addr().(*net.TCPAddr).Port) + "/v1/internal/executions"
		}
		p := process.New(process.Config{
			WorkDir: a.cfg.Process.WorkDir, ReadinessTimeout: a.cfg.Process.ReadinessTimeout,
			CallbackURL: callback, Logger: a.log,
		})
		w.providers = append(w.providers, p)
		a.closers = append(a.closers, p.Close)
	}

	if set.Has(modules.BuildMetadata) {
		w.routes = append(w.routes, api.BuildMetadataRoutes(buildinfo.New())...)
	}
	return w, nil
}
