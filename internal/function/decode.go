package function

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file decodes FunctionSpec JSON the way the reference's Jackson mapper (Spring Boot
// defaults) does, because encoding/json differs in ways clients can observe:
//   - property names are matched case-sensitively ("NAME" is an unknown property, ignored);
//   - unknown properties are ignored; a JSON null is the same as an absent property; of
//     duplicate properties the last one wins;
//   - enum constants are case-sensitive and an unknown constant is an error;
//   - scalars are coerced: "5" → 5 and 5.7 → 5 for integer fields, 5 → "5" for string fields,
//     "" → absent for numeric fields.
// ReadObject (decodeobject.go) and the value decoders (DecodeInt, DecodeInt64, DecodeBool,
// DecodeString, DecodeStringMap) are exported for the other request bodies that the same mapper
// reads. Every value decoder reads null as its zero value (absent). Registration is not a hot
// path, so clarity wins over allocation in the Spec decoders.

// DecodeError is a request body that cannot be read as a FunctionSpec. The HTTP layer maps every
// DecodeError to 400 BAD_REQUEST "Failed to read HTTP message"; Field and Err are for logs.
type DecodeError struct {
	Field string // JSON path of the offending property, "" for the document itself
	Err   error
}

func (e *DecodeError) Error() string {
	if e.Field == "" {
		return "function spec: " + e.Err.Error()
	}
	return "function spec: " + e.Field + ": " + e.Err.Error()
}

func (e *DecodeError) Unwrap() error { return e.Err }

// DecodeSpec decodes a registration request body. A body that is JSON null or not an object is
// an error (the reference rejects it before validation).
func DecodeSpec(data []byte) (Spec, error) {
	var s Spec
	if isNull(data) {
		return s, &DecodeError{Err: errors.New("body is null")}
	}
	if err := s.UnmarshalJSON(data); err != nil {
		return Spec{}, err
	}
	return s, nil
}

// UnmarshalJSON decodes a FunctionSpec with Jackson semantics (see the file comment). JSON null
// leaves s unchanged, as encoding/json's convention requires.
func (s *Spec) UnmarshalJSON(data []byte) error {
	return decodeObject(s, data, func(out *Spec, key string, raw json.RawMessage) (err error) {
		switch key {
		case "name":
			err = decodeRequiredString(raw, &out.Name)
		case "image":
			err = decodeRequiredString(raw, &out.Image)
		case "command":
			out.Command, err = decodeStringList(raw)
		case "env":
			out.Env, err = DecodeStringMap(raw)
		case "resources":
			out.Resources, err = decodeNested[ResourceSpec](raw)
		case "timeoutMs":
			out.TimeoutMs, err = DecodeInt(raw)
		case "concurrency":
			out.Concurrency, err = DecodeInt(raw)
		case "queueSize":
			out.QueueSize, err = DecodeInt(raw)
		case "maxRetries":
			out.MaxRetries, err = DecodeInt(raw)
		case "endpointUrl":
			out.EndpointURL, err = DecodeString(raw)
		case "executionMode":
			out.ExecutionMode, err = decodeEnum[ExecutionMode](raw, "ExecutionMode", executionModes)
		case "runtimeMode":
			out.RuntimeMode, err = decodeEnum[RuntimeMode](raw, "RuntimeMode", runtimeModes)
		case "runtimeCommand":
			out.RuntimeCommand, err = DecodeString(raw)
		case "scalingConfig":
			out.ScalingConfig, err = decodeNested[ScalingConfig](raw)
		case "imagePullSecrets":
			out.ImagePullSecrets, err = decodeStringList(raw)
		}
		return err
	})
}

// UnmarshalJSON decodes a ResourceSpec with Jackson semantics.
func (r *ResourceSpec) UnmarshalJSON(data []byte) error {
	return decodeObject(r, data, func(out *ResourceSpec, key string, raw json.RawMessage) (err error) {
		switch key {
		case "cpu":
			out.CPU, err = DecodeString(raw)
		case "memory":
			out.Memory, err = DecodeString(raw)
		}
		return err
	})
}

// UnmarshalJSON decodes a ScalingMetric with Jackson semantics.
func (m *ScalingMetric) UnmarshalJSON(data []byte) error {
	return decodeObject(m, data, func(out *ScalingMetric, key string, raw json.RawMessage) (err error) {
		switch key {
		case "type":
			out.Type, err = DecodeString(raw)
		case "target":
			out.Target, err = DecodeString(raw)
		case "query":
			out.Query, err = DecodeString(raw)
		}
		return err
	})
}

