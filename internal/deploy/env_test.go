package deploy

import (
	"reflect"
	"testing"

	"github.com/nanofaas/control-plane/internal/function"
)

func TestReplicaEnv_ContractOrderOptionalEntriesAndReservedNames(t *testing.T) {
	ptr := func(s string) *string { return &s }
	stdio := function.RuntimeSTDIO
	empty := function.RuntimeMode("")
	timeout := 500
	tests := []struct {
		name     string
		spec     function.Spec
		callback string
		want     []EnvVar
	}{
		{
			name: "minimal spec: only the three fixed variables",
			spec: function.Spec{Name: "fn", TimeoutMs: &timeout, RuntimeMode: &empty, RuntimeCommand: ptr("  ")},
			want: []EnvVar{{"FUNCTION_NAME", "fn"}, {"WARM", "true"}, {"TIMEOUT_MS", "500"}},
		},
		{
			name: "every optional variable, then the spec's env sorted without reserved names",
			spec: function.Spec{
				Name: "fn", TimeoutMs: &timeout, RuntimeMode: &stdio, RuntimeCommand: ptr("/app/h.sh"),
				Env: map[string]string{
					"B": "2", "A": "1", "FUNCTION_NAME": "x", "WARM": "no", "TIMEOUT_MS": "1",
					"EXECUTION_MODE": "FILE", "WATCHDOG_CMD": "y", "CALLBACK_URL": "z", "PORT": "9",
				},
			},
			callback: "http://cb",
			want: []EnvVar{
				{"FUNCTION_NAME", "fn"}, {"WARM", "true"}, {"TIMEOUT_MS", "500"}, {"EXECUTION_MODE", "STDIO"},
				{"WATCHDOG_CMD", "/app/h.sh"}, {"CALLBACK_URL", "http://cb"}, {"A", "1"}, {"B", "2"}, {"PORT", "9"},
			},
		},
		{
			name:     "blank callback is not injected",
			spec:     function.Spec{Name: "fn", TimeoutMs: &timeout},
			callback: " ",
			want:     []EnvVar{{"FUNCTION_NAME", "fn"}, {"WARM", "true"}, {"TIMEOUT_MS", "500"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ReplicaEnv(&tc.spec, tc.callback); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("env =\n%v\nwant\n%v", got, tc.want)
			}
		})
	}
}

func TestReservedEnv_OnlyTheControlPlaneVariables(t *testing.T) {
	for _, name := range []string{EnvFunctionName, EnvWarm, EnvTimeoutMs, EnvExecutionMode, EnvWatchdogCmd, EnvCallbackURL} {
		if !ReservedEnv(name) {
			t.Errorf("ReservedEnv(%q) = false, want true", name)
		}
	}
	for _, name := range []string{"PORT", "warm", "", "PATH"} {
		if ReservedEnv(name) {
			t.Errorf("ReservedEnv(%q) = true, want false", name)
		}
	}
}
