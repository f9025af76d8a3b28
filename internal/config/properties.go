package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/nanofaas/control-plane/internal/modules"
)

// rule is the post-load check or fallback a property gets.
type rule int

const (
	ruleNone            rule = iota
	rulePort                 // 0..65535
	rulePositive             // > 0 (checked only when the owning module is loaded)
	ruleNonNegative          // >= 0
	ruleDefaultIfNotPos      // <= 0 → default (reference fallback)
	ruleDefaultIfBlank       // "" → default
	ruleBasePath             // "" or starts with '/'; one trailing '/' dropped (Spring)
)

// property is one row of the table that drives binding, validation and documentation.
type property struct {
	name    string // canonical dotted name, as the reference writes it
	def     string // default, in the same syntax a user would write; parsed like any value
	module  string // owning module; "" = core
	rule    rule
	meaning string
	field   func(*Config) any // pointer to where the value is stored
}

// properties returns the table. It is rebuilt per call (start-up only) so the package holds no
// mutable state.
func properties() []property {
	const (
		core = ""
		sq   = modules.SyncQueue
		as   = modules.Autoscaler
		k8s  = modules.K8sDeploymentProvider
		cl   = modules.ContainerDeploymentProvider
		pr   = modules.ProcessDeploymentProvider
	)
	return []property{
		{"server.port", "8080", core, rulePort, "API listener port (0 = any free port)",
			func(c *Config) any { return &c.Server.Port }},
		{"management.server.port", "8081", core, rulePort, "actuator listener port: health, prometheus (0 = any free port)",
			func(c *Config) any { return &c.Management.Port }},
		{"management.endpoints.web.base-path", "/actuator", core, ruleBasePath, "actuator base path",
			func(c *Config) any { return &c.Management.BasePath }},
		{"management.endpoints.web.exposure.include", "health,prometheus", core, ruleNone, "actuator endpoints served: health, prometheus or * (others are ignored)",
			func(c *Config) any { return &c.Management.ExposureInclude }},
		{"nanofaas.defaults.timeoutMs", "30000", core, ruleNone, "default function timeoutMs",
			func(c *Config) any { return &c.Defaults.TimeoutMs }},
		{"nanofaas.defaults.concurrency", "4", core, ruleNone, "default function concurrency",
			func(c *Config) any { return &c.Defaults.Concurrency }},
		{"nanofaas.defaults.queueSize", "100", core, ruleNone, "default function queueSize",
			func(c *Config) any { return &c.Defaults.QueueSize }},
		{"nanofaas.defaults.maxRetries", "3", core, ruleNone, "default function maxRetries",
			func(c *Config) any { return &c.Defaults.MaxRetries }},
		{"nanofaas.rate.maxPerSecond", "1000000", core, ruleNone, "global invocation rate limit per second",
			func(c *Config) any { return &c.Rate.MaxPerSecond }},
		{"nanofaas.deployment.default-backend", "", core, ruleNone, "preferred deployment provider id (k8s, container-local, process); empty = the only available one",
			func(c *Config) any { return &c.Deployment.DefaultBackend }},
		{"nanofaas.execution-store.ttl", "5m", core, ruleDefaultIfNotPos, "retention of finished executions",
			func(c *Config) any { return &c.ExecutionStore.TTL }},
		{"nanofaas.execution-store.cleanup-ttl", "2m", core, ruleDefaultIfNotPos, "age after which finished executions drop their payloads",
			func(c *Config) any { return &c.ExecutionStore.CleanupTTL }},
		{"nanofaas.execution-store.max-lifetime", "30m", core, ruleDefaultIfNotPos, "cap on unfinished executions",
			func(c *Config) any { return &c.ExecutionStore.MaxLifetime }},
		{"nanofaas.http-client.connect-timeout-ms", "5000", core, ruleDefaultIfNotPos, "dispatch connect timeout (ms)",
			func(c *Config) any { return &c.HTTPClient.ConnectTimeout }},
		{"nanofaas.http-client.read-timeout-ms", "30000", core, ruleDefaultIfNotPos, "dispatch response timeout when no per-call timeout applies (ms)",
			func(c *Config) any { return &c.HTTPClient.ReadTimeout }},
		{"nanofaas.http-client.max-in-memory-size-mb", "16", core, ruleDefaultIfNotPos, "largest function response body buffered (MiB)",
			func(c *Config) any { return &c.HTTPClient.MaxInMemorySizeMB }},
		{"nanofaas.http.max-request-body-mb", "16", core, rulePositive, "largest accepted request body (MiB); larger → 413",
			func(c *Config) any { return &c.HTTP.MaxRequestBodyMB }},
		{"nanofaas.shutdown.grace", "30s", core, ruleNonNegative, "time in-flight requests get to finish on SIGTERM",
			func(c *Config) any { return &c.Shutdown.Grace }},
		{"nanofaas.idempotency.ttl", "5m", core, rulePositive, "idempotency-key retention after last write",
			func(c *Config) any { return &c.Idempotency.TTL }},
		{"nanofaas.control-plane.modules", "all", core, ruleNone, "optional modules to load: csv of module names, `all`, or `none` (D6)",
			func(c *Config) any { return &c.Modules }},

		{"nanofaas.admin.runtime-config.enabled", "false", modules.RuntimeConfig, ruleNone, "serve the `/v1/admin/runtime-config` API",
			func(c *Config) any { return &c.Admin.RuntimeConfigEnabled }},

		{"sync-queue.enabled", "true", sq, ruleNone, "queue synchronous invocations (hot-reloadable)",
			func(c *Config) any { return &c.SyncQueue.Enabled }},
		{"sync-queue.admission-enabled", "true", sq, ruleNone, "reject when the estimated wait is too long (hot-reloadable)",
			func(c *Config) any { return &c.SyncQueue.AdmissionEnabled }},
		{"sync-queue.max-depth", "200", sq, rulePositive, "global sync-queue depth limit",
			func(c *Config) any { return &c.SyncQueue.MaxDepth }},
		{"sync-queue.max-estimated-wait", "2s", sq, ruleNone, "admission limit on the estimated wait (hot-reloadable)",
			func(c *Config) any { return &c.SyncQueue.MaxEstimatedWait }},
		{"sync-queue.max-queue-wait", "2s", sq, ruleNone, "longest time an item waits in the queue (hot-reloadable)",
			func(c *Config) any { return &c.SyncQueue.MaxQueueWait }},
		{"sync-queue.retry-after-seconds", "2", sq, rulePositive, "Retry-After on 429 (hot-reloadable)",
			func(c *Config) any { return &c.SyncQueue.RetryAfterSeconds }},
		{"sync-queue.throughput-window", "30s", sq, ruleNone, "wait-estimator window",
			func(c *Config) any { return &c.SyncQueue.ThroughputWindow }},
		{"sync-queue.per-function-min-samples", "50", sq, rulePositive, "samples before a function's own throughput is used",
			func(c *Config) any { return &c.SyncQueue.PerFunctionMinSamples }},

		{"nanofaas.scaling.poll-interval-ms", "5000", as, ruleDefaultIfNotPos, "autoscaler period (ms)",
			func(c *Config) any { return &c.Scaling.PollInterval }},
		{"nanofaas.scaling.default-target-in-flight-per-pod", "2", as, ruleDefaultIfNotPos, "fallback per-pod target for ADAPTIVE reporting",
			func(c *Config) any { return &c.Scaling.DefaultTargetInFlightPerPod }},
		{"nanofaas.scaling.default-min-replicas", "1", as, ruleNone, "unused (as in the reference)",
			func(c *Config) any { return &c.Scaling.DefaultMinReplicas }},
		{"nanofaas.scaling.default-max-replicas", "10", as, ruleNone, "unused (as in the reference)",
			func(c *Config) any { return &c.Scaling.DefaultMaxReplicas }},
		{"nanofaas.scaling.concurrency-upscale-cooldown-ms", "30000", as, ruleNone, "unused (as in the reference; cooldowns come from the function spec)",
			func(c *Config) any { return &c.Scaling.ConcurrencyUpscaleCooldown }},
		{"nanofaas.scaling.concurrency-downscale-cooldown-ms", "60000", as, ruleNone, "unused (as in the reference; cooldowns come from the function spec)",
			func(c *Config) any { return &c.Scaling.ConcurrencyDownscaleCooldown }},
		{"nanofaas.scaling.concurrency-high-load-threshold", "0.85", as, ruleNone, "unused (as in the reference)",
			func(c *Config) any { return &c.Scaling.ConcurrencyHighLoadThreshold }},
		{"nanofaas.scaling.concurrency-low-load-threshold", "0.35", as, ruleNone, "unused (as in the reference)",
			func(c *Config) any { return &c.Scaling.ConcurrencyLowLoadThreshold }},

		{"nanofaas.k8s.namespace", "", k8s, ruleNone, "namespace for function objects; empty = env `POD_NAMESPACE`, else `default`",
			func(c *Config) any { return &c.K8s.Namespace }},
		{"nanofaas.k8s.callbackUrl", "", k8s, ruleNone, "`CALLBACK_URL` given to pods; empty = `http://control-plane.<namespace>.svc.cluster.local:8080/v1/internal/executions`",
			func(c *Config) any { return &c.K8s.CallbackURL }},
		{"nanofaas.k8s.image-pull-policy", "Always", k8s, ruleDefaultIfBlank, "imagePullPolicy of function pods",
			func(c *Config) any { return &c.K8s.ImagePullPolicy }},
		{"nanofaas.image-validator.enabled", "true", modules.ImageValidator, ruleNone, "check that images pull before k8s provisioning",
			func(c *Config) any { return &c.ImageValidator.Enabled }},

		{"nanofaas.container-local.runtime-adapter", "docker", cl, ruleDefaultIfBlank, "container CLI (docker, podman, nerdctl)",
			func(c *Config) any { return &c.ContainerLocal.RuntimeAdapter }},
		{"nanofaas.container-local.bind-host", "127.0.0.1", cl, ruleDefaultIfBlank, "host address for container ports and proxies",
			func(c *Config) any { return &c.ContainerLocal.BindHost }},
		{"nanofaas.container-local.readiness-timeout", "20s", cl, rulePositive, "wait for a container's `/health`",
			func(c *Config) any { return &c.ContainerLocal.ReadinessTimeout }},
		{"nanofaas.container-local.readiness-poll-interval", "250ms", cl, rulePositive, "`/health` poll period",
			func(c *Config) any { return &c.ContainerLocal.ReadinessPollInterval }},
		{"nanofaas.container-local.callback-url", "", cl, ruleNone, "`CALLBACK_URL` given to containers; empty = none",
			func(c *Config) any { return &c.ContainerLocal.CallbackURL }},

		{"nanofaas.process.work-dir", "", pr, ruleNone, "working directory of function processes; empty = the control plane's",
			func(c *Config) any { return &c.Process.WorkDir }},
		{"nanofaas.process.readiness-timeout", "20s", pr, rulePositive, "wait for a process replica's `/health`",
			func(c *Config) any { return &c.Process.ReadinessTimeout }},
		{"nanofaas.process.callback-url", "", pr, ruleNone, "`CALLBACK_URL` given to processes; empty = `http://127.0.0.1:<server.port>/v1/internal/executions`",
			func(c *Config) any { return &c.Process.CallbackURL }},
	}
}

