package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nanofaas/control-plane/internal/modules"
)

func mustLoad(t *testing.T, args, env []string) *Config {
	t.Helper()
	c, err := Load(args, env)
	if err != nil {
		t.Fatalf("Load(%q, %q) error: %v", args, env, err)
	}
	return c
}

func loadErr(t *testing.T, args, env []string) error {
	t.Helper()
	c, err := Load(args, env)
	if err == nil {
		t.Fatalf("Load(%q, %q) succeeded (%+v), want error", args, env, c)
	}
	return err
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "application.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func assertContains(t *testing.T, err error, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
}

func TestLoad_NoInputGivesReferenceDefaults(t *testing.T) {
	want := &Config{
		Server:         Server{Port: 8080},
		Management:     Management{Port: 8081, BasePath: "/actuator", ExposureInclude: "health,prometheus"},
		Defaults:       Defaults{TimeoutMs: 30000, Concurrency: 4, QueueSize: 100, MaxRetries: 3},
		Rate:           Rate{MaxPerSecond: 1000000},
		Deployment:     Deployment{DefaultBackend: ""},
		ExecutionStore: ExecutionStore{TTL: 5 * time.Minute, CleanupTTL: 2 * time.Minute, MaxLifetime: 30 * time.Minute},
		HTTPClient:     HTTPClient{ConnectTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, MaxInMemorySizeMB: 16},
		HTTP:           HTTP{MaxRequestBodyMB: 16},
		Shutdown:       Shutdown{Grace: 30 * time.Second},
		Idempotency:    Idempotency{TTL: 5 * time.Minute},
		Admin:          Admin{RuntimeConfigEnabled: false},
		SyncQueue: SyncQueue{Enabled: true, AdmissionEnabled: true, MaxDepth: 200, MaxEstimatedWait: 2 * time.Second,
			MaxQueueWait: 2 * time.Second, RetryAfterSeconds: 2, ThroughputWindow: 30 * time.Second, PerFunctionMinSamples: 50},
		Scaling: Scaling{PollInterval: 5 * time.Second, DefaultTargetInFlightPerPod: 2, DefaultMinReplicas: 1, DefaultMaxReplicas: 10,
			ConcurrencyUpscaleCooldown: 30 * time.Second, ConcurrencyDownscaleCooldown: 60 * time.Second,
			ConcurrencyHighLoadThreshold: 0.85, ConcurrencyLowLoadThreshold: 0.35},
		K8s:            K8s{ImagePullPolicy: "Always"},
		ContainerLocal: ContainerLocal{RuntimeAdapter: "docker", BindHost: "127.0.0.1", ReadinessTimeout: 20 * time.Second, ReadinessPollInterval: 250 * time.Millisecond},
		Process:        Process{ReadinessTimeout: 20 * time.Second},
		ImageValidator: ImageValidator{Enabled: true},
		Modules:        modules.All(),
	}
	got := mustLoad(t, nil, nil)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("defaults:\n got %+v\nwant %+v", got, want)
	}
	if d := Default(); !reflect.DeepEqual(d, want) {
		t.Fatalf("Default() = %+v", d)
	}
}

