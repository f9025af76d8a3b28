package dispatch

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.uber.org/goleak"

	"github.com/nanofaas/control-plane/internal/execution"
	"github.com/nanofaas/control-plane/internal/function"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newRuntime starts a fake function runtime and returns it with a Pool wired to the shared client.
func newRuntime(t testing.TB, maxBytes int64, h http.HandlerFunc) (*httptest.Server, *Pool) {
	t.Helper()
	return newRuntimeWithConnState(t, maxBytes, nil, h)
}

// newRuntimeWithConnState is newRuntime with a connection-state hook on the server.
func newRuntimeWithConnState(t testing.TB, maxBytes int64, cs func(net.Conn, http.ConnState), h http.HandlerFunc) (*httptest.Server, *Pool) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = cs
	srv.Start()
	client := NewHTTPClient(ClientConfig{})
	t.Cleanup(func() {
		client.CloseIdleConnections()
		srv.Close()
	})
	return srv, NewPool(client, maxBytes)
}

// newTask returns an attempt-1 POOL task for endpoint with the given timeout.
func newTask(endpoint string, timeoutMs int) *execution.Task {
	mode := function.ModePool
	return &execution.Task{
		ExecutionID:  "exec-1",
		FunctionName: "fn",
		Spec: &function.Spec{
			Name:          "fn",
			TimeoutMs:     &timeoutMs,
			EndpointURL:   &endpoint,
			ExecutionMode: &mode,
		},
		Request: &execution.Request{Input: []byte(`{"x":1}`)},
		Attempt: 1,
	}
}

func ptr[T any](v T) *T { return &v }