// UnmarshalJSON decodes a ScalingConfig with Jackson semantics. Null metric elements are kept as
// nil (the resolver reports them for INTERNAL scaling).
func (c *ScalingConfig) UnmarshalJSON(data []byte) error {
	return decodeObject(c, data, func(out *ScalingConfig, key string, raw json.RawMessage) (err error) {
		switch key {
		case "strategy":
			out.Strategy, err = decodeEnum[ScalingStrategy](raw, "ScalingStrategy", scalingStrategies)
		case "minReplicas":
			out.MinReplicas, err = DecodeInt(raw)
		case "maxReplicas":
			out.MaxReplicas, err = DecodeInt(raw)
		case "metrics":
			out.Metrics, err = decodeMetrics(raw)
		case "concurrencyControl":
			out.ConcurrencyControl, err = decodeNested[ConcurrencyControlConfig](raw)
		}
		return err
	})
}

// UnmarshalJSON decodes a ConcurrencyControlConfig with Jackson semantics.
func (c *ConcurrencyControlConfig) UnmarshalJSON(data []byte) error {
	return decodeObject(c, data, func(out *ConcurrencyControlConfig, key string, raw json.RawMessage) (err error) {
		switch key {
		case "mode":
			out.Mode, err = decodeEnum[ConcurrencyControlMode](raw, "ConcurrencyControlMode", concurrencyModes)
		case "targetInFlightPerPod":
			out.TargetInFlightPerPod, err = DecodeInt(raw)
		case "minTargetInFlightPerPod":
			out.MinTargetInFlightPerPod, err = DecodeInt(raw)
		case "maxTargetInFlightPerPod":
			out.MaxTargetInFlightPerPod, err = DecodeInt(raw)
		case "upscaleCooldownMs":
			out.UpscaleCooldownMs, err = DecodeInt64(raw)
		case "downscaleCooldownMs":
			out.DownscaleCooldownMs, err = DecodeInt64(raw)
		case "highLoadThreshold":
			out.HighLoadThreshold, err = decodeFloat(raw)
		case "lowLoadThreshold":
			out.LowLoadThreshold, err = decodeFloat(raw)
		}
		return err
	})
}

// UnmarshalJSON accepts exactly LOCAL, POOL or DEPLOYMENT.
func (m *ExecutionMode) UnmarshalJSON(data []byte) error {
	return unmarshalEnum(data, m, "ExecutionMode", executionModes)
}

// UnmarshalJSON accepts exactly HTTP, STDIO or FILE.
func (m *RuntimeMode) UnmarshalJSON(data []byte) error {
	return unmarshalEnum(data, m, "RuntimeMode", runtimeModes)
}

// UnmarshalJSON accepts exactly HPA, INTERNAL or NONE.
func (s *ScalingStrategy) UnmarshalJSON(data []byte) error {
	return unmarshalEnum(data, s, "ScalingStrategy", scalingStrategies)
}

// UnmarshalJSON accepts exactly FIXED, STATIC_PER_POD or ADAPTIVE_PER_POD.
func (m *ConcurrencyControlMode) UnmarshalJSON(data []byte) error {
	return unmarshalEnum(data, m, "ConcurrencyControlMode", concurrencyModes)
}

var (
	executionModes    = []ExecutionMode{ModeLocal, ModePool, ModeDeployment}
	runtimeModes      = []RuntimeMode{RuntimeHTTP, RuntimeSTDIO, RuntimeFILE}
	scalingStrategies = []ScalingStrategy{StrategyHPA, StrategyInternal, StrategyNone}
	concurrencyModes  = []ConcurrencyControlMode{ConcurrencyFixed, ConcurrencyStaticPerPod, ConcurrencyAdaptivePerPod}
)

func unmarshalEnum[T ~string](data []byte, dst *T, typeName string, allowed []T) error {
	if isNull(data) {
		return nil
	}
	v, err := decodeEnum(data, typeName, allowed)
	if err != nil {
		return err
	}
	*dst = *v
	return nil
}

// decodeEnum accepts only a JSON string equal to one of the constants (null is nil). Jackson
// would also accept an ordinal index; that is deliberately not reproduced (declaration order is
// not in the spec).
func decodeEnum[T ~string](raw json.RawMessage, typeName string, allowed []T) (*T, error) {
	if isNull(raw) {
		return nil, nil
	}
	var str string
	if err := json.Unmarshal(raw, &str); err != nil {
		return nil, fmt.Errorf("%s must be a string", typeName)
	}
	for _, a := range allowed {
		if string(a) == str {
			v := a
			return &v, nil
		}
	}
	return nil, fmt.Errorf("%q is not one of the values accepted for %s", str, typeName)
}

