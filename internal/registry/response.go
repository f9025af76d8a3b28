package registry

import "github.com/nanofaas/control-plane/internal/function"

// Response is the FunctionResponse JSON shape (spec-core §2.2) of GET/POST /v1/functions. Field
// order is the reference's; absent top-level values are omitted (omitzero: a nil pointer, slice
// or map, so an empty non-nil command still prints as []), while nested objects keep their nulls.
type Response struct {
	Name                   string                  `json:"name"`
	Image                  string                  `json:"image"`
	Command                []string                `json:"command,omitzero"`
	Env                    map[string]string       `json:"env,omitzero"`
	Resources              *function.ResourceSpec  `json:"resources,omitzero"`
	TimeoutMs              *int                    `json:"timeoutMs,omitzero"`
	Concurrency            *int                    `json:"concurrency,omitzero"`
	QueueSize              *int                    `json:"queueSize,omitzero"`
	MaxRetries             *int                    `json:"maxRetries,omitzero"`
	EndpointURL            *string                 `json:"endpointUrl,omitzero"`
	RequestedExecutionMode function.ExecutionMode  `json:"requestedExecutionMode,omitempty"`
	EffectiveExecutionMode function.ExecutionMode  `json:"effectiveExecutionMode,omitempty"`
	DeploymentBackend      string                  `json:"deploymentBackend,omitempty"`
	DegradationReason      string                  `json:"degradationReason,omitempty"`
	RuntimeMode            *function.RuntimeMode   `json:"runtimeMode,omitzero"`
	RuntimeCommand         *string                 `json:"runtimeCommand,omitzero"`
	ScalingConfig          *function.ScalingConfig `json:"scalingConfig,omitzero"`
	ImagePullSecrets       []string                `json:"imagePullSecrets,omitzero"`
}

// NewResponse builds the response for spec and meta. endpointUrl is meta's effective endpoint
// when set, else the spec's. The result shares spec's (immutable) values.
func NewResponse(spec *function.Spec, meta DeploymentMetadata) Response {
	endpoint := spec.EndpointURL
	if meta.EffectiveEndpointURL != "" {
		endpoint = &meta.EffectiveEndpointURL
	}
	return Response{
		Name:                   spec.Name,
		Image:                  spec.Image,
		Command:                spec.Command,
		Env:                    spec.Env,
		Resources:              spec.Resources,
		TimeoutMs:              spec.TimeoutMs,
		Concurrency:            spec.Concurrency,
		QueueSize:              spec.QueueSize,
		MaxRetries:             spec.MaxRetries,
		EndpointURL:            endpoint,
		RequestedExecutionMode: meta.RequestedMode,
		EffectiveExecutionMode: meta.EffectiveMode,
		DeploymentBackend:      meta.Backend,
		DegradationReason:      meta.DegradationReason,
		RuntimeMode:            spec.RuntimeMode,
		RuntimeCommand:         spec.RuntimeCommand,
		ScalingConfig:          spec.ScalingConfig,
		ImagePullSecrets:       spec.ImagePullSecrets,
	}
}

// Response returns r's FunctionResponse.
func (r *Registered) Response() Response { return NewResponse(r.Spec, r.Meta) }

// Responses maps a list (e.g. Registry.List) to its JSON array; never nil, so [] prints as [].
func Responses(list []*Registered) []Response {
	out := make([]Response, len(list))
	for i, r := range list {
		out[i] = r.Response()
	}
	return out
}
