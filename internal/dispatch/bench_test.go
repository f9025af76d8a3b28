package dispatch

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/nanofaas/control-plane/internal/execution"
	"github.com/nanofaas/control-plane/internal/function"
)

// benchRuntime answers like the Go SDK: it reads the request and returns a small JSON output.
func benchRuntime(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"message":"ok","count":3}`)
}

var benchInput = json.RawMessage(`{"text":"the quick brown fox jumps over the lazy dog","n":42}`)

// BenchmarkPoolDispatch measures a full Pool dispatch (encode, headers, timeout context, HTTP
// exchange, decode) against a local runtime.
func BenchmarkPoolDispatch(b *testing.B) {
	srv, p := newRuntime(b, 0, benchRuntime)
	task := newTask(srv.URL+"/invoke", 30000)
	task.Request = &execution.Request{Input: benchInput}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		dr, err := p.Dispatch(ctx, task)
		if err != nil || !dr.Result.Success {
			b.Fatalf("dispatch failed: %v %+v", err, dr.Result)
		}
	}
}

// BenchmarkDirectClientPost is the floor: a bare client.Post of the same body to the same runtime.
func BenchmarkDirectClientPost(b *testing.B) {
	srv, _ := newRuntime(b, 0, benchRuntime)
	client := NewHTTPClient(ClientConfig{})
	b.Cleanup(client.CloseIdleConnections)
	body := encodeRequest(&execution.Request{Input: benchInput})
	url := srv.URL + "/invoke"
	b.ReportAllocs()
	for b.Loop() {
		resp, err := client.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		out, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil || len(out) == 0 {
			b.Fatalf("read: %v", err)
		}
	}
}

// BenchmarkLocalDispatch measures the LOCAL echo through the Router.
func BenchmarkLocalDispatch(b *testing.B) {
	r := NewRouter(Local{}, nil)
	task := newTask("", 1000)
	task.Spec.ExecutionMode = ptr(function.ModeLocal)
	task.Request = &execution.Request{Input: benchInput}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Dispatch(ctx, task); err != nil {
			b.Fatal(err)
		}
	}
}
