package process

import (
	"strings"

	"github.com/nanofaas/control-plane/internal/deploy"
	"github.com/nanofaas/control-plane/internal/function"
)

// The variables that tell a replica where to listen: every replica gets its own PORT, and all
// listen on loopback only (HOST), where the proxy and the readiness probe reach them.
const (
	envPort     = "PORT"
	envHost     = "HOST"
	replicaHost = "127.0.0.1"
)

// isListenAddr reports PORT and HOST, which the provider sets per replica.
func isListenAddr(name string) bool { return name == envPort || name == envHost }

// isReserved reports the names the provider sets itself: deploy.ReservedEnv plus PORT and HOST,
// because a user value would make the replica listen where nobody probes it, or on every
// interface.
func isReserved(name string) bool {
	return isListenAddr(name) || deploy.ReservedEnv(name)
}

// isOwnSetting reports the control plane's own settings, which are not passed on to functions.
func isOwnSetting(name string) bool {
	upper := strings.ToUpper(name)
	return strings.HasPrefix(upper, "NANOFAAS_") || strings.HasPrefix(upper, "SYNC_QUEUE_") ||
		strings.HasPrefix(upper, "SYNCQUEUE_")
}

// functionEnv is the environment of every process of spec except PORT and HOST: the control
// plane's environment minus its own settings and the reserved names, then deploy.ReplicaEnv
// without PORT, HOST and a nameless spec entry. Later entries win over earlier ones (os/exec keeps the
// last value of a duplicate key).
func functionEnv(environ []string, spec *function.Spec, callbackURL string) []string {
	vars := deploy.ReplicaEnv(spec, callbackURL)
	env := make([]string, 0, len(environ)+len(vars))
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if name == "" || isOwnSetting(name) || isReserved(name) {
			continue
		}
		env = append(env, kv)
	}
	for _, v := range vars {
		if v.Name != "" && !isListenAddr(v.Name) {
			env = append(env, v.Name+"="+v.Value)
		}
	}
	return env
}

// runtimeCommand is the spec's non-blank runtimeCommand, or "".
func runtimeCommand(spec *function.Spec) string {
	if spec.RuntimeCommand == nil || strings.TrimSpace(*spec.RuntimeCommand) == "" {
		return ""
	}
	return *spec.RuntimeCommand
}

// hasCommand reports whether spec carries the argv of a long-lived runtime.
func hasCommand(spec *function.Spec) bool {
	return len(spec.Command) > 0 && strings.TrimSpace(spec.Command[0]) != ""
}

// usesWatchdog reports whether spec is served by the built-in STDIO/FILE watchdog: no command of
// its own, runtimeMode STDIO or FILE and a non-blank runtimeCommand. A spec with a command runs
// that command even in STDIO/FILE mode (it gets EXECUTION_MODE and WATCHDOG_CMD, so an external
// watchdog binary works as it does in a container).
func usesWatchdog(spec *function.Spec) bool {
	if hasCommand(spec) || spec.RuntimeMode == nil || runtimeCommand(spec) == "" {
		return false
	}
	m := *spec.RuntimeMode
	return m == function.RuntimeSTDIO || m == function.RuntimeFILE
}

// initialReplicas is scalingConfig.minReplicas when set (may be 0), else 1.
func initialReplicas(spec *function.Spec) int {
	if sc := spec.ScalingConfig; sc != nil && sc.MinReplicas != nil {
		return max(0, *sc.MinReplicas)
	}
	return 1
}
