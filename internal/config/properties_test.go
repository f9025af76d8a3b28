package config

import (
	"slices"
	"strings"
	"testing"

	"github.com/nanofaas/control-plane/internal/modules"
)

func TestProperties_DocumentTheReferenceEnvSpellings(t *testing.T) {
	want := map[string][]string{
		"server.port":                             {"SERVER_PORT"},
		"management.server.port":                  {"MANAGEMENT_SERVER_PORT"},
		"management.endpoints.web.base-path":      {"MANAGEMENT_ENDPOINTS_WEB_BASEPATH", "MANAGEMENT_ENDPOINTS_WEB_BASE_PATH"},
		"nanofaas.defaults.timeoutMs":             {"NANOFAAS_DEFAULTS_TIMEOUTMS", "NANOFAAS_DEFAULTS_TIMEOUT_MS"},
		"nanofaas.rate.maxPerSecond":              {"NANOFAAS_RATE_MAXPERSECOND", "NANOFAAS_RATE_MAX_PER_SECOND"},
		"nanofaas.deployment.default-backend":     {"NANOFAAS_DEPLOYMENT_DEFAULTBACKEND", "NANOFAAS_DEPLOYMENT_DEFAULT_BACKEND"},
		"nanofaas.execution-store.ttl":            {"NANOFAAS_EXECUTIONSTORE_TTL", "NANOFAAS_EXECUTION_STORE_TTL"},
		"nanofaas.http-client.connect-timeout-ms": {"NANOFAAS_HTTPCLIENT_CONNECTTIMEOUTMS", "NANOFAAS_HTTP_CLIENT_CONNECT_TIMEOUT_MS"},
		"nanofaas.k8s.callbackUrl":                {"NANOFAAS_K8S_CALLBACKURL", "NANOFAAS_K8S_CALLBACK_URL"},
		"sync-queue.max-depth":                    {"SYNCQUEUE_MAXDEPTH", "SYNC_QUEUE_MAX_DEPTH"},
		"nanofaas.admin.runtime-config.enabled":   {"NANOFAAS_ADMIN_RUNTIMECONFIG_ENABLED", "NANOFAAS_ADMIN_RUNTIME_CONFIG_ENABLED"},
		"nanofaas.control-plane.modules":          {"NANOFAAS_CONTROLPLANE_MODULES", "NANOFAAS_CONTROL_PLANE_MODULES"},
	}
	docs := Properties()
	for name, envs := range want {
		i := slices.IndexFunc(docs, func(d PropertyDoc) bool { return d.Name == name })
		if i < 0 {
			t.Errorf("property %s missing", name)
			continue
		}
		if !slices.Equal(docs[i].EnvVars, envs) {
			t.Errorf("%s env vars = %v, want %v", name, docs[i].EnvVars, envs)
		}
	}
}