func TestLoad_EnvVarSpellingsBindTheirProperty(t *testing.T) {
	tests := []struct {
		env  string
		get  func(*Config) any
		want any
	}{
		{"NANOFAAS_DEFAULTS_TIMEOUTMS=1234", func(c *Config) any { return c.Defaults.TimeoutMs }, 1234},
		{"NANOFAAS_DEFAULTS_TIMEOUT_MS=1234", func(c *Config) any { return c.Defaults.TimeoutMs }, 1234},
		{"NANOFAAS_DEFAULTS_QUEUE_SIZE=7", func(c *Config) any { return c.Defaults.QueueSize }, 7},
		{"NANOFAAS_DEFAULTS_MAXRETRIES=0", func(c *Config) any { return c.Defaults.MaxRetries }, 0},
		{"SYNC_QUEUE_MAXDEPTH=5", func(c *Config) any { return c.SyncQueue.MaxDepth }, 5},
		{"SYNCQUEUE_MAXDEPTH=5", func(c *Config) any { return c.SyncQueue.MaxDepth }, 5},
		{"SYNC_QUEUE_MAX_DEPTH=5", func(c *Config) any { return c.SyncQueue.MaxDepth }, 5},
		{"SYNCQUEUE_MAX_DEPTH=5", func(c *Config) any { return c.SyncQueue.MaxDepth }, 5},
		{"SYNC_QUEUE_ENABLED=FALSE", func(c *Config) any { return c.SyncQueue.Enabled }, false},
		{"SYNC_QUEUE_ADMISSION_ENABLED=false", func(c *Config) any { return c.SyncQueue.AdmissionEnabled }, false},
		{"SYNC_QUEUE_MAX_ESTIMATED_WAIT=2s", func(c *Config) any { return c.SyncQueue.MaxEstimatedWait }, 2 * time.Second},
		{"SYNC_QUEUE_MAX_QUEUE_WAIT=5s", func(c *Config) any { return c.SyncQueue.MaxQueueWait }, 5 * time.Second},
		{"SYNC_QUEUE_THROUGHPUT_WINDOW=10s", func(c *Config) any { return c.SyncQueue.ThroughputWindow }, 10 * time.Second},
		{"SYNC_QUEUE_PER_FUNCTION_MIN_SAMPLES=1", func(c *Config) any { return c.SyncQueue.PerFunctionMinSamples }, 1},
		{"NANOFAAS_EXECUTIONSTORE_TTL=10m", func(c *Config) any { return c.ExecutionStore.TTL }, 10 * time.Minute},
		{"NANOFAAS_EXECUTION_STORE_TTL=PT10M", func(c *Config) any { return c.ExecutionStore.TTL }, 10 * time.Minute},
		{"NANOFAAS_EXECUTION_STORE_CLEANUP_TTL=60000", func(c *Config) any { return c.ExecutionStore.CleanupTTL }, time.Minute},
		{"NANOFAAS_K8S_CALLBACKURL=http://cp/x", func(c *Config) any { return c.K8s.CallbackURL }, "http://cp/x"},
		{"NANOFAAS_K8S_CALLBACK_URL=http://cp/x", func(c *Config) any { return c.K8s.CallbackURL }, "http://cp/x"},
		{"NANOFAAS_RATE_MAXPERSECOND=10", func(c *Config) any { return c.Rate.MaxPerSecond }, 10},
		{"NANOFAAS_RATE_MAX_PER_SECOND=10", func(c *Config) any { return c.Rate.MaxPerSecond }, 10},
		{"SERVER_PORT=9090", func(c *Config) any { return c.Server.Port }, 9090},
		{"MANAGEMENT_SERVER_PORT=9091", func(c *Config) any { return c.Management.Port }, 9091},
		{"MANAGEMENT_ENDPOINTS_WEB_BASEPATH=/manage", func(c *Config) any { return c.Management.BasePath }, "/manage"},
		{"NANOFAAS_DEPLOYMENT_DEFAULT_BACKEND=k8s", func(c *Config) any { return c.Deployment.DefaultBackend }, "k8s"},
		{"NANOFAAS_DEPLOYMENT_DEFAULTBACKEND=process", func(c *Config) any { return c.Deployment.DefaultBackend }, "process"},
		{"NANOFAAS_HTTP_CLIENT_CONNECT_TIMEOUT_MS=100", func(c *Config) any { return c.HTTPClient.ConnectTimeout }, 100 * time.Millisecond},
		{"NANOFAAS_HTTPCLIENT_READTIMEOUTMS=2s", func(c *Config) any { return c.HTTPClient.ReadTimeout }, 2 * time.Second},
		{"NANOFAAS_HTTP_MAX_REQUEST_BODY_MB=1", func(c *Config) any { return c.HTTP.MaxRequestBodyMB }, 1},
		{"NANOFAAS_SHUTDOWN_GRACE=0", func(c *Config) any { return c.Shutdown.Grace }, time.Duration(0)},
		{"NANOFAAS_IDEMPOTENCY_TTL=PT1M", func(c *Config) any { return c.Idempotency.TTL }, time.Minute},
		{"NANOFAAS_ADMIN_RUNTIME_CONFIG_ENABLED=true", func(c *Config) any { return c.Admin.RuntimeConfigEnabled }, true},
		{"NANOFAAS_SCALING_POLL_INTERVAL_MS=250", func(c *Config) any { return c.Scaling.PollInterval }, 250 * time.Millisecond},
		{"NANOFAAS_SCALING_CONCURRENCY_HIGH_LOAD_THRESHOLD=0.9", func(c *Config) any { return c.Scaling.ConcurrencyHighLoadThreshold }, 0.9},
		{"NANOFAAS_K8S_IMAGE_PULL_POLICY=IfNotPresent", func(c *Config) any { return c.K8s.ImagePullPolicy }, "IfNotPresent"},
		{"NANOFAAS_IMAGE_VALIDATOR_ENABLED=false", func(c *Config) any { return c.ImageValidator.Enabled }, false},
		{"NANOFAAS_CONTAINER_LOCAL_RUNTIME_ADAPTER=podman", func(c *Config) any { return c.ContainerLocal.RuntimeAdapter }, "podman"},
		{"NANOFAAS_PROCESS_WORK_DIR=/srv/fn", func(c *Config) any { return c.Process.WorkDir }, "/srv/fn"},
		{"NANOFAAS_PROCESS_READINESS_TIMEOUT=3s", func(c *Config) any { return c.Process.ReadinessTimeout }, 3 * time.Second},
		{"POD_NAMESPACE=nanofaas", func(c *Config) any { return c.K8s.PodNamespace }, "nanofaas"},
	}
	for _, tc := range tests {
		t.Run(tc.env, func(t *testing.T) {
			c := mustLoad(t, nil, []string{tc.env})
			if got := tc.get(c); got != tc.want {
				t.Fatalf("%s bound %v (%T), want %v (%T)", tc.env, got, got, tc.want, tc.want)
			}
		})
	}
}

