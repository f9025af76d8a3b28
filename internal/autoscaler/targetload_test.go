package autoscaler

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/nanofaas/control-plane/internal/function"
)

func TestParseTargetLoad_FollowsJavaParseIntWithFallback0(t *testing.T) {
	rows := []struct {
		target *string
		want   int
	}{
		{nil, 0},
		{ptr("5"), 5},
		{ptr("+7"), 7},
		{ptr("-3"), -3},
		{ptr("2.5"), 0},
		{ptr("abc"), 0},
		{ptr(" 5"), 0},
		{ptr(""), 0},
		{ptr("1_000"), 0},
		{ptr("2147483647"), 2147483647},
		{ptr("2147483648"), 0},
	}
	for _, r := range rows {
		if got := parseTargetLoad(r.target); got != r.want {
			t.Errorf("parseTargetLoad(%s) = %d, want %d", deref(r.target), got, r.want)
		}
	}
}

func TestTargetLoadsOf_MapsMetricTypesToScalingTypes(t *testing.T) {
	rows := []struct {
		name    string
		scaling *function.ScalingConfig
		want    []targetLoad
	}{
		{"no scaling config", nil, nil},
		{"queue_depth, rps, in_flight", internalScaling(1, 10, metric("queue_depth", "5"), metric("rps", "12"), metric("in_flight", "3")),
			[]targetLoad{{"queue", 5}, {"rps", 12}, {"capacity", 3}}},
		{"cpu is exported, an invalid target is 0", &function.ScalingConfig{Metrics: []*function.ScalingMetric{metric("cpu", "abc")}},
			[]targetLoad{{"cpu", 0}}},
		{"null metrics, null and unknown types are skipped",
			&function.ScalingConfig{Metrics: []*function.ScalingMetric{nil, {Target: ptr("7")}, metric("unknown_metric", "9"), metric("memory", "1")}},
			nil},
		{"a later metric of the same type wins", internalScaling(1, 10, metric("queue_depth", "5"), metric("queue_depth", "8")),
			[]targetLoad{{"queue", 8}}},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			got := targetLoadsOf(&function.Spec{Name: "fn", ScalingConfig: r.scaling})
			if !slices.Equal(got, r.want) {
				t.Fatalf("targetLoadsOf = %v, want %v", got, r.want)
			}
		})
	}
}

func TestTargetLoadGauges_ExistFromRegisterToRemove(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := New(Deps{Functions: &fakeLister{}, Replicas: newReplicas(), Dispatches: &fakeDispatches{}, Registerer: reg, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// A defaulted DEPLOYMENT function, an HPA one (exported too) and a POOL one without scaling.
	must(t, s.OnRegister(ctx, deploymentSpec(t, "echo", 4, nil)))
	must(t, s.OnRegister(ctx, deploymentSpec(t, "hpa", 4, &function.ScalingConfig{
		Strategy: ptr(function.StrategyHPA), Metrics: []*function.ScalingMetric{metric("cpu", "80"), metric("rps", "2.5")},
	})))
	must(t, s.OnRegister(ctx, &function.Spec{Name: "pool", ExecutionMode: ptr(function.ModePool)}))

	const header = `# HELP gateway_service_target_load Scaling target of the function per scaling type (OpenFaaS-compatible).
# TYPE gateway_service_target_load gauge
`
	want := header + `gateway_service_target_load{function="echo",scaling_type="queue"} 5
gateway_service_target_load{function="hpa",scaling_type="cpu"} 80
gateway_service_target_load{function="hpa",scaling_type="rps"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "gateway_service_target_load"); err != nil {
		t.Fatal(err)
	}

	must(t, s.OnRemove(ctx, "hpa"))
	must(t, s.OnRemove(ctx, "never-registered"))
	want = header + `gateway_service_target_load{function="echo",scaling_type="queue"} 5
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "gateway_service_target_load"); err != nil {
		t.Fatal(err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
