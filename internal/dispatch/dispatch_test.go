package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/nanofaas/control-plane/internal/execution"
	"github.com/nanofaas/control-plane/internal/function"
)

// recorder is a Dispatcher that records that it was called.
type recorder struct {
	name  string
	calls int
}

func (r *recorder) Dispatch(context.Context, *execution.Task) (execution.DispatchResult, error) {
	r.calls++
	return execution.Warm(execution.SuccessResult(json.RawMessage(`"` + r.name + `"`))), nil
}

func TestRouter_RoutesLocalToLocalAndEverythingElseToPool(t *testing.T) {
	tests := []struct {
		name string
		mode *function.ExecutionMode
		want string
	}{
		{name: "LOCAL", mode: ptr(function.ModeLocal), want: "local"},
		{name: "POOL", mode: ptr(function.ModePool), want: "pool"},
		{name: "DEPLOYMENT", mode: ptr(function.ModeDeployment), want: "pool"},
		{name: "unset mode", mode: nil, want: "pool"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			local, pool := &recorder{name: "local"}, &recorder{name: "pool"}
			task := newTask("http://unused", 1000)
			task.Spec.ExecutionMode = tc.mode
			dr, err := NewRouter(local, pool).Dispatch(context.Background(), task)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(dr.Result.Output); got != `"`+tc.want+`"` {
				t.Fatalf("routed to %s, want %s", got, tc.want)
			}
			if local.calls+pool.calls != 1 {
				t.Fatalf("dispatchers called %d times, want 1", local.calls+pool.calls)
			}
		})
	}
}

func TestRouter_TaskWithoutSpecIsAnError(t *testing.T) {
	r := NewRouter(&recorder{}, &recorder{})
	for _, task := range []*execution.Task{nil, {ExecutionID: "x"}} {
		if _, err := r.Dispatch(context.Background(), task); err == nil {
			t.Errorf("task %+v: want an error", task)
		}
	}
}

func TestLocal_EchoesInputAsWarmSuccess(t *testing.T) {
	tests := []struct {
		name    string
		request *execution.Request
		want    json.RawMessage
	}{
		{name: "object input", request: &execution.Request{Input: json.RawMessage(`{"a":1}`)}, want: json.RawMessage(`{"a":1}`)},
		{name: "null input", request: &execution.Request{}, want: nil},
		{name: "no request", request: nil, want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			task := newTask("", 1000)
			task.Request = tc.request
			dr, err := Local{}.Dispatch(context.Background(), task)
			if err != nil {
				t.Fatal(err)
			}
			if !dr.Result.Success || dr.Result.Error != nil || string(dr.Result.Output) != string(tc.want) {
				t.Fatalf("result = %+v, want success(%s)", dr.Result, tc.want)
			}
			if dr.ColdStart || dr.InitDurationMs != nil {
				t.Fatal("local dispatch must be warm")
			}
		})
	}
}

func TestAppendJSONString_RoundTripsThroughEncodingJSON(t *testing.T) {
	tests := []struct {
		in   string
		want string // decoded value; differs from in only for invalid UTF-8
	}{
		{in: "", want: ""},
		{in: "plain ascii", want: "plain ascii"},
		{in: "quote\" backslash\\ slash/", want: "quote\" backslash\\ slash/"},
		{in: "ctl\n\r\t\b\f\x00\x1f", want: "ctl\n\r\t\b\f\x00\x1f"},
		{in: "unicode é 日本 🎉 <>&", want: "unicode é 日本 🎉 <>&"},
		{in: "bad \xff\xfe utf8 \xe6\x97", want: "bad \ufffd\ufffd utf8 \ufffd\ufffd"},
	}
	for _, tc := range tests {
		for _, enc := range [][]byte{execution.AppendJSONString(nil, tc.in), execution.AppendJSONString(nil, []byte(tc.in))} {
			var got string
			if err := json.Unmarshal(enc, &got); err != nil {
				t.Fatalf("%q encoded to invalid JSON %s: %v", tc.in, enc, err)
			}
			if got != tc.want {
				t.Errorf("%q round-tripped to %q, want %q", tc.in, got, tc.want)
			}
		}
	}
}

func TestEncodeRequest_IsOneAllocationAndValidJSON(t *testing.T) {
	req := &execution.Request{
		Input:    json.RawMessage(`{"payload":[1,2,3],"s":"x"}`),
		Metadata: map[string]string{"k1": "v1 é 日本", "k\"2": "v\n2"},
	}
	body := encodeRequest(req)
	var decoded struct {
		Input    json.RawMessage   `json:"input"`
		Metadata map[string]string `json:"metadata"`
	}
	if err := json.Unmarshal(body, &decoded); err != nil {
		t.Fatalf("invalid body %s: %v", body, err)
	}
	if string(decoded.Input) != string(req.Input) || decoded.Metadata["k\"2"] != "v\n2" || len(decoded.Metadata) != 2 {
		t.Fatalf("decoded = %+v from %s", decoded, body)
	}
	if allocs := testing.AllocsPerRun(100, func() { _ = encodeRequest(req) }); allocs != 1 {
		t.Fatalf("encodeRequest allocs = %v, want 1", allocs)
	}
}

func TestNewHTTPClient_IsTunedForInternalKeepAliveTraffic(t *testing.T) {
	c := NewHTTPClient(ClientConfig{})
	tr, ok := c.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("transport is %T", c.Transport)
	}
	if tr.Proxy != nil || !tr.DisableCompression || tr.DisableKeepAlives {
		t.Errorf("proxy=%v compression-off=%v keepalive-off=%v", tr.Proxy != nil, tr.DisableCompression, tr.DisableKeepAlives)
	}
	if tr.MaxIdleConns < 1024 || tr.MaxIdleConnsPerHost < 256 || tr.IdleConnTimeout != 90*time.Second {
		t.Errorf("idle pool = %d/%d/%v", tr.MaxIdleConns, tr.MaxIdleConnsPerHost, tr.IdleConnTimeout)
	}
	if tr.Protocols == nil || !tr.Protocols.HTTP1() || tr.Protocols.HTTP2() {
		t.Errorf("protocols = %v, want HTTP/1.1 only", tr.Protocols)
	}
	if err := c.CheckRedirect(nil, nil); !errors.Is(err, http.ErrUseLastResponse) {
		t.Errorf("CheckRedirect = %v, want ErrUseLastResponse", err)
	}
}

func TestNewPool_NonPositiveLimitFallsBackTo16MiB(t *testing.T) {
	if p := NewPool(http.DefaultClient, 0); p.maxBytes != 16<<20 {
		t.Fatalf("maxBytes = %d", p.maxBytes)
	}
	if p := NewPool(http.DefaultClient, -5); p.maxBytes != DefaultMaxResponseBytes {
		t.Fatalf("maxBytes = %d", p.maxBytes)
	}
}