// sampleValue returns a valid non-default text for a field and the value it must bind to.
func sampleValue(t *testing.T, field any) (string, any) {
	t.Helper()
	switch f := field.(type) {
	case *int:
		return "7", 7
	case *bool:
		if *f {
			return "false", false
		}
		return "true", true
	case *string:
		return "/sample", "/sample"
	case *time.Duration:
		return "7ms", 7 * time.Millisecond
	case *float64:
		return "0.5", 0.5
	case *modules.Set:
		return "none", modules.None()
	}
	t.Fatalf("no sample for %T", field)
	return "", nil
}

func fieldValue(field any) any {
	return reflect.ValueOf(field).Elem().Interface()
}

func TestLoad_EveryPropertyBindsFromEveryDocumentedSource(t *testing.T) {
	docs := Properties()
	props := properties()
	for i, p := range props {
		var probe Config
		raw, want := sampleValue(t, p.field(&probe))
		check := func(t *testing.T, args, env []string) {
			t.Helper()
			c := mustLoad(t, args, env)
			if got := fieldValue(p.field(c)); !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: got %v, want %v", p.name, got, want)
			}
		}
		t.Run(p.name, func(t *testing.T) {
			if len(docs[i].EnvVars) == 0 {
				t.Fatal("no env var documented")
			}
			for _, env := range docs[i].EnvVars {
				check(t, nil, []string{env + "=" + raw})
			}
			check(t, []string{"--" + p.name + "=" + raw}, nil)
			check(t, []string{"--config", writeFile(t, p.name+": "+raw+"\n")}, nil)
		})
	}
}

func TestLoad_IgnoresUnrelatedAndMalformedEnvNames(t *testing.T) {
	env := []string{
		"PATH=/usr/bin",
		"HOME=",
		"NOEQUALS",
		"=weird",
		// Set by the reference's tooling but bound to nothing (spec-modules §9).
		"NANOFAAS_SYNC_QUEUE_ENABLED=false",
		"NANOFAAS_SYNC_QUEUE_MAX_CONCURRENCY=abc",
		// Not valid spellings of server.port / sync-queue.max-depth.
		"SERVER__PORT=abc",
		"_SERVER_PORT=abc",
		"SERVER_PORT_=abc",
		"server_port=abc",
		"Server_Port=abc",
		"SERVERPORT=abc",
		"SYNCQUEUEMAXDEPTH=abc",
		"SYNC_QUE_UE_MAX_DEPTH=abc",
		"SERVER.PORT=abc",
		"NANOFAAS_DEFAULTS_TIME_OUT_MS=abc",
	}
	c := mustLoad(t, nil, env)
	if !reflect.DeepEqual(c, Default()) {
		t.Fatalf("unrelated env changed the configuration: %+v", c)
	}
}

func TestLoad_ConflictingEnvSpellingsAreAnError(t *testing.T) {
	err := loadErr(t, nil, []string{"SYNC_QUEUE_MAX_DEPTH=5", "SYNCQUEUE_MAXDEPTH=6"})
	assertContains(t, err, "sync-queue.max-depth", `SYNC_QUEUE_MAX_DEPTH="5"`, `SYNCQUEUE_MAXDEPTH="6"`)

	c := mustLoad(t, nil, []string{"SYNC_QUEUE_MAX_DEPTH=5", "SYNCQUEUE_MAXDEPTH=5"})
	if c.SyncQueue.MaxDepth != 5 {
		t.Fatalf("MaxDepth = %d, want 5", c.SyncQueue.MaxDepth)
	}
	// The same name twice (not something os.Environ produces): the first wins, like getenv.
	c = mustLoad(t, nil, []string{"SERVER_PORT=1", "SERVER_PORT=2"})
	if c.Server.Port != 1 {
		t.Fatalf("Port = %d, want 1", c.Server.Port)
	}
}