// set parses raw into the property's field.
func (p *property) set(c *Config, raw string) error {
	switch f := p.field(c).(type) {
	case *int:
		v, err := parseInt(raw)
		if err != nil {
			return err
		}
		*f = v
	case *bool:
		v, err := parseBool(raw)
		if err != nil {
			return err
		}
		*f = v
	case *string:
		*f = strings.TrimSpace(raw)
	case *time.Duration:
		v, err := ParseDuration(raw)
		if err != nil {
			return err
		}
		*f = v
	case *float64:
		v, err := parseFloat(raw)
		if err != nil {
			return err
		}
		*f = v
	case *modules.Set:
		v, err := modules.Parse(raw)
		if err != nil {
			return err
		}
		*f = v
	default:
		return fmt.Errorf("unsupported field type %T", f) // a bug in the table
	}
	return nil
}

// check applies the property's rule to the loaded value: it may restore the default, or return
// the reason the value is unusable.
func (p *property) check(c *Config) (reason string) {
	ptr := p.field(c)
	switch p.rule {
	case rulePort:
		if v := *ptr.(*int); v < 0 || v > 65535 {
			return "must be between 0 and 65535"
		}
	case rulePositive:
		if p.module != "" && !c.Modules.Has(p.module) {
			return "" // the module that would use it is not loaded
		}
		if sign(ptr) <= 0 {
			return "must be greater than 0"
		}
	case ruleNonNegative:
		if sign(ptr) < 0 {
			return "must not be negative"
		}
	case ruleDefaultIfNotPos:
		if sign(ptr) <= 0 {
			_ = p.set(c, p.def) // defaults are known to parse (tested)
		}
	case ruleDefaultIfBlank:
		if *ptr.(*string) == "" {
			_ = p.set(c, p.def)
		}
	case ruleBasePath:
		s := ptr.(*string)
		if *s != "" && !strings.HasPrefix(*s, "/") {
			return "must start with '/' or be empty"
		}
		*s = strings.TrimSuffix(*s, "/")
	}
	return ""
}

