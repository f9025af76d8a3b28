// Command control-plane runs the nanofaas control plane: it loads the configuration from
// defaults, an optional --config YAML file, the environment and --property=value flags, then
// runs until SIGTERM or SIGINT and shuts down gracefully.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/nanofaas/control-plane/internal/config"
	"github.com/nanofaas/control-plane/internal/controlplane"
)

// version is set by release builds with -ldflags "-X main.version=…".
var version string

func main() {
	os.Exit(run())
}

func run() int {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	slog.SetDefault(log)

	cfg, err := config.Load(os.Args[1:], os.Environ())
	if errors.Is(err, config.ErrHelp) {
		fmt.Fprintln(os.Stdout, "usage: control-plane [--config FILE] [--<property>=<value> ...]")
		fmt.Fprintln(os.Stdout, config.MarkdownTable())
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "control-plane: invalid configuration:", err)
		return 2
	}
	log.Info("Loaded control-plane modules: " + cfg.Modules.String())

	app, err := controlplane.New(cfg, controlplane.Options{Logger: log, Version: version})
	if err != nil {
		fmt.Fprintln(os.Stderr, "control-plane:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := app.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "control-plane:", err)
		return 1
	}
	return 0
}