func TestLoad_YAMLForms(t *testing.T) {
	tests := []struct {
		name string
		yaml string
	}{
		{"nested camelCase", `
server:
  port: 9090
nanofaas:
  defaults:
    timeoutMs: 1234
  rate:
    maxPerSecond: 10
  k8s:
    callbackUrl: http://cb
  execution-store:
    ttl: 10m
sync-queue:
  max-depth: 5
`},
		{"nested kebab-case", `
server:
  port: 9090
nanofaas:
  defaults:
    timeout-ms: 1234
  rate:
    max-per-second: 10
  k8s:
    callback-url: http://cb
  executionStore:
    ttl: PT10M
syncQueue:
  maxDepth: 5
`},
		{"flat dotted keys", `
server.port: 9090
nanofaas.defaults.timeoutMs: 1234
nanofaas.rate.max-per-second: "10"
nanofaas.k8s.callback-url: http://cb
nanofaas.execution-store.ttl: 600000
sync-queue.max-depth: 5
`},
		{"mixed nesting and flat keys", `
server.port: 9090
nanofaas:
  defaults.timeout_ms: 1234
  rate.maxPerSecond: 10
  k8s: {callbackUrl: "http://cb"}
  execution-store.ttl: 10m
sync-queue: {max-depth: 5}
`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := mustLoad(t, []string{"--config", writeFile(t, tc.yaml)}, nil)
			if c.Server.Port != 9090 || c.Defaults.TimeoutMs != 1234 || c.Rate.MaxPerSecond != 10 ||
				c.K8s.CallbackURL != "http://cb" || c.ExecutionStore.TTL != 10*time.Minute || c.SyncQueue.MaxDepth != 5 {
				t.Fatalf("YAML not bound: %+v", c)
			}
		})
	}
}

func TestLoad_YAMLIgnoresUnknownKeysNullsAndOtherSections(t *testing.T) {
	path := writeFile(t, `
spring:
  application:
    name: control-plane
server:
  port: 9090
  compression: {enabled: true}
nanofaas:
  defaults:
    timeoutMs:
  unknown-group:
    anything: [1, 2]
management:
  endpoints:
    web:
      exposure:
        include: [health, prometheus, info]
`)
	c := mustLoad(t, []string{"--config=" + path}, nil)
	if c.Server.Port != 9090 {
		t.Errorf("Port = %d", c.Server.Port)
	}
	if c.Defaults.TimeoutMs != 30000 {
		t.Errorf("null value changed TimeoutMs to %d", c.Defaults.TimeoutMs)
	}
	if c.Management.ExposureInclude != "health,prometheus,info" {
		t.Errorf("list not joined: %q", c.Management.ExposureInclude)
	}
	if c.ConfigFile != path {
		t.Errorf("ConfigFile = %q", c.ConfigFile)
	}
}

func TestLoad_YAMLEmptyFileKeepsDefaults(t *testing.T) {
	for _, content := range []string{"", "# only a comment\n", "~\n"} {
		c := mustLoad(t, []string{"--config", writeFile(t, content)}, nil)
		if c.Server.Port != 8080 {
			t.Fatalf("content %q changed the port", content)
		}
	}
}

func TestLoad_YAMLProblemsAreErrors(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		wants []string
	}{
		{"bad int with file and line", "server:\n  port: eighty\n",
			[]string{`invalid value "eighty" for server.port (from file `, "application.yaml:2)", "not an integer"}},
		{"bad duration", "sync-queue:\n  max-queue-wait: soon\n",
			[]string{`invalid value "soon" for sync-queue.max-queue-wait`, "not a duration"}},
		{"mapping for a known property", "server:\n  port:\n    value: 1\n",
			[]string{"server.port", "expected a single value"}},
		{"nested list for a known property", "management.endpoints.web.exposure.include: [[a]]\n",
			[]string{"management.endpoints.web.exposure.include", "expected a list of single values"}},
		{"top-level list", "- a\n- b\n", []string{"top level must be a mapping"}},
		{"invalid YAML", "server: [\n", []string{"config file", "application.yaml"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := loadErr(t, []string{"--config", writeFile(t, tc.yaml)}, nil)
			assertContains(t, err, tc.wants...)
		})
	}
}

