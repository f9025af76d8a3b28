package execution

import (
	"encoding/json"
	"time"
)

// Snapshot is a consistent copy of a record's observable state. Zero times mean "not set".
type Snapshot struct {
	ExecutionID    string
	FunctionName   string
	Attempt        int
	State          State
	StartedAt      time.Time
	FinishedAt     time.Time
	DispatchedAt   time.Time
	Output         json.RawMessage
	Error          *ErrorInfo
	ColdStart      bool
	InitDurationMs *int64
	Cleaned        bool
}

// Status is the ExecutionStatus JSON of GET /v1/executions/{id} (spec-core §2.5). Null fields
// are serialized as null; times are UTC ISO-8601 instants.
type Status struct {
	ExecutionID    string          `json:"executionId"`
	Status         string          `json:"status"`
	StartedAt      *time.Time      `json:"startedAt"`
	FinishedAt     *time.Time      `json:"finishedAt"`
	Output         json.RawMessage `json:"output"`
	Error          *ErrorInfo      `json:"error"`
	ColdStart      bool            `json:"coldStart"`
	InitDurationMs *int64          `json:"initDurationMs"`
}

// Status maps the snapshot to its JSON shape.
func (s Snapshot) Status() Status {
	out := s.Output
	if len(out) == 0 {
		out = nil // an empty RawMessage would not marshal; it means null
	}
	return Status{
		ExecutionID:    s.ExecutionID,
		Status:         s.State.String(),
		StartedAt:      utcOrNil(s.StartedAt),
		FinishedAt:     utcOrNil(s.FinishedAt),
		Output:         out,
		Error:          s.Error,
		ColdStart:      s.ColdStart,
		InitDurationMs: s.InitDurationMs,
	}
}

func utcOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
