package deploy

import (
	"slices"
	"strconv"
	"strings"

	"github.com/nanofaas/control-plane/internal/function"
)

// Names of the variables the control plane sets on every replica (runtime-contract §1.1); a
// spec's env cannot override them.
const (
	EnvFunctionName  = "FUNCTION_NAME"
	EnvWarm          = "WARM"
	EnvTimeoutMs     = "TIMEOUT_MS"
	EnvExecutionMode = "EXECUTION_MODE"
	EnvWatchdogCmd   = "WATCHDOG_CMD"
	EnvCallbackURL   = "CALLBACK_URL"
)

// EnvVar is one environment variable of a replica.
type EnvVar struct {
	Name, Value string
}

// ReservedEnv reports whether name is one the control plane sets itself; such names are silently
// dropped from a spec's env.
func ReservedEnv(name string) bool {
	switch name {
	case EnvFunctionName, EnvWarm, EnvTimeoutMs, EnvExecutionMode, EnvWatchdogCmd, EnvCallbackURL:
		return true
	}
	return false
}

// ReplicaEnv returns the environment of every replica of spec in the contract's order: FUNCTION_NAME,
// WARM=true, TIMEOUT_MS, EXECUTION_MODE (when runtimeMode is set), WATCHDOG_CMD (when
// runtimeCommand is non-blank), CALLBACK_URL (when callbackURL is non-blank), then the spec's env
// minus the reserved names, sorted by name so that re-provisioning yields identical replicas.
// Names are unique. Backends apply their own documented differences on top.
func ReplicaEnv(spec *function.Spec, callbackURL string) []EnvVar {
	env := make([]EnvVar, 0, 6+len(spec.Env))
	env = append(env,
		EnvVar{EnvFunctionName, spec.Name},
		EnvVar{EnvWarm, "true"},
		EnvVar{EnvTimeoutMs, strconv.Itoa(spec.Timeout())},
	)
	if spec.RuntimeMode != nil && *spec.RuntimeMode != "" {
		env = append(env, EnvVar{EnvExecutionMode, string(*spec.RuntimeMode)})
	}
	if spec.RuntimeCommand != nil && strings.TrimSpace(*spec.RuntimeCommand) != "" {
		env = append(env, EnvVar{EnvWatchdogCmd, *spec.RuntimeCommand})
	}
	if strings.TrimSpace(callbackURL) != "" {
		env = append(env, EnvVar{EnvCallbackURL, callbackURL})
	}
	user := len(env)
	for k, v := range spec.Env {
		if !ReservedEnv(k) {
			env = append(env, EnvVar{k, v})
		}
	}
	slices.SortFunc(env[user:], func(a, b EnvVar) int { return strings.Compare(a.Name, b.Name) })
	return env
}