func TestLoad_MissingConfigFileIsAnError(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	err := loadErr(t, []string{"--config", missing}, nil)
	assertContains(t, err, "nope.yaml")
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error %v does not wrap os.ErrNotExist", err)
	}
}

func TestLoad_PrecedenceDefaultsFileEnvFlags(t *testing.T) {
	file := writeFile(t, "server.port: 1001\nnanofaas.rate.maxPerSecond: 1001\nnanofaas.defaults.concurrency: 1001\n")
	args := []string{"--config", file, "--server.port=3003"}
	env := []string{"SERVER_PORT=2002", "NANOFAAS_RATE_MAX_PER_SECOND=2002"}

	c := mustLoad(t, args, env)
	if c.Server.Port != 3003 {
		t.Errorf("flag should beat env and file: port %d", c.Server.Port)
	}
	if c.Rate.MaxPerSecond != 2002 {
		t.Errorf("env should beat file: rate %d", c.Rate.MaxPerSecond)
	}
	if c.Defaults.Concurrency != 1001 {
		t.Errorf("file should beat default: concurrency %d", c.Defaults.Concurrency)
	}
	if c.Defaults.QueueSize != 100 {
		t.Errorf("default expected: queueSize %d", c.Defaults.QueueSize)
	}

	c = mustLoad(t, []string{"--server.port=1", "--server.port=2"}, nil)
	if c.Server.Port != 2 {
		t.Errorf("the last of repeated flags should win: %d", c.Server.Port)
	}
}

func TestLoad_Flags(t *testing.T) {
	file := writeFile(t, "server.port: 9999\n")
	tests := []struct {
		name  string
		args  []string
		check func(*Config) bool
	}{
		{"config with separate value", []string{"--config", file}, func(c *Config) bool { return c.Server.Port == 9999 }},
		{"config with equals", []string{"--config=" + file}, func(c *Config) bool { return c.Server.Port == 9999 }},
		{"register-examples bare", []string{"--register-examples"}, func(c *Config) bool { return c.RegisterExamples }},
		{"register-examples=true", []string{"--register-examples=TRUE"}, func(c *Config) bool { return c.RegisterExamples }},
		{"register-examples=false", []string{"--register-examples=false"}, func(c *Config) bool { return !c.RegisterExamples }},
		{"kebab flag for camel property", []string{"--nanofaas.defaults.timeout-ms=5"}, func(c *Config) bool { return c.Defaults.TimeoutMs == 5 }},
		{"camel flag for kebab property", []string{"--syncQueue.maxDepth=5"}, func(c *Config) bool { return c.SyncQueue.MaxDepth == 5 }},
		{"string flag keeps '=' in the value", []string{"--nanofaas.k8s.callbackUrl=http://x/?a=b"}, func(c *Config) bool { return c.K8s.CallbackURL == "http://x/?a=b" }},
		{"modules flag", []string{"--nanofaas.control-plane.modules=none"}, func(c *Config) bool { return c.Modules == modules.None() }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if c := mustLoad(t, tc.args, nil); !tc.check(c) {
				t.Fatalf("flags %q not applied: %+v", tc.args, c)
			}
		})
	}
}

func TestLoad_BadFlagsAreRejected(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		wants []string
	}{
		{"unknown flag", []string{"--bogus=1"}, []string{"unknown flag --bogus", "--<property>=<value>"}},
		{"unknown property-like flag", []string{"--nanofaas.defaults.timeout=1"}, []string{"unknown flag --nanofaas.defaults.timeout"}},
		{"property flag without value", []string{"--server.port", "9090"}, []string{"flag --server.port needs a value", "--server.port=<value>"}},
		{"positional argument", []string{"serve"}, []string{`unexpected argument "serve"`}},
		{"single dash", []string{"-config", "x"}, []string{`unexpected argument "-config"`}},
		{"bare double dash", []string{"--"}, []string{`unexpected argument "--"`}},
		{"config without file", []string{"--config"}, []string{"--config needs a file"}},
		{"config with empty file", []string{"--config="}, []string{"--config needs a file"}},
		{"register-examples not boolean", []string{"--register-examples=maybe"}, []string{`"maybe"`, "--register-examples", "not a boolean"}},
		{"bad property value", []string{"--server.port=x"}, []string{`invalid value "x" for server.port (from flag --server.port): not an integer`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assertContains(t, loadErr(t, tc.args, nil), tc.wants...)
		})
	}
}

