package execution

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestDecodeRequest_JacksonSemantics(t *testing.T) {
	tests := []struct {
		name string
		body string
		want Request
	}{
		{"input and metadata", `{"input":{"a":[1,2]},"metadata":{"k":"v"}}`,
			Request{Input: json.RawMessage(`{"a":[1,2]}`), Metadata: map[string]string{"k": "v"}}},
		{"input kept as raw text", ` { "input" : 1.50 } `, Request{Input: json.RawMessage(`1.50`)}},
		{"keys are case-sensitive", `{"INPUT":{"a":1},"Metadata":{"k":{}}}`, Request{}},
		{"null input is absent", `{"input":null,"metadata":null}`, Request{}},
		{"metadata scalars coerced to strings", `{"input":1,"metadata":{"n":1,"b":false,"f":2.5,"z":null}}`,
			Request{Input: json.RawMessage(`1`), Metadata: map[string]string{"n": "1", "b": "false", "f": "2.5", "z": ""}}},
		{"unknown properties ignored", `{"extra":{"input":2},"input":"x"}`, Request{Input: json.RawMessage(`"x"`)}},
		{"last duplicate wins", `{"input":1,"input":2,"metadata":{"a":"1"},"metadata":{"b":"2"}}`,
			Request{Input: json.RawMessage(`2`), Metadata: map[string]string{"b": "2"}}},
		{"later null resets", `{"input":1,"input":null}`, Request{}},
		{"escaped key", `{"inp\u0075t":true}`, Request{Input: json.RawMessage(`true`)}},
		{"null body is an empty request", ` null `, Request{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeRequest([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Fatalf("got %+v (input %s), want %+v (input %s)", *got, got.Input, tc.want, tc.want.Input)
			}
		})
	}
}

func TestDecodeRequest_Errors(t *testing.T) {
	for _, body := range []string{``, `{`, `{"input":1} x`, `[{"input":1}]`, `"input"`, `1`,
		`{"input":1,"metadata":[1]}`, `{"input":1,"metadata":{"k":{}}}`, `{"input":1,"metadata":{"k":["v"]}}`,
		`{"input":1,"metadata":"k"}`, `{"input":1,"metadata":""}`, `{"input":1,"metadata":true}`} {
		t.Run(body, func(t *testing.T) {
			if req, err := DecodeRequest([]byte(body)); err == nil {
				t.Fatalf("decoded %+v, want an error", req)
			}
		})
	}
}

// Invoke is the hot path: a request without metadata costs one allocation, the Request itself.
func TestDecodeRequest_AllocatesOnlyTheRequest(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts vary under the race detector")
	}
	body := []byte(`{"input":{"message":"hello","n":42,"nested":{"list":[1,2,3]}}}`)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := DecodeRequest(body); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 1 {
		t.Fatalf("allocs = %v, want 1", allocs)
	}
}

func TestDecodeResult_JacksonSemanticsAndD4(t *testing.T) {
	tests := []struct {
		name string
		body string
		want Result
	}{
		{"explicit success", `{"success":true,"output":[1]}`, Result{Success: true, Output: json.RawMessage(`[1]`)}},
		{"explicit failure", `{"success":false,"error":{"code":"E","message":"m"}}`,
			Result{Error: &ErrorInfo{Code: "E", Message: "m"}}},
		{"D4: absent success without error", `{"output":"ok"}`, Result{Success: true, Output: json.RawMessage(`"ok"`)}},
		{"D4: absent success with error", `{"error":{"code":"E","message":"m"}}`,
			Result{Error: &ErrorInfo{Code: "E", Message: "m"}}},
		{"D4: null success is absent", `{"success":null,"error":null}`, Result{Success: true}},
		{"keys are case-sensitive", `{"Success":false,"Output":7,"ERROR":{"code":"E"}}`, Result{Success: true}},
		{"success string coerced", `{"success":"true"}`, Result{Success: true}},
		{"success string coerced false", `{"success":" FALSE ","output":1}`, Result{Output: json.RawMessage(`1`)}},
		{"success integer coerced", `{"success":0}`, Result{}},
		{"blank success string is absent", `{"success":"","error":{"code":"E"}}`, Result{Error: &ErrorInfo{Code: "E"}}},
		{"null output is nil", `{"success":true,"output":null}`, Result{Success: true}},
		{"error fields coerced and case-sensitive", `{"error":{"code":500,"Message":"x","message":null}}`,
			Result{Error: &ErrorInfo{Code: "500"}}},
		{"last duplicate wins", `{"success":false,"success":true,"output":1,"output":2}`,
			Result{Success: true, Output: json.RawMessage(`2`)}},
		{"later null error resets", `{"error":{"code":"E"},"error":null}`, Result{Success: true}},
		{"unknown properties ignored", `{"success":true,"extra":{"success":false}}`, Result{Success: true}},
		{"null body", `null`, Result{Success: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeResult([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v (output %s, error %+v), want %+v (output %s, error %+v)",
					got, got.Output, got.Error, tc.want, tc.want.Output, tc.want.Error)
			}
		})
	}
}

func TestDecodeResult_Errors(t *testing.T) {
	for _, body := range []string{``, `{"success":`, `[]`, `"x"`, `{"success":{}}`, `{"success":[true]}`,
		`{"success":"yes"}`, `{"success":1.5}`, `{"error":"boom"}`, `{"error":[]}`, `{"error":{"code":{}}}`,
		`{"error":{"message":["m"]}}`} {
		t.Run(body, func(t *testing.T) {
			if res, err := DecodeResult([]byte(body)); err == nil {
				t.Fatalf("decoded %+v, want an error", res)
			}
		})
	}
}

// legacyRequest is how the invoke body was decoded before: encoding/json into the struct.
type legacyRequest struct {
	Input    json.RawMessage   `json:"input"`
	Metadata map[string]string `json:"metadata"`
}

func BenchmarkDecodeRequest(b *testing.B) {
	bodies := map[string][]byte{
		"small":    []byte(`{"input":{"message":"hello","n":42}}`),
		"metadata": []byte(`{"input":{"message":"hello","n":42},"metadata":{"tenant":"t1","trace":"abc"}}`),
	}
	for _, name := range []string{"small", "metadata"} {
		body := bodies[name]
		b.Run(name+"/jackson", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecodeRequest(body); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/encoding-json", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var r legacyRequest
				if err := json.Unmarshal(body, &r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