func TestProperties_CoverEveryReferenceProperty(t *testing.T) {
	required := []string{
		"server.port", "management.server.port", "management.endpoints.web.base-path",
		"management.endpoints.web.exposure.include",
		"nanofaas.defaults.timeoutMs", "nanofaas.defaults.concurrency", "nanofaas.defaults.queueSize",
		"nanofaas.defaults.maxRetries", "nanofaas.rate.maxPerSecond", "nanofaas.deployment.default-backend",
		"nanofaas.execution-store.ttl", "nanofaas.execution-store.cleanup-ttl", "nanofaas.execution-store.max-lifetime",
		"nanofaas.http-client.connect-timeout-ms", "nanofaas.http-client.read-timeout-ms",
		"nanofaas.http-client.max-in-memory-size-mb", "nanofaas.http.max-request-body-mb", "nanofaas.shutdown.grace",
		"nanofaas.idempotency.ttl", "nanofaas.admin.runtime-config.enabled",
		"sync-queue.enabled", "sync-queue.admission-enabled", "sync-queue.max-depth", "sync-queue.max-estimated-wait",
		"sync-queue.max-queue-wait", "sync-queue.retry-after-seconds", "sync-queue.throughput-window",
		"sync-queue.per-function-min-samples",
		"nanofaas.scaling.poll-interval-ms", "nanofaas.scaling.default-target-in-flight-per-pod",
		"nanofaas.scaling.default-min-replicas", "nanofaas.scaling.default-max-replicas",
		"nanofaas.scaling.concurrency-upscale-cooldown-ms", "nanofaas.scaling.concurrency-downscale-cooldown-ms",
		"nanofaas.scaling.concurrency-high-load-threshold", "nanofaas.scaling.concurrency-low-load-threshold",
		"nanofaas.k8s.namespace", "nanofaas.k8s.callbackUrl", "nanofaas.k8s.image-pull-policy",
		"nanofaas.image-validator.enabled",
		"nanofaas.container-local.runtime-adapter", "nanofaas.container-local.bind-host",
		"nanofaas.container-local.readiness-timeout", "nanofaas.container-local.readiness-poll-interval",
		"nanofaas.container-local.callback-url",
		"nanofaas.process.work-dir", "nanofaas.process.readiness-timeout",
	}
	var names []string
	for _, d := range Properties() {
		names = append(names, d.Name)
		if d.Meaning == "" {
			t.Errorf("%s has no meaning", d.Name)
		}
		if d.Module != "" && !slices.Contains(modules.Known(), d.Module) {
			t.Errorf("%s owned by unknown module %q", d.Name, d.Module)
		}
	}
	for _, r := range required {
		if !slices.Contains(names, r) {
			t.Errorf("property %s missing from the table", r)
		}
	}
}

func TestProperties_TableIndexesWithoutCollisions(t *testing.T) {
	l := &loader{props: properties()}
	if err := l.index(); err != nil {
		t.Fatal(err)
	}
	if len(l.byKey) != len(l.props) || len(l.byCompact) != len(l.props) {
		t.Fatalf("index sizes %d/%d for %d properties", len(l.byKey), len(l.byCompact), len(l.props))
	}
}

func TestMarkdownTable_ListsEveryProperty(t *testing.T) {
	table := MarkdownTable()
	if !strings.HasPrefix(table, "| Property | Env vars | Default | Module | Meaning |\n|---|---|---|---|---|\n") {
		t.Fatalf("unexpected header:\n%s", table)
	}
	for _, d := range Properties() {
		if !strings.Contains(table, "| `"+d.Name+"` | `"+d.EnvVars[0]+"`") {
			t.Errorf("table lacks a row for %s", d.Name)
		}
	}
	for _, row := range []string{
		"| `nanofaas.defaults.timeoutMs` | `NANOFAAS_DEFAULTS_TIMEOUTMS` / `NANOFAAS_DEFAULTS_TIMEOUT_MS` | `30000` | core |",
		"| `nanofaas.deployment.default-backend` | `NANOFAAS_DEPLOYMENT_DEFAULTBACKEND` / `NANOFAAS_DEPLOYMENT_DEFAULT_BACKEND` | `\"\"` | core |",
		"| `sync-queue.max-depth` | `SYNCQUEUE_MAXDEPTH` / `SYNC_QUEUE_MAX_DEPTH` | `200` | sync-queue |",
	} {
		if !strings.Contains(table, row) {
			t.Errorf("table lacks %q", row)
		}
	}
	if !strings.Contains(table, "--register-examples") || !strings.Contains(table, "POD_NAMESPACE") {
		t.Error("table notes lack the non-property settings")
	}
}

func TestWords_SplitsKebabAndCamelCase(t *testing.T) {
	tests := map[string][]string{
		"timeoutMs":             {"timeout", "Ms"},
		"maxPerSecond":          {"max", "Per", "Second"},
		"k8s":                   {"k8s"},
		"max-in-memory-size-mb": {"max", "in", "memory", "size", "mb"},
		"callbackUrl":           {"callback", "Url"},
		"port":                  {"port"},
	}
	for in, want := range tests {
		if got := words(in); !slices.Equal(got, want) {
			t.Errorf("words(%q) = %v, want %v", in, got, want)
		}
	}
}