func TestLoad_HelpFlagReturnsErrHelp(t *testing.T) {
	for _, arg := range []string{"-h", "--help"} {
		if _, err := Load([]string{arg}, nil); !errors.Is(err, ErrHelp) {
			t.Errorf("Load(%q) error = %v, want ErrHelp", arg, err)
		}
	}
}

func TestLoad_BadValuesNamePropertyValueAndSource(t *testing.T) {
	tests := []struct {
		env  string
		want string
	}{
		{"NANOFAAS_DEFAULTS_TIMEOUT_MS=abc", `invalid value "abc" for nanofaas.defaults.timeoutMs (from env NANOFAAS_DEFAULTS_TIMEOUT_MS): not an integer`},
		{"NANOFAAS_DEFAULTS_TIMEOUTMS=1.5", `invalid value "1.5" for nanofaas.defaults.timeoutMs (from env NANOFAAS_DEFAULTS_TIMEOUTMS): not an integer`},
		{"SERVER_PORT=99999999999999999999", `invalid value "99999999999999999999" for server.port (from env SERVER_PORT): integer out of range`},
		{"SYNC_QUEUE_ENABLED=yes", `invalid value "yes" for sync-queue.enabled (from env SYNC_QUEUE_ENABLED): not a boolean (true or false)`},
		{"SYNC_QUEUE_MAX_QUEUE_WAIT=2 seconds", `invalid value "2 seconds" for sync-queue.max-queue-wait (from env SYNC_QUEUE_MAX_QUEUE_WAIT): not a duration`},
		{"NANOFAAS_EXECUTION_STORE_TTL=P99999999D", `invalid value "P99999999D" for nanofaas.execution-store.ttl (from env NANOFAAS_EXECUTION_STORE_TTL): duration out of range`},
		{"NANOFAAS_SCALING_CONCURRENCY_LOW_LOAD_THRESHOLD=low", `invalid value "low" for nanofaas.scaling.concurrency-low-load-threshold (from env NANOFAAS_SCALING_CONCURRENCY_LOW_LOAD_THRESHOLD): not a number`},
		{"NANOFAAS_CONTROL_PLANE_MODULES=autoscaler,foo", `invalid value "autoscaler,foo" for nanofaas.control-plane.modules (from env NANOFAAS_CONTROL_PLANE_MODULES): unknown control-plane module "foo"`},
		{"NANOFAAS_CONTROL_PLANE_MODULES=none,sync-queue", `(from env NANOFAAS_CONTROL_PLANE_MODULES): control-plane module "none" cannot be combined`},
		{"SERVER_PORT=70000", `invalid value "70000" for server.port (from env SERVER_PORT): must be between 0 and 65535`},
		{"MANAGEMENT_SERVER_PORT=-1", `invalid value "-1" for management.server.port (from env MANAGEMENT_SERVER_PORT): must be between 0 and 65535`},
		{"NANOFAAS_HTTP_MAX_REQUEST_BODY_MB=-1", `invalid value "-1" for nanofaas.http.max-request-body-mb (from env NANOFAAS_HTTP_MAX_REQUEST_BODY_MB): must be greater than 0`},
		{"NANOFAAS_SHUTDOWN_GRACE=-1s", `invalid value "-1s" for nanofaas.shutdown.grace (from env NANOFAAS_SHUTDOWN_GRACE): must not be negative`},
		{"NANOFAAS_IDEMPOTENCY_TTL=0", `invalid value "0" for nanofaas.idempotency.ttl (from env NANOFAAS_IDEMPOTENCY_TTL): must be greater than 0`},
		{"MANAGEMENT_ENDPOINTS_WEB_BASE_PATH=actuator", `invalid value "actuator" for management.endpoints.web.base-path (from env MANAGEMENT_ENDPOINTS_WEB_BASE_PATH): must start with '/' or be empty`},
		{"SYNC_QUEUE_MAX_DEPTH=0", `invalid value "0" for sync-queue.max-depth (from env SYNC_QUEUE_MAX_DEPTH): must be greater than 0`},
		{"SYNC_QUEUE_RETRY_AFTER_SECONDS=0", `for sync-queue.retry-after-seconds (from env SYNC_QUEUE_RETRY_AFTER_SECONDS): must be greater than 0`},
		{"SYNC_QUEUE_PER_FUNCTION_MIN_SAMPLES=-3", `for sync-queue.per-function-min-samples (from env SYNC_QUEUE_PER_FUNCTION_MIN_SAMPLES): must be greater than 0`},
		{"NANOFAAS_CONTAINER_LOCAL_READINESS_POLL_INTERVAL=0ms", `for nanofaas.container-local.readiness-poll-interval (from env NANOFAAS_CONTAINER_LOCAL_READINESS_POLL_INTERVAL): must be greater than 0`},
		{"NANOFAAS_PROCESS_READINESS_TIMEOUT=-PT1S", `for nanofaas.process.readiness-timeout (from env NANOFAAS_PROCESS_READINESS_TIMEOUT): must be greater than 0`},
	}
	for _, tc := range tests {
		t.Run(tc.env, func(t *testing.T) {
			err := loadErr(t, nil, []string{tc.env})
			assertContains(t, err, tc.want)
			var ve *ValueError
			if !errors.As(err, &ve) {
				t.Fatalf("error %v is not a *ValueError", err)
			}
			name, _, _ := strings.Cut(tc.env, "=")
			if ve.Source != "env "+name {
				t.Errorf("Source = %q", ve.Source)
			}
		})
	}
}