// sign returns -1, 0 or 1 for a numeric field.
func sign(ptr any) int {
	var v float64
	switch f := ptr.(type) {
	case *int:
		v = float64(*f)
	case *time.Duration:
		v = float64(*f)
	case *float64:
		v = *f
	}
	switch {
	case v < 0:
		return -1
	case v > 0:
		return 1
	}
	return 0
}

// PropertyDoc documents one configuration property.
type PropertyDoc struct {
	Name    string   // canonical dotted name
	EnvVars []string // accepted env var spellings (canonical first, then legacy)
	Default string   // default value as a user would write it ("" = empty)
	Module  string   // owning module, "" = core
	Meaning string
}

// Properties documents every property, in table order.
func Properties() []PropertyDoc {
	props := properties()
	out := make([]PropertyDoc, len(props))
	for i, p := range props {
		n := splitName(p.name)
		out[i] = PropertyDoc{Name: p.name, EnvVars: n.envNames(), Default: p.def, Module: p.module, Meaning: p.meaning}
	}
	return out
}

// MarkdownTable renders Properties as the README configuration table, followed by notes on the
// value syntax and the settings that are not properties.
func MarkdownTable() string {
	var b strings.Builder
	b.WriteString("| Property | Env vars | Default | Module | Meaning |\n|---|---|---|---|---|\n")
	for _, d := range Properties() {
		envs := make([]string, len(d.EnvVars))
		for i, e := range d.EnvVars {
			envs[i] = "`" + e + "`"
		}
		def := "`" + d.Default + "`"
		if d.Default == "" {
			def = "`\"\"`"
		}
		module := d.Module
		if module == "" {
			module = "core"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", d.Name, strings.Join(envs, " / "), def, module,
			strings.ReplaceAll(d.Meaning, "|", `\|`))
	}
	b.WriteString(`
Precedence, lowest to highest: defaults, the YAML file given by ` + "`--config FILE`" + ` (nested or flat
dotted keys; ` + "`timeoutMs`" + ` = ` + "`timeout-ms`" + `), environment variables, ` + "`--<property>=<value>`" + ` flags.
Durations accept ` + "`2s`, `500ms`, `5m`, `PT2S`, `PT0.5S`" + `, or a bare number of milliseconds; properties
ending in ` + "`-ms`" + ` take the same forms. Other settings: ` + "`--register-examples`" + ` registers the example
functions; env ` + "`POD_NAMESPACE`" + ` is the Kubernetes namespace fallback.
`)
	return b.String()
}