// decodeObject decodes the JSON object data into *dst: field sets out from every property in
// document order (its decoders read null as absent, so a later duplicate, null or not, replaces
// an earlier one, as in Jackson), and its error is wrapped with the property's name. *dst
// changes only when every property decoded; JSON null leaves it unchanged.
func decodeObject[T any](dst *T, data []byte, field func(out *T, key string, raw json.RawMessage) error) error {
	if isNull(data) {
		return nil
	}
	obj, err := ReadObject(data)
	if err != nil {
		return &DecodeError{Err: err}
	}
	var out T
	for obj.Next() {
		key := string(obj.Key())
		if err := field(&out, key, obj.Value()); err != nil {
			return wrapField(key, err)
		}
	}
	*dst = out
	return nil
}

// decodeNested decodes a nested object property; null is nil.
func decodeNested[T any, P interface {
	*T
	UnmarshalJSON([]byte) error
}](raw json.RawMessage) (*T, error) {
	if isNull(raw) {
		return nil, nil
	}
	v := P(new(T))
	if err := v.UnmarshalJSON(raw); err != nil {
		return nil, err
	}
	return v, nil
}

func wrapField(key string, err error) error {
	var de *DecodeError
	if errors.As(err, &de) {
		if de.Field == "" {
			return &DecodeError{Field: key, Err: de.Err}
		}
		sep := "."
		if strings.HasPrefix(de.Field, "[") {
			sep = ""
		}
		return &DecodeError{Field: key + sep + de.Field, Err: de.Err}
	}
	return &DecodeError{Field: key, Err: err}
}

func isNull(raw []byte) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}

func firstByte(raw []byte) byte {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 {
		return 0
	}
	return t[0]
}

// DecodeString reads a String property as Jackson does: numbers and booleans are coerced to
// their JSON text; null is nil; objects and arrays are errors.
func DecodeString(raw json.RawMessage) (*string, error) {
	s, ok, err := decodeStringValue(raw)
	if err != nil || !ok {
		return nil, err
	}
	return &s, nil
}

// decodeStringValue is DecodeString without the pointer: ok is false (and s "") for null.
func decodeStringValue(raw json.RawMessage) (string, bool, error) {
	raw = bytes.TrimSpace(raw)
	switch b := firstByte(raw); {
	case b == 'n' && isNull(raw):
		return "", false, nil
	case b == '"':
		if s, ok := plainString(raw); ok {
			return s, true, nil
		}
		var s string // escapes to the heap: only on this path
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", false, err
		}
		return s, true, nil
	case b == 't' || b == 'f' || b == '-' || (b >= '0' && b <= '9'):
		if !json.Valid(raw) {
			return "", false, errors.New("invalid JSON value")
		}
		return string(raw), true, nil
	default:
		return "", false, errors.New("expected a string")
	}
}

// plainString returns the contents of a JSON string literal that needs no unescaping or UTF-8
// repair (the common case), without encoding/json's reflection.
func plainString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[len(raw)-1] != '"' {
		return "", false
	}
	body := raw[1 : len(raw)-1]
	for _, c := range body {
		if c < 0x20 || c == '"' || c == '\\' {
			return "", false
		}
	}
	if !utf8.Valid(body) {
		return "", false
	}
	return string(body), true
}

// decodeRequiredString reads a String property into a non-pointer field; null is "".
func decodeRequiredString(raw json.RawMessage, dst *string) error {
	s, _, err := decodeStringValue(raw)
	if err == nil {
		*dst = s
	}
	return err
}

// decodeStringList reads a string array; null is nil. A null element becomes "" (a []string
// cannot hold Jackson's null element); a non-array is an error (ACCEPT_SINGLE_VALUE_AS_ARRAY is
// off).
func decodeStringList(raw json.RawMessage) ([]string, error) {
	if isNull(raw) {
		return nil, nil
	}
	if firstByte(raw) != '[' {
		return nil, errors.New("expected a JSON array")
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, err
	}
	out := make([]string, len(elems))
	for i, e := range elems {
		s, err := DecodeString(e)
		if err != nil {
			return nil, &DecodeError{Field: "[" + strconv.Itoa(i) + "]", Err: err}
		}
		if s != nil {
			out[i] = *s
		}
	}
	return out, nil
}

// DecodeStringMap reads a Map<String,String> property as Jackson does: values are read by
// DecodeString, a null value becomes "" (a map[string]string cannot hold Jackson's null), a
// duplicate key keeps its last value; null is nil. Anything but an object is an error, which
// names the offending key if there is one.
func DecodeStringMap(raw json.RawMessage) (map[string]string, error) {
	if isNull(raw) {
		return nil, nil
	}
	obj, err := ReadObject(raw)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string)
	for obj.Next() {
		s, _, err := decodeStringValue(obj.Value())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", obj.Key(), err)
		}
		out[string(obj.Key())] = s
	}
	return out, nil
}