func TestLoad_ReportsEveryProblemAtOnce(t *testing.T) {
	err := loadErr(t, nil, []string{"SERVER_PORT=x", "SYNC_QUEUE_ENABLED=maybe"})
	assertContains(t, err, "server.port", "sync-queue.enabled")

	err = loadErr(t, nil, []string{"SERVER_PORT=70000", "NANOFAAS_IDEMPOTENCY_TTL=0"})
	assertContains(t, err, "server.port", "nanofaas.idempotency.ttl")
}

func TestLoad_ValidationNamesTheWinningSource(t *testing.T) {
	file := writeFile(t, "server:\n  port: 70000\n")
	err := loadErr(t, []string{"--config", file}, nil)
	assertContains(t, err, `invalid value "70000" for server.port (from file `, "application.yaml:2)")

	err = loadErr(t, []string{"--config", file, "--server.port=-5"}, []string{"SERVER_PORT=1"})
	assertContains(t, err, `invalid value "-5" for server.port (from flag --server.port)`)
}

func TestLoad_ModuleChecksApplyOnlyToLoadedModules(t *testing.T) {
	env := []string{"SYNC_QUEUE_MAX_DEPTH=0", "NANOFAAS_PROCESS_READINESS_TIMEOUT=0", "NANOFAAS_CONTAINER_LOCAL_READINESS_TIMEOUT=0"}
	c := mustLoad(t, nil, append(env, "NANOFAAS_CONTROL_PLANE_MODULES=none"))
	if c.SyncQueue.MaxDepth != 0 {
		t.Fatalf("MaxDepth = %d", c.SyncQueue.MaxDepth)
	}
	err := loadErr(t, nil, append(env, "NANOFAAS_CONTROL_PLANE_MODULES=sync-queue"))
	assertContains(t, err, "sync-queue.max-depth")
	if strings.Contains(err.Error(), "process") || strings.Contains(err.Error(), "container-local") {
		t.Errorf("unloaded modules were validated: %v", err)
	}
}

func TestLoad_NonPositiveValuesFallBackToReferenceDefaults(t *testing.T) {
	env := []string{
		"NANOFAAS_EXECUTION_STORE_TTL=0",
		"NANOFAAS_EXECUTION_STORE_CLEANUP_TTL=-5",
		"NANOFAAS_EXECUTION_STORE_MAX_LIFETIME=-PT1M",
		"NANOFAAS_HTTP_CLIENT_CONNECT_TIMEOUT_MS=0",
		"NANOFAAS_HTTP_CLIENT_READ_TIMEOUT_MS=-1",
		"NANOFAAS_HTTP_CLIENT_MAX_IN_MEMORY_SIZE_MB=0",
		"NANOFAAS_SCALING_POLL_INTERVAL_MS=-1",
		"NANOFAAS_SCALING_DEFAULT_TARGET_IN_FLIGHT_PER_POD=0",
		"NANOFAAS_K8S_IMAGE_PULL_POLICY=  ",
		"NANOFAAS_CONTAINER_LOCAL_RUNTIME_ADAPTER=",
		"NANOFAAS_CONTAINER_LOCAL_BIND_HOST=",
	}
	c := mustLoad(t, nil, env)
	d := Default()
	if c.ExecutionStore != d.ExecutionStore || c.HTTPClient != d.HTTPClient || c.Scaling != d.Scaling ||
		c.K8s != d.K8s || c.ContainerLocal != d.ContainerLocal {
		t.Fatalf("fallbacks not applied:\n got %+v\nwant %+v", c, d)
	}
}

