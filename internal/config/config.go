// Package config owns the control plane's typed configuration: every property of the reference
// (spec-core §8, spec-modules §9) plus the Go additions, their defaults, and loading them from a
// YAML file, the environment (Spring relaxed binding, DECISIONS.md D7) and --property=value
// command-line flags. One property table (properties.go) drives binding, validation and the
// README table. Loading runs once at start-up; nothing here is on a request path.
package config

import (
	"errors"
	"fmt"
	"time"

	"github.com/nanofaas/control-plane/internal/modules"
)

// Config is the effective configuration. Build it with Load (or Default); treat it as read-only
// afterwards.
type Config struct {
	Server         Server
	Management     Management
	Defaults       Defaults
	Rate           Rate
	Deployment     Deployment
	ExecutionStore ExecutionStore
	HTTPClient     HTTPClient
	HTTP           HTTP
	Shutdown       Shutdown
	Idempotency    Idempotency
	Admin          Admin
	SyncQueue      SyncQueue
	Scaling        Scaling
	K8s            K8s
	ContainerLocal ContainerLocal
	Process        Process
	ImageValidator ImageValidator

	// Modules is the run-time module selection (NANOFAAS_CONTROL_PLANE_MODULES, D6).
	Modules modules.Set
	// RegisterExamples is the --register-examples flag.
	RegisterExamples bool
	// ConfigFile is the YAML file given by --config, or "" when none was given.
	ConfigFile string
}

// Server is the API listener.
type Server struct {
	Port int // server.port; 0 = any free port
}

// Management is the actuator listener.
type Management struct {
	Port            int    // management.server.port; 0 = any free port
	BasePath        string // management.endpoints.web.base-path, without trailing '/'
	ExposureInclude string // management.endpoints.web.exposure.include (csv)
}

// Defaults are the function-spec defaults applied at registration (plain ints, not validated,
// as in the reference).
type Defaults struct {
	TimeoutMs   int
	Concurrency int
	QueueSize   int
	MaxRetries  int
}

// Rate is the global rate limit.
type Rate struct {
	MaxPerSecond int
}

// Deployment configures managed-deployment provider resolution.
type Deployment struct {
	DefaultBackend string // preferred provider id; "" = implicit choice
}

// ExecutionStore configures execution-record retention (values ≤ 0 fall back to the defaults).
type ExecutionStore struct {
	TTL         time.Duration
	CleanupTTL  time.Duration
	MaxLifetime time.Duration
}

// HTTPClient configures the client used to dispatch to function endpoints (values ≤ 0 fall back
// to the defaults).
type HTTPClient struct {
	ConnectTimeout    time.Duration // connect-timeout-ms
	ReadTimeout       time.Duration // read-timeout-ms
	MaxInMemorySizeMB int
}

// HTTP configures the API server (D13).
type HTTP struct {
	MaxRequestBodyMB int
}

// Shutdown configures graceful shutdown (D18).
type Shutdown struct {
	Grace time.Duration
}

// Idempotency configures the idempotency-key store (D5).
type Idempotency struct {
	TTL time.Duration
}

// Admin configures the runtime-config admin API.
type Admin struct {
	RuntimeConfigEnabled bool
}

// SyncQueue holds the sync-queue module's start-up values (spec-modules §2).
type SyncQueue struct {
	Enabled               bool
	AdmissionEnabled      bool
	MaxDepth              int
	MaxEstimatedWait      time.Duration
	MaxQueueWait          time.Duration
	RetryAfterSeconds     int
	ThroughputWindow      time.Duration
	PerFunctionMinSamples int
}

// Scaling holds the autoscaler's settings (spec-modules §3). Several are dead in the reference
// and kept only so that setting them is not an error.
type Scaling struct {
	PollInterval                 time.Duration // poll-interval-ms; ≤ 0 → 5000 ms
	DefaultTargetInFlightPerPod  int           // ≤ 0 → 2
	DefaultMinReplicas           int
	DefaultMaxReplicas           int
	ConcurrencyUpscaleCooldown   time.Duration // concurrency-upscale-cooldown-ms
	ConcurrencyDownscaleCooldown time.Duration // concurrency-downscale-cooldown-ms
	ConcurrencyHighLoadThreshold float64
	ConcurrencyLowLoadThreshold  float64
}

// K8s configures the Kubernetes deployment provider (spec-modules §6).
type K8s struct {
	Namespace       string // "" → PodNamespace → "default"
	CallbackURL     string // "" → derived from the namespace (D9)
	ImagePullPolicy string // blank → Always
	// PodNamespace is env POD_NAMESPACE (not a property): the namespace fallback.
	PodNamespace string
}

// EffectiveNamespace is Namespace if set, else POD_NAMESPACE, else "default".
func (k K8s) EffectiveNamespace() string {
	switch {
	case k.Namespace != "":
		return k.Namespace
	case k.PodNamespace != "":
		return k.PodNamespace
	default:
		return "default"
	}
}

// EffectiveCallbackURL is CallbackURL if set, else the control-plane Service URL in the
// provider's namespace (D9).
func (k K8s) EffectiveCallbackURL() string {
	if k.CallbackURL != "" {
		return k.CallbackURL
	}
	return "http://control-plane." + k.EffectiveNamespace() + ".svc.cluster.local:8080/v1/internal/executions"
}

// ContainerLocal configures the container-local deployment provider (spec-modules §7).
type ContainerLocal struct {
	RuntimeAdapter        string // blank → docker
	BindHost              string // blank → 127.0.0.1
	ReadinessTimeout      time.Duration
	ReadinessPollInterval time.Duration
	CallbackURL           string // "" → not injected
}

// Process configures the embedded process deployment provider (process-backend.md, D15).
type Process struct {
	WorkDir          string // "" → the control plane's working directory
	ReadinessTimeout time.Duration
	CallbackURL      string // "" → http://127.0.0.1:<api port>/v1/internal/executions
}

// ImageValidator configures the image-validator module (D23).
type ImageValidator struct {
	Enabled bool
}

// ErrHelp is returned by Load when the arguments ask for help (-h, --help).
var ErrHelp = errors.New("help requested")

// ValueError reports a property value that cannot be used, and where it came from.
type ValueError struct {
	Property string // canonical property name
	Value    string // the offending text
	Source   string // e.g. "env SYNC_QUEUE_MAX_DEPTH", "file app.yaml:3", "flag --server.port", "default"
	Reason   string
}

func (e *ValueError) Error() string {
	return fmt.Sprintf("invalid value %q for %s (from %s): %s", e.Value, e.Property, e.Source, e.Reason)
}

// Default returns the configuration with every property at its default (no file, env or flags).
func Default() *Config {
	c, err := Load(nil, nil)
	if err != nil {
		panic("config: defaults do not load: " + err.Error()) // a bug in the property table
	}
	return c
}