func decodeMetrics(raw json.RawMessage) ([]*ScalingMetric, error) {
	if isNull(raw) {
		return nil, nil
	}
	if firstByte(raw) != '[' {
		return nil, errors.New("expected a JSON array")
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, err
	}
	out := make([]*ScalingMetric, len(elems))
	for i, e := range elems {
		if isNull(e) {
			continue
		}
		m := new(ScalingMetric)
		if err := m.UnmarshalJSON(e); err != nil {
			return nil, wrapField("["+strconv.Itoa(i)+"]", err)
		}
		out[i] = m
	}
	return out, nil
}

// DecodeInt reads an Integer property (32-bit) with Jackson's coercions (see decodeInteger);
// null is nil.
func DecodeInt(raw json.RawMessage) (*int, error) {
	v, err := decodeInteger(raw, math.MinInt32, math.MaxInt32)
	if err != nil || v == nil {
		return nil, err
	}
	i := int(*v)
	return &i, nil
}

// DecodeInt64 reads a Long property with Jackson's coercions (see decodeInteger); null is nil.
func DecodeInt64(raw json.RawMessage) (*int64, error) {
	return decodeInteger(raw, math.MinInt64, math.MaxInt64)
}

// decodeInteger applies Jackson's integer coercions: integral numbers within range; fractional
// numbers truncated toward zero (ACCEPT_FLOAT_AS_INT); strings holding an integer literal
// (surrounding blanks trimmed); null and an empty or blank string as null. Anything else is an
// error.
func decodeInteger(raw json.RawMessage, lo, hi int64) (*int64, error) {
	raw = bytes.TrimSpace(raw)
	b := firstByte(raw)
	switch {
	case b == 'n' && isNull(raw):
		return nil, nil
	case b == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		s = strings.TrimSpace(s)
		if s == "" {
			return nil, nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < lo || n > hi {
			return nil, fmt.Errorf("%q is not a valid integer value", s)
		}
		return &n, nil
	case b == '-' || (b >= '0' && b <= '9'):
		var num json.Number
		if err := json.Unmarshal(raw, &num); err != nil {
			return nil, err
		}
		if n, err := strconv.ParseInt(num.String(), 10, 64); err == nil {
			if n < lo || n > hi {
				return nil, fmt.Errorf("numeric value (%s) out of range", num)
			}
			return &n, nil
		}
		f, err := strconv.ParseFloat(num.String(), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return nil, err
		}
		t := math.Trunc(f)
		// float64(hi) rounds up for int64, hence >= on the upper bound.
		if math.IsInf(f, 0) || t < float64(lo) || t >= float64(hi)+1 {
			return nil, fmt.Errorf("numeric value (%s) out of range", num)
		}
		n := int64(t)
		return &n, nil
	default:
		return nil, errors.New("expected an integer")
	}
}

// DecodeBool reads a Boolean property as Jackson does: true/false, an integer (0 = false, else
// true) and the strings "true"/"True"/"TRUE"/"false"/"False"/"FALSE" (surrounding blanks
// trimmed); null and an empty or blank string are nil. Anything else is an error.
func DecodeBool(raw json.RawMessage) (*bool, error) {
	raw = bytes.TrimSpace(raw)
	t, f := true, false
	switch b := firstByte(raw); {
	case b == 'n' && isNull(raw):
		return nil, nil
	case string(raw) == "true":
		return &t, nil
	case string(raw) == "false":
		return &f, nil
	case b == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		switch strings.TrimSpace(s) {
		case "":
			return nil, nil
		case "true", "True", "TRUE":
			return &t, nil
		case "false", "False", "FALSE":
			return &f, nil
		}
		return nil, fmt.Errorf("%q is not a boolean", s)
	case b == '-' || (b >= '0' && b <= '9'):
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s is not a boolean", raw)
		}
		v := n != 0
		return &v, nil
	default:
		return nil, errors.New("expected a boolean")
	}
}

// decodeFloat reads a double: a JSON number or a string holding one (null and "" are nil).
// Non-finite values are rejected because they cannot be written back as JSON.
func decodeFloat(raw json.RawMessage) (*float64, error) {
	raw = bytes.TrimSpace(raw)
	b := firstByte(raw)
	var text string
	switch {
	case b == 'n' && isNull(raw):
		return nil, nil
	case b == '"':
		if err := json.Unmarshal(raw, &text); err != nil {
			return nil, err
		}
		text = strings.TrimSpace(text)
		if text == "" {
			return nil, nil
		}
	case b == '-' || (b >= '0' && b <= '9'):
		var num json.Number
		if err := json.Unmarshal(raw, &num); err != nil {
			return nil, err
		}
		text = num.String()
	default:
		return nil, errors.New("expected a number")
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, fmt.Errorf("%q is not a valid finite number", text)
	}
	return &f, nil
}
