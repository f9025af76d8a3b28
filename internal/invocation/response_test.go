package invocation

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/nanofaas/control-plane/internal/execution"
)

func TestResponseAppendJSON_MatchesTheInvocationResponseShape(t *testing.T) {
	cases := []struct {
		name string
		resp Response
		want string
	}{
		{"success", Response{ExecutionID: "id-1", Status: StatusSuccess, Output: json.RawMessage(`{"a":[1,2]}`)},
			`{"executionId":"id-1","status":"success","output":{"a":[1,2]},"error":null}`},
		{"null output", Response{ExecutionID: "id-2", Status: StatusSuccess},
			`{"executionId":"id-2","status":"success","output":null,"error":null}`},
		{"timeout", Response{ExecutionID: "id-3", Status: StatusTimeout},
			`{"executionId":"id-3","status":"timeout","output":null,"error":null}`},
		{"queued", Response{ExecutionID: "id-4", Status: StatusQueued},
			`{"executionId":"id-4","status":"queued","output":null,"error":null}`},
		{"error with characters to escape", Response{ExecutionID: "id-5", Status: StatusError,
			Error: &execution.ErrorInfo{Code: "POOL_ERROR", Message: "bad \"body\" <html> \\ é\n\x01"}},
			`{"executionId":"id-5","status":"error","output":null,"error":{"code":"POOL_ERROR","message":"bad \"body\" <html> \\ é\n\u0001"}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.resp.AppendJSON(nil)
			if string(got) != tc.want {
				t.Fatalf("AppendJSON = %s\nwant          %s", got, tc.want)
			}
			// The same document encoding/json would produce, field for field.
			var fast, std map[string]any
			stdBytes, _ := json.Marshal(tc.resp)
			if err := json.Unmarshal(got, &fast); err != nil {
				t.Fatalf("not JSON: %v", err)
			}
			if err := json.Unmarshal(stdBytes, &std); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(fast, std) {
				t.Errorf("AppendJSON %v != encoding/json %v", fast, std)
			}
		})
	}
}

func BenchmarkResponseEncoding(b *testing.B) {
	resp := Response{ExecutionID: "2f1c5a8e-8a8e-4e41-9b1a-0a1b2c3d4e5f", Status: StatusSuccess,
		Output: json.RawMessage(`{"wordCount":11,"uniqueWords":9,"topWords":[{"word":"the","count":3}],"averageWordLength":3.73}`)}
	b.Run("AppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 256)
		for b.Loop() {
			buf = resp.AppendJSON(buf[:0])
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(resp)
		}
	})
}
