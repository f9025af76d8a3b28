package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newProxy starts a proxy with its own client and closes it at the end of the test.
func newProxy(t *testing.T, backends ...string) *Proxy {
	t.Helper()
	p, err := New("127.0.0.1", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	p.SetBackends(backends)
	return p
}

// do sends one request with a fresh client whose idle connections are closed afterwards.
func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func mustReq(t *testing.T, method, url, body string) *http.Request {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestURL_IsInvokeOnBindHostWithEphemeralPort(t *testing.T) {
	p := newProxy(t)
	if !strings.HasPrefix(p.URL(), "http://127.0.0.1:") || !strings.HasSuffix(p.URL(), "/invoke") {
		t.Fatalf("URL = %q", p.URL())
	}
	if strings.HasPrefix(p.URL(), "http://127.0.0.1:0/") {
		t.Fatalf("URL has port 0: %q", p.URL())
	}
}

func TestInvoke_NoBackendsReturns503Text(t *testing.T) {
	p := newProxy(t)
	for _, method := range []string{http.MethodPost, http.MethodGet, http.MethodPut} {
		resp, body := do(t, mustReq(t, method, p.URL(), "{}"))
		if resp.StatusCode != http.StatusServiceUnavailable || body != "No ready container backends" {
			t.Errorf("%s: got %d %q", method, resp.StatusCode, body)
		}
	}
}

func TestHealth_UpOnlyWithBackends(t *testing.T) {
	p := newProxy(t)
	health := strings.TrimSuffix(p.URL(), "/invoke") + "/health"
	resp, body := do(t, mustReq(t, http.MethodGet, health, ""))
	if resp.StatusCode != http.StatusServiceUnavailable || body != "DOWN" {
		t.Fatalf("no backends: got %d %q", resp.StatusCode, body)
	}
	p.SetBackends([]string{"http://127.0.0.1:1"})
	resp, body = do(t, mustReq(t, http.MethodGet, health, ""))
	if resp.StatusCode != http.StatusOK || body != "UP" {
		t.Fatalf("with backend: got %d %q", resp.StatusCode, body)
	}
}

func TestUnknownPath_Returns404(t *testing.T) {
	p := newProxy(t)
	resp, _ := do(t, mustReq(t, http.MethodGet, strings.TrimSuffix(p.URL(), "/invoke")+"/other", ""))
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("status = %d", resp.StatusCode)
	}
}

func TestInvoke_RoundRobinOverBackendsInOrder(t *testing.T) {
	var urls []string
	for i := range 3 {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = fmt.Fprintf(w, "b%d", i)
		}))
		t.Cleanup(s.Close)
		urls = append(urls, s.URL)
	}
	p := newProxy(t, urls...)
	var got []string
	for range 7 {
		_, body := do(t, mustReq(t, http.MethodPost, p.URL(), "{}"))
		got = append(got, body)
	}
	if want := "b0 b1 b2 b0 b1 b2 b0"; strings.Join(got, " ") != want {
		t.Fatalf("order = %v, want %s", got, want)
	}
	if b := p.Backends(); len(b) != 3 || b[0] != urls[0] {
		t.Fatalf("Backends() = %v", b)
	}
}

func TestInvoke_ForwardsMethodPathQueryBodyAndHeaderRules(t *testing.T) {
	type seen struct {
		method, uri, body string
		header            http.Header
		contentLength     int64
	}
	got := make(chan seen, 1)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.RequestURI, string(b), r.Header.Clone(), r.ContentLength}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Cold-Start", "true")
		w.Header().Add("X-Multi", "a")
		w.Header().Add("X-Multi", "b")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(backend.Close)
	p := newProxy(t, backend.URL)

	req := mustReq(t, http.MethodPut, p.URL()+"/sub/path?x=1&y=two", `{"input":1}`)
	req.Header.Set("X-Execution-Id", "e-1")
	req.Header.Set("Idempotency-Key", "k")
	req.Header.Add("X-Repeat", "1")
	req.Header.Add("X-Repeat", "2")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Http2-Settings", "AAMAAABkAAQAoAAAAAIAAAAA")
	req.Header.Set("User-Agent", "client/1")
	resp, body := do(t, req)

	s := <-got
	if s.method != http.MethodPut || s.uri != "/invoke/sub/path?x=1&y=two" || s.body != `{"input":1}` {
		t.Errorf("forwarded %s %s %q", s.method, s.uri, s.body)
	}
	if s.contentLength != int64(len(`{"input":1}`)) {
		t.Errorf("upstream Content-Length = %d", s.contentLength)
	}
	for k, want := range map[string]string{"X-Execution-Id": "e-1", "Idempotency-Key": "k", "User-Agent": "client/1"} {
		if s.header.Get(k) != want {
			t.Errorf("upstream %s = %q, want %q", k, s.header.Get(k), want)
		}
	}
	if v := s.header.Values("X-Repeat"); len(v) != 2 {
		t.Errorf("upstream X-Repeat = %v", v)
	}
	for _, k := range []string{"Upgrade", "Http2-Settings"} {
		if v, ok := s.header[k]; ok {
			t.Errorf("upstream got %s = %v, must be dropped", k, v)
		}
	}
	if resp.StatusCode != http.StatusCreated || body != `{"ok":true}` {
		t.Errorf("response %d %q", resp.StatusCode, body)
	}
	if resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("X-Cold-Start") != "true" {
		t.Errorf("response headers %v", resp.Header)
	}
	if v := resp.Header.Values("X-Multi"); len(v) != 2 {
		t.Errorf("X-Multi = %v", v)
	}
}

