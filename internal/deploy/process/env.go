package process

import (
	"slices"
	"strconv"
	"strings"

	"github.com/nanofaas/control-plane/internal/function"
)

// isReserved reports the names the provider sets itself; they are silently dropped from a spec's
// env, as in the k8s provider. PORT is added because a user PORT would make the replica listen
// where nobody probes it.
func isReserved(name string) bool {
	switch name {
	case "FUNCTION_NAME", "WARM", "TIMEOUT_MS", "EXECUTION_MODE", "WATCHDOG_CMD", "CALLBACK_URL", "PORT":
		return true
	}
	return false
}

// isOwnSetting reports the control plane's own settings, which are not passed on to functions.
func isOwnSetting(name string) bool {
	upper := strings.ToUpper(name)
	return strings.HasPrefix(upper, "NANOFAAS_") || strings.HasPrefix(upper, "SYNC_QUEUE_") ||
		strings.HasPrefix(upper, "SYNCQUEUE_")
}

// functionEnv is the environment of every process of spec except PORT: the control plane's
// environment minus its own settings, then FUNCTION_NAME, WARM, TIMEOUT_MS, EXECUTION_MODE,
// WATCHDOG_CMD, CALLBACK_URL, then the spec's env (reserved names dropped) sorted by key.
// Later entries win over earlier ones (os/exec keeps the last value of a duplicate key).
func functionEnv(environ []string, spec *function.Spec, callbackURL string) []string {
	env := make([]string, 0, len(environ)+len(spec.Env)+8)
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if name == "" || isOwnSetting(name) || isReserved(name) {
			continue
		}
		env = append(env, kv)
	}
	env = append(env,
		"FUNCTION_NAME="+spec.Name,
		"WARM=true",
		"TIMEOUT_MS="+strconv.Itoa(spec.Timeout()),
	)
	if spec.RuntimeMode != nil && *spec.RuntimeMode != "" {
		env = append(env, "EXECUTION_MODE="+string(*spec.RuntimeMode))
	}
	if cmd := runtimeCommand(spec); cmd != "" {
		env = append(env, "WATCHDOG_CMD="+cmd)
	}
	if strings.TrimSpace(callbackURL) != "" {
		env = append(env, "CALLBACK_URL="+callbackURL)
	}
	keys := make([]string, 0, len(spec.Env))
	for k := range spec.Env {
		if k != "" && !isReserved(k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		env = append(env, k+"="+spec.Env[k])
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
