package fnruntime_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nanofaas/control-plane/fnruntime"
)

// listen opens a loopback listener on an ephemeral port.
func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// post invokes the runtime over the network with a fresh client (no pooled connections left).
func post(t *testing.T, addr, id, body string) (*http.Response, string) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/invoke", strings.NewReader(body))
	req.Header.Set("X-Execution-Id", id)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST /invoke: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestServe_StopsOnContextCancel(t *testing.T) {
	ln := listen(t)
	rt := fnruntime.New(echo, fnruntime.Config{}, quiet())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.Serve(ctx, ln) }()

	resp, body := post(t, ln.Addr().String(), "e", `{"input":{"x":1}}`)
	if resp.StatusCode != 200 || body != `{"x":1}` || resp.Header.Get("X-Cold-Start") != "true" {
		t.Fatalf("got %d %q cold=%q", resp.StatusCode, body, resp.Header.Get("X-Cold-Start"))
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve = %v, want nil after a clean shutdown", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("listener still accepting after Serve returned")
	}
}

func TestServe_ShutdownWaitsForInFlightInvocationAndItsCallback(t *testing.T) {
	rc := newReceiver(t, nil)
	ln := listen(t)
	started, release := make(chan struct{}), make(chan struct{})
	rt := fnruntime.New(func(context.Context, fnruntime.Request) (any, error) {
		close(started)
		<-release
		return "done", nil
	}, fnruntime.Config{CallbackURL: rc.base()}, quiet())
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- rt.Serve(ctx, ln) }()

	type answer struct {
		status int
		body   string
	}
	answered := make(chan answer, 1)
	go func() {
		resp, body := post(t, ln.Addr().String(), "in-flight", `{"input":1}`)
		answered <- answer{resp.StatusCode, body}
	}()
	<-started
	cancel()
	select {
	case err := <-served:
		t.Fatalf("Serve returned (%v) while an invocation was in flight", err)
	case <-time.After(30 * time.Millisecond):
	}
	close(release)

	if a := <-answered; a.status != 200 || a.body != `"done"` {
		t.Errorf("in-flight invocation got %d %q", a.status, a.body)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve = %v", err)
	}
	if n := len(rc.snapshot()); n != 1 {
		t.Errorf("callbacks delivered by the time Serve returned = %d, want 1", n)
	}
}

func TestListenAndServe_FailsOnBusyPort(t *testing.T) {
	ln := listen(t)
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	rt := fnruntime.New(echo, fnruntime.Config{Port: port}, quiet())
	if err := rt.ListenAndServe(context.Background()); err == nil || !strings.Contains(err.Error(), "listen") {
		t.Errorf("ListenAndServe on a busy port = %v, want a listen error", err)
	}
}

func TestServe_RejectsInvalidEnvironment(t *testing.T) {
	t.Setenv("TIMEOUT_MS", "soon")
	err := fnruntime.Serve(context.Background(), echo, quiet())
	if err == nil || !strings.Contains(err.Error(), "TIMEOUT_MS") {
		t.Errorf("Serve = %v, want an error naming TIMEOUT_MS", err)
	}
}

// readyHandler is a slog handler that reports the runtime's "listening" record.
type readyHandler struct {
	slog.Handler
	ready chan<- string
}

func (readyHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h readyHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "function runtime listening" {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "addr" {
				h.ready <- a.Value.String()
			}
			return true
		})
	}
	return nil
}

func TestServe_GracefulShutdownOnSIGTERM(t *testing.T) {
	// Our own registration keeps a stray SIGTERM from killing the test binary.
	guard := make(chan os.Signal, 1)
	signal.Notify(guard, syscall.SIGTERM)
	defer signal.Stop(guard)

	t.Setenv("PORT", "0")
	t.Setenv("TIMEOUT_MS", "1000")
	ready := make(chan string, 1)
	logger := slog.New(readyHandler{Handler: slog.DiscardHandler, ready: ready})
	done := make(chan error, 1)
	go func() { done <- fnruntime.Serve(context.Background(), echo, fnruntime.WithLogger(logger)) }()

	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("Serve returned early: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("runtime never listened")
	}
	_, port, _ := net.SplitHostPort(addr)
	if resp, _ := post(t, "127.0.0.1:"+port, "e", `{"input":1}`); resp.StatusCode != 200 {
		t.Fatalf("status = %d", resp.StatusCode)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve ignored SIGTERM")
	}
}

// nonLoopbackIPv4 returns an address of this machine outside loopback, or nil when it has none.
func nonLoopbackIPv4(t *testing.T) net.IP {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			return n.IP
		}
	}
	return nil
}

func TestListenAndServe_ListensOnConfigHost(t *testing.T) {
	other := nonLoopbackIPv4(t)
	tests := []struct {
		name       string
		host       string
		wantIP     func(net.IP) bool
		fromOthers bool // reachable on a non-loopback address of this machine
	}{
		{"loopback only", "127.0.0.1", func(ip net.IP) bool { return ip.Equal(net.IPv4(127, 0, 0, 1)) }, false},
		{"empty means all interfaces", "", net.IP.IsUnspecified, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ready := make(chan string, 1)
			logger := slog.New(readyHandler{Handler: slog.DiscardHandler, ready: ready})
			rt := fnruntime.New(echo, fnruntime.Config{Host: tc.host, Port: "0"}, fnruntime.WithLogger(logger))
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- rt.ListenAndServe(ctx) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("ListenAndServe = %v", err)
				}
			}()
			var addr string
			select {
			case addr = <-ready:
			case err := <-done:
				t.Fatalf("ListenAndServe returned early: %v", err)
			case <-time.After(5 * time.Second):
				t.Fatal("runtime never listened")
			}
			host, port, err := net.SplitHostPort(addr)
			if err != nil || !tc.wantIP(net.ParseIP(host)) {
				t.Fatalf("listening on %q (%v), want host %q", addr, err, tc.host)
			}
			if resp, _ := post(t, "127.0.0.1:"+port, "e", `{"input":1}`); resp.StatusCode != 200 {
				t.Fatalf("loopback invoke: %d", resp.StatusCode)
			}
			if other == nil {
				return // no other interface to try
			}
			c, err := net.DialTimeout("tcp", net.JoinHostPort(other.String(), port), time.Second)
			if err == nil {
				_ = c.Close()
			}
			if reached := err == nil; reached != tc.fromOthers {
				t.Fatalf("dial %s:%s: %v, want reachable = %v", other, port, err, tc.fromOthers)
			}
		})
	}
}

func TestServe_ListensOnHOSTFromEnvironment(t *testing.T) {
	t.Setenv("PORT", "0")
	t.Setenv("HOST", "127.0.0.1")
	ready := make(chan string, 1)
	logger := slog.New(readyHandler{Handler: slog.DiscardHandler, ready: ready})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fnruntime.Serve(ctx, echo, fnruntime.WithLogger(logger)) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve = %v", err)
		}
	}()
	select {
	case addr := <-ready:
		if host, _, _ := net.SplitHostPort(addr); host != "127.0.0.1" {
			t.Fatalf("listening on %q, want 127.0.0.1", addr)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("runtime never listened")
	}
}
