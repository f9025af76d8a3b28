package fnruntime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Serve runs h with the configuration from the environment (ConfigFromEnv) until ctx is
// cancelled or the process gets SIGTERM or SIGINT, then shuts down gracefully and returns nil.
func Serve(ctx context.Context, h Handler, opts ...Option) error {
	cfg, err := ConfigFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	return New(h, cfg, opts...).ListenAndServe(ctx)
}

// ListenAndServe listens on Config.Host (all interfaces when empty; the process backend sets
// 127.0.0.1) and Config.Port, and calls Serve.
func (rt *Runtime) ListenAndServe(ctx context.Context) error {
	port := rt.cfg.Port
	if port == "" {
		port = DefaultPort
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", net.JoinHostPort(rt.cfg.Host, port))
	if err != nil {
		_ = rt.Close(context.WithoutCancel(ctx))
		return fmt.Errorf("fnruntime: listen: %w", err)
	}
	return rt.Serve(ctx, ln)
}

// Serve serves on ln until ctx is done, then stops accepting, waits up to the shutdown grace for
// in-flight invocations, drains pending callbacks (Close) and returns. ln is closed on return.
// The error is nil after a clean shutdown.
func (rt *Runtime) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           rt,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(rt.log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	rt.log.Info("function runtime listening", "addr", ln.Addr().String())

	var serveErr error
	select {
	case serveErr = <-served: // the listener failed
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rt.grace)
	defer cancel()
	shutdownErr := srv.Shutdown(sctx)
	if shutdownErr != nil {
		_ = srv.Close() // grace exhausted: drop the remaining connections
	}
	if serveErr == nil {
		serveErr = <-served
	}
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	closeErr := rt.Close(sctx)
	rt.log.Info("function runtime stopped")
	return errors.Join(serveErr, shutdownErr, closeErr)
}

// Close stops the runtime: new invocations get 503, queued callbacks are delivered until ctx
// is done (then abandoned), and abandoned handler goroutines (after a timeout) are waited for
// until ctx is done. Only the first call does anything. Serve calls Close itself.
func (rt *Runtime) Close(ctx context.Context) error {
	rt.mu.Lock()
	already := rt.closed
	rt.closed = true
	rt.mu.Unlock()
	if already {
		return nil
	}
	cbErr := rt.cb.stop(ctx)
	hErr := waitGroup(ctx, &rt.handlers)
	if hErr != nil {
		hErr = fmt.Errorf("fnruntime: handlers still running at shutdown: %w", hErr)
	}
	if cbErr != nil {
		cbErr = fmt.Errorf("fnruntime: callbacks not drained: %w", cbErr)
	}
	return errors.Join(cbErr, hErr)
}
