package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nanofaas/control-plane/fnruntime"
)

// rows is a small table in the load profile's shape.
const rows = `[
	{"dept":"eng","region":"eu","salary":100,"age":30},
	{"dept":"ops","region":"us","salary":50,"age":41},
	{"dept":"eng","region":"us","salary":300,"age":25},
	{"dept":"hr","region":"eu","salary":70},
	{"dept":"eng","region":"eu","salary":200,"age":35}
]`

func TestTransform(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  string // JSON of the output, exact (member order included)
	}{
		{
			name:  "count is the default operation; groups keep first-seen order",
			input: `{"data":` + rows + `,"groupBy":"dept"}`,
			want:  `{"groupBy":"dept","operation":"count","groups":{"eng":3,"ops":1,"hr":1}}`,
		},
		{
			name:  "sum",
			input: `{"data":` + rows + `,"groupBy":"region","operation":"sum","valueField":"salary"}`,
			want:  `{"groupBy":"region","operation":"sum","groups":{"eu":370,"us":350}}`,
		},
		{
			name:  "avg skips rows without the value",
			input: `{"data":` + rows + `,"groupBy":"region","operation":"avg","valueField":"age"}`,
			want:  `{"groupBy":"region","operation":"avg","groups":{"eu":32.5,"us":33}}`,
		},
		{
			name:  "min",
			input: `{"data":` + rows + `,"groupBy":"dept","operation":"min","valueField":"salary"}`,
			want:  `{"groupBy":"dept","operation":"min","groups":{"eng":100,"ops":50,"hr":70}}`,
		},
		{
			name:  "max, operation matched case-insensitively and echoed as given",
			input: `{"data":` + rows + `,"groupBy":"dept","operation":"MAX","valueField":"salary"}`,
			want:  `{"groupBy":"dept","operation":"MAX","groups":{"eng":300,"ops":50,"hr":70}}`,
		},
		{
			name:  "group without numeric values aggregates to 0",
			input: `{"data":` + rows + `,"groupBy":"dept","operation":"max","valueField":"age"}`,
			want:  `{"groupBy":"dept","operation":"max","groups":{"eng":35,"ops":41,"hr":0}}`,
		},
		{
			name:  "missing and null keys group as null; numbers and booleans by their JSON text",
			input: `{"data":[{"k":1},{"k":2.5},{},{"k":null},{"k":true},{"k":1},"not a row"],"groupBy":"k"}`,
			want:  `{"groupBy":"k","operation":"count","groups":{"1":2,"2.5":1,"null":2,"true":1}}`,
		},
		{
			name:  "non-numeric values are ignored",
			input: `{"data":[{"g":"a","v":"10"},{"g":"a","v":4}],"groupBy":"g","operation":"sum","valueField":"v"}`,
			want:  `{"groupBy":"g","operation":"sum","groups":{"a":4}}`,
		},
		{
			name:  "unknown operation is reported per group",
			input: `{"data":[{"g":"a"}],"groupBy":"g","operation":"median","valueField":"v"}`,
			want:  `{"groupBy":"g","operation":"median","groups":{"a":"unknown operation: median"}}`,
		},
		{
			name:  "empty data",
			input: `{"data":[],"groupBy":"g"}`,
			want:  `{"groupBy":"g","operation":"count","groups":{}}`,
		},
		{"input not an object", `[1]`, `{"error":"Input must be a JSON object"}`},
		{"null input", `null`, `{"error":"Input must be a JSON object"}`},
		{"data missing", `{"groupBy":"g"}`, `{"error":"Fields 'data' (array) and 'groupBy' (string) are required"}`},
		{"groupBy not a string", `{"data":[],"groupBy":1}`, `{"error":"Fields 'data' (array) and 'groupBy' (string) are required"}`},
		{"valueField required", `{"data":[],"groupBy":"g","operation":"sum"}`, `{"error":"Field 'valueField' is required for operation: sum"}`},
		{"operation not a string", `{"data":[],"groupBy":"g","operation":3}`, `{"error":"Field 'operation' must be a string"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := json.Marshal(Transform(json.RawMessage(tt.input)))
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tt.want {
				t.Errorf("got  %s\nwant %s", out, tt.want)
			}
		})
	}
}

func TestHandle_ServedByRuntime(t *testing.T) {
	rt := fnruntime.New(handle, fnruntime.Config{}, fnruntime.WithLogger(slog.New(slog.DiscardHandler)))
	defer rt.Close(context.Background())
	body := `{"input":{"data":` + rows + `,"groupBy":"dept"}}`
	req := httptest.NewRequest(http.MethodPost, "/invoke", strings.NewReader(body))
	req.Header.Set("X-Execution-Id", "e-1")
	rec := httptest.NewRecorder()
	rt.ServeHTTP(rec, req)
	const want = `{"groupBy":"dept","operation":"count","groups":{"eng":3,"ops":1,"hr":1}}`
	if rec.Code != http.StatusOK || rec.Body.String() != want {
		t.Errorf("got %d %s, want 200 %s", rec.Code, rec.Body, want)
	}
}