func TestInvoke_NoUserAgentIsNotReplacedByGoDefault(t *testing.T) {
	got := make(chan []string, 1)
	backend := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		got <- r.Header.Values("User-Agent")
	}))
	t.Cleanup(backend.Close)
	p := newProxy(t, backend.URL)
	req := mustReq(t, http.MethodPost, p.URL(), "{}")
	req.Header["User-Agent"] = nil // the test client must not send one either
	do(t, req)
	if ua := <-got; len(ua) != 0 {
		t.Fatalf("upstream User-Agent = %v, want none", ua)
	}
}

func TestInvoke_ResponseWithoutContentTypeGetsNoneSniffed(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header()["Content-Type"] = nil
		_, _ = io.WriteString(w, `{"a":1}`)
	}))
	t.Cleanup(backend.Close)
	p := newProxy(t, backend.URL)
	resp, body := do(t, mustReq(t, http.MethodPost, p.URL(), "{}"))
	if _, ok := resp.Header["Content-Type"]; ok || body != `{"a":1}` {
		t.Fatalf("Content-Type = %q, body %q", resp.Header.Get("Content-Type"), body)
	}
}

// rawBackend answers every connection with the given raw HTTP response bytes and closes it, like
// a minimal HTTP/1.0 runtime.
func rawBackend(t *testing.T, response string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			br := bufio.NewReader(c)
			if req, err := http.ReadRequest(br); err == nil {
				_, _ = io.Copy(io.Discard, req.Body)
				_, _ = io.WriteString(c, response)
			}
			_ = c.Close()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); <-done })
	return "http://" + ln.Addr().String()
}

func TestInvoke_EmptyUpstreamBodyHasNoBodyAndNoChunking(t *testing.T) {
	tests := []struct {
		name     string
		response string
		status   int
	}{
		{"204 no content", "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n", 204},
		{"200 content-length 0", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 200},
		{"200 http/1.0 no length", "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n", 200},
		{"200 chunked empty", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newProxy(t, rawBackend(t, tc.response))
			resp, body := do(t, mustReq(t, http.MethodPost, p.URL(), "{}"))
			if resp.StatusCode != tc.status || body != "" {
				t.Fatalf("got %d %q", resp.StatusCode, body)
			}
			if len(resp.TransferEncoding) != 0 {
				t.Fatalf("Transfer-Encoding = %v, want none", resp.TransferEncoding)
			}
		})
	}
}

func TestInvoke_UpstreamBodyOfUnknownLengthIsPassedThrough(t *testing.T) {
	big := strings.Repeat("x", 100_000)
	for _, body := range []string{`{"small":true}`, big} {
		p := newProxy(t, rawBackend(t, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n"+body))
		resp, got := do(t, mustReq(t, http.MethodPost, p.URL(), "{}"))
		if resp.StatusCode != 200 || got != body {
			t.Fatalf("got %d, %d bytes, want %d", resp.StatusCode, len(got), len(body))
		}
	}
}

func TestInvoke_UpstreamErrorReturns502WithMessage(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	_ = ln.Close()
	p := newProxy(t, dead)
	resp, body := do(t, mustReq(t, http.MethodPost, p.URL(), "{}"))
	if resp.StatusCode != http.StatusBadGateway || !strings.HasPrefix(body, "Proxy error: ") ||
		!strings.Contains(body, "refused") {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
}

func TestInvoke_UpstreamStatusIsPassedThrough(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, `{"error":"boom"}`)
	}))
	t.Cleanup(backend.Close)
	p := newProxy(t, backend.URL)
	resp, body := do(t, mustReq(t, http.MethodPost, p.URL(), "{}"))
	if resp.StatusCode != 500 || body != `{"error":"boom"}` {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
}

func TestInvoke_ReusesKeepAliveConnectionsToBackends(t *testing.T) {
	var conns atomic.Int64
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "{}")
	}))
	backend.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	backend.Start()
	t.Cleanup(backend.Close)
	p := newProxy(t, backend.URL)
	c := &http.Client{Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	for range 20 {
		resp, err := c.Post(p.URL(), "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("backend saw %d connections for 20 sequential requests, want 1", n)
	}
}

func TestSetBackends_SkipsInvalidURLs(t *testing.T) {
	p := newProxy(t, "http://127.0.0.1:1", "::not a url", "")
	if b := p.Backends(); len(b) != 1 {
		t.Fatalf("Backends() = %v", b)
	}
}

func TestClose_ReleasesPort(t *testing.T) {
	p, err := New("127.0.0.1", NewClient(), nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimSuffix(strings.TrimPrefix(p.URL(), "http://"), "/invoke")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		_ = c.Close()
		t.Fatal("proxy port still accepts connections after Close")
	}
}

// BenchmarkDirect is the baseline for BenchmarkInvoke: the same exchange without the proxy.
func BenchmarkDirect(b *testing.B) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	defer backend.Close()
	c := NewClient()
	defer c.CloseIdleConnections()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.Post(backend.URL+"/invoke", "application/json", strings.NewReader(`{"input":1}`))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
}

func BenchmarkInvoke(b *testing.B) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	defer backend.Close()
	p, err := New("127.0.0.1", nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = p.Close(context.Background()) }()
	p.SetBackends([]string{backend.URL})
	c := NewClient()
	defer c.CloseIdleConnections()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp, err := c.Post(p.URL(), "application/json", strings.NewReader(`{"input":1}`))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
}
