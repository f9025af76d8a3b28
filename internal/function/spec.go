// Package function owns the function data model shared by every other package: FunctionSpec and
// its nested scaling configuration, the execution/runtime mode enums, and their JSON shapes
// (spec-core §2.1). It holds no behaviour beyond decoding and small accessors; its decoders read
// JSON the way the reference's Jackson mapper does, and the generic ones (ReadObject and the
// Decode* value readers) also serve the other request bodies.
package function

// ExecutionMode says how invocations of a function are executed.
type ExecutionMode string

// Execution modes (spec-core §2.1). JSON values are case-sensitive.
const (
	ModeLocal      ExecutionMode = "LOCAL"
	ModePool       ExecutionMode = "POOL"
	ModeDeployment ExecutionMode = "DEPLOYMENT"
)

// RuntimeMode says how a function replica runs the user's code.
type RuntimeMode string

// Runtime modes (spec-core §2.1).
const (
	RuntimeHTTP  RuntimeMode = "HTTP"
	RuntimeSTDIO RuntimeMode = "STDIO"
	RuntimeFILE  RuntimeMode = "FILE"
)

// ScalingStrategy selects who scales a managed deployment.
type ScalingStrategy string

// Scaling strategies (spec-core §2.1).
const (
	StrategyHPA      ScalingStrategy = "HPA"
	StrategyInternal ScalingStrategy = "INTERNAL"
	StrategyNone     ScalingStrategy = "NONE"
)

// ConcurrencyControlMode selects how effective concurrency follows ready replicas.
type ConcurrencyControlMode string

// Concurrency-control modes (spec-core §2.1).
const (
	ConcurrencyFixed          ConcurrencyControlMode = "FIXED"
	ConcurrencyStaticPerPod   ConcurrencyControlMode = "STATIC_PER_POD"
	ConcurrencyAdaptivePerPod ConcurrencyControlMode = "ADAPTIVE_PER_POD"
)

// ResourceSpec is the optional cpu/memory request of a managed function.
// Nested objects are serialized with their nulls, as the reference does.
type ResourceSpec struct {
	CPU    *string `json:"cpu"`
	Memory *string `json:"memory"`
}

// ScalingMetric is one autoscaling signal.
type ScalingMetric struct {
	Type   *string `json:"type"`
	Target *string `json:"target"`
	Query  *string `json:"query"`
}

// ConcurrencyControlConfig tunes per-pod concurrency control.
type ConcurrencyControlConfig struct {
	Mode                    *ConcurrencyControlMode `json:"mode"`
	TargetInFlightPerPod    *int                    `json:"targetInFlightPerPod"`
	MinTargetInFlightPerPod *int                    `json:"minTargetInFlightPerPod"`
	MaxTargetInFlightPerPod *int                    `json:"maxTargetInFlightPerPod"`
	UpscaleCooldownMs       *int64                  `json:"upscaleCooldownMs"`
	DownscaleCooldownMs     *int64                  `json:"downscaleCooldownMs"`
	HighLoadThreshold       *float64                `json:"highLoadThreshold"`
	LowLoadThreshold        *float64                `json:"lowLoadThreshold"`
}

// ScalingConfig is the scaling block of a DEPLOYMENT function. Metrics elements may be null in
// a request (the resolver rejects them for INTERNAL), hence the pointer elements.
type ScalingConfig struct {
	Strategy           *ScalingStrategy          `json:"strategy"`
	MinReplicas        *int                      `json:"minReplicas"`
	MaxReplicas        *int                      `json:"maxReplicas"`
	Metrics            []*ScalingMetric          `json:"metrics"`
	ConcurrencyControl *ConcurrencyControlConfig `json:"concurrencyControl"`
}

// Spec is a FunctionSpec: the registration request body and, once resolved (every defaulted
// field non-nil), the stored effective spec. A resolved Spec is immutable: code that needs a
// variation copies it first.
type Spec struct {
	Name             string            `json:"name"`
	Image            string            `json:"image"`
	Command          []string          `json:"command"`
	Env              map[string]string `json:"env"`
	Resources        *ResourceSpec     `json:"resources"`
	TimeoutMs        *int              `json:"timeoutMs"`
	Concurrency      *int              `json:"concurrency"`
	QueueSize        *int              `json:"queueSize"`
	MaxRetries       *int              `json:"maxRetries"`
	EndpointURL      *string           `json:"endpointUrl"`
	ExecutionMode    *ExecutionMode    `json:"executionMode"`
	RuntimeMode      *RuntimeMode      `json:"runtimeMode"`
	RuntimeCommand   *string           `json:"runtimeCommand"`
	ScalingConfig    *ScalingConfig    `json:"scalingConfig"`
	ImagePullSecrets []string          `json:"imagePullSecrets"`
}

// Timeout returns timeoutMs of a resolved spec (0 when unset).
func (s *Spec) Timeout() int { return derefInt(s.TimeoutMs) }

// ConcurrencyLimit returns concurrency of a resolved spec (0 when unset).
func (s *Spec) ConcurrencyLimit() int { return derefInt(s.Concurrency) }

// QueueCapacity returns queueSize of a resolved spec (0 when unset).
func (s *Spec) QueueCapacity() int { return derefInt(s.QueueSize) }

// Retries returns maxRetries of a resolved spec: the maximum number of attempts (0 when unset).
func (s *Spec) Retries() int { return derefInt(s.MaxRetries) }

// Mode returns the execution mode of a resolved spec ("" when unset).
func (s *Spec) Mode() ExecutionMode {
	if s.ExecutionMode == nil {
		return ""
	}
	return *s.ExecutionMode
}

// Endpoint returns endpointUrl or "".
func (s *Spec) Endpoint() string {
	if s.EndpointURL == nil {
		return ""
	}
	return *s.EndpointURL
}

func derefInt(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}
