package main

import (
	"bytes"
	"encoding/json"
	"strings"
)

// Semantics follow the reference's json-transform (functions/java/json-transform). Choices
// where the reference would fail with an exception (HTTP 500) or is loose:
//   - rows that are not objects are skipped, and so are values of valueField that are not
//     numbers (the reference throws on both);
//   - a row whose groupBy field is missing or null lands in group "null";
//   - a group key is the field's string value, a number's JSON text ("1", "2.5"), "true"/"false",
//     or the compact JSON of an object or array;
//   - the operation name is matched case-insensitively everywhere (the reference demanded
//     valueField for "COUNT"); the output echoes it as given;
//   - sum/avg/min/max of a group without numeric values is 0, as in the reference.

// Domain errors, returned inside a successful output as {"error": msg}.
const (
	errNotObject     = "Input must be a JSON object"
	errRequired      = "Fields 'data' (array) and 'groupBy' (string) are required"
	errValueField    = "Field 'valueField' is required for operation: "
	errOperationType = "Field 'operation' must be a string"
	unknownOperation = "unknown operation: "
)

// Result is the function's output.
type Result struct {
	GroupBy   string `json:"groupBy"`
	Operation string `json:"operation"`
	Groups    Groups `json:"groups"`
}

// Groups is a JSON object whose members keep their first-seen order.
type Groups []Group

// Group is one member of Groups: a count (int), an aggregate (float64) or, for an unknown
// operation, a message (string).
type Group struct {
	Key   string
	Value any
}

// MarshalJSON renders the groups as one object, in order.
func (g Groups) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range g {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(m.Key)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(m.Value)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// Failure is a domain error output.
type Failure struct {
	Error string `json:"error"`
}

// Transform groups and aggregates input; the result is a Result or a Failure.
func Transform(input json.RawMessage) any {
	dec := json.NewDecoder(bytes.NewReader(input))
	dec.UseNumber() // keeps numbers' JSON text for group keys
	var in map[string]any
	if err := dec.Decode(&in); err != nil || in == nil {
		return Failure{Error: errNotObject}
	}
	data, dataOK := in["data"].([]any)
	groupBy, groupByOK := in["groupBy"].(string)
	if !dataOK || !groupByOK {
		return Failure{Error: errRequired}
	}
	operation := "count"
	switch op := in["operation"].(type) {
	case nil:
	case string:
		operation = op
	default:
		return Failure{Error: errOperationType}
	}
	op := strings.ToLower(operation)
	valueField, _ := in["valueField"].(string)
	if op != "count" && valueField == "" {
		return Failure{Error: errValueField + operation}
	}

	index := map[string]int{} // key → position in groups
	var keys []string
	var rows [][]map[string]any
	for _, raw := range data {
		row, ok := raw.(map[string]any)
		if !ok {
			continue
		}
		k := groupKey(row[groupBy])
		i, seen := index[k]
		if !seen {
			i = len(keys)
			index[k] = i
			keys = append(keys, k)
			rows = append(rows, nil)
		}
		rows[i] = append(rows[i], row)
	}

	groups := make(Groups, len(keys))
	for i, k := range keys {
		groups[i] = Group{Key: k, Value: aggregate(op, operation, rows[i], valueField)}
	}
	return Result{GroupBy: groupBy, Operation: operation, Groups: groups}
}

func groupKey(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		if x {
			return "true"
		}
		return "false"
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

func aggregate(op, operation string, rows []map[string]any, field string) any {
	if op == "count" {
		return len(rows)
	}
	var values []float64
	for _, row := range rows {
		if n, ok := row[field].(json.Number); ok {
			if f, err := n.Float64(); err == nil {
				values = append(values, f)
			}
		}
	}
	switch op {
	case "sum", "avg", "min", "max":
	default:
		return unknownOperation + operation
	}
	if len(values) == 0 {
		return 0.0
	}
	acc := values[0]
	for _, v := range values[1:] {
		switch op {
		case "sum", "avg":
			acc += v
		case "min":
			acc = min(acc, v)
		case "max":
			acc = max(acc, v)
		}
	}
	if op == "avg" {
		acc /= float64(len(values))
	}
	return acc
}