func TestLoad_PlainIntsAndDeadKnobsAreNotValidated(t *testing.T) {
	c := mustLoad(t, nil, []string{
		"NANOFAAS_DEFAULTS_TIMEOUT_MS=-1",
		"NANOFAAS_DEFAULTS_CONCURRENCY=0",
		"NANOFAAS_RATE_MAX_PER_SECOND=0",
		"SYNC_QUEUE_MAX_ESTIMATED_WAIT=0s", // D11: valid, rejects every request
	})
	if c.Defaults.TimeoutMs != -1 || c.Defaults.Concurrency != 0 || c.Rate.MaxPerSecond != 0 || c.SyncQueue.MaxEstimatedWait != 0 {
		t.Fatalf("plain values altered: %+v", c)
	}
}

func TestLoad_PortsAndBasePath(t *testing.T) {
	c := mustLoad(t, nil, []string{"SERVER_PORT=0", "MANAGEMENT_SERVER_PORT=0", "MANAGEMENT_ENDPOINTS_WEB_BASE_PATH=/manage/"})
	if c.Server.Port != 0 || c.Management.Port != 0 {
		t.Fatalf("port 0 (any free port) rejected: %+v", c)
	}
	if c.Management.BasePath != "/manage" {
		t.Fatalf("BasePath = %q, want /manage", c.Management.BasePath)
	}
	c = mustLoad(t, nil, []string{"MANAGEMENT_ENDPOINTS_WEB_BASEPATH="})
	if c.Management.BasePath != "" {
		t.Fatalf("empty BasePath = %q", c.Management.BasePath)
	}
	err := loadErr(t, nil, []string{"SERVER_PORT=9000", "MANAGEMENT_SERVER_PORT=9000"})
	assertContains(t, err, `invalid value "9000" for management.server.port (from env MANAGEMENT_SERVER_PORT): must differ from server.port`)
}

func TestLoad_ModulesFromEnv(t *testing.T) {
	tests := []struct {
		env  []string
		want []string
	}{
		{nil, modules.Known()},
		{[]string{"NANOFAAS_CONTROL_PLANE_MODULES="}, modules.Known()},
		{[]string{"NANOFAAS_CONTROL_PLANE_MODULES=all"}, modules.Known()},
		{[]string{"NANOFAAS_CONTROL_PLANE_MODULES=none"}, []string{}},
		{[]string{"NANOFAAS_CONTROL_PLANE_MODULES= sync-queue , image-validator"},
			[]string{modules.AsyncQueue, modules.ImageValidator, modules.K8sDeploymentProvider, modules.SyncQueue}},
		{[]string{"NANOFAAS_CONTROLPLANE_MODULES=autoscaler"}, []string{modules.Autoscaler}},
	}
	for _, tc := range tests {
		c := mustLoad(t, nil, tc.env)
		if got := c.Modules.Names(); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("env %q: modules %v, want %v", tc.env, got, tc.want)
		}
	}
}

func TestK8s_EffectiveNamespaceAndCallbackURL(t *testing.T) {
	tests := []struct {
		env           []string
		wantNamespace string
		wantCallback  string
	}{
		{nil, "default", "http://control-plane.default.svc.cluster.local:8080/v1/internal/executions"},
		{[]string{"POD_NAMESPACE=nanofaas"}, "nanofaas", "http://control-plane.nanofaas.svc.cluster.local:8080/v1/internal/executions"},
		{[]string{"POD_NAMESPACE=nanofaas", "NANOFAAS_K8S_NAMESPACE=fns"}, "fns", "http://control-plane.fns.svc.cluster.local:8080/v1/internal/executions"},
		{[]string{"NANOFAAS_K8S_CALLBACK_URL=http://cp:8080/v1/internal/executions"}, "default", "http://cp:8080/v1/internal/executions"},
	}
	for _, tc := range tests {
		c := mustLoad(t, nil, tc.env)
		if got := c.K8s.EffectiveNamespace(); got != tc.wantNamespace {
			t.Errorf("env %q: namespace %q, want %q", tc.env, got, tc.wantNamespace)
		}
		if got := c.K8s.EffectiveCallbackURL(); got != tc.wantCallback {
			t.Errorf("env %q: callback %q, want %q", tc.env, got, tc.wantCallback)
		}
	}
}

func BenchmarkLoad(b *testing.B) {
	env := []string{"PATH=/usr/bin", "SERVER_PORT=9090", "SYNC_QUEUE_MAX_DEPTH=5", "NANOFAAS_EXECUTION_STORE_TTL=PT10M"}
	for b.Loop() {
		if _, err := Load([]string{"--nanofaas.rate.maxPerSecond=10"}, env); err != nil {
			b.Fatal(err)
		}
	}
}
