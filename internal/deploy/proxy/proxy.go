// Package proxy owns the per-function round-robin HTTP proxy that gives a locally run managed
// function (backends `process` and `container-local`) one stable endpointUrl in front of its
// replicas (spec-modules §7 "Round-robin proxy", process-backend.md "Proxy"). It knows nothing
// about how replicas are started; its owner tells it which base URLs are ready to take traffic.
// Its plain-text answers (WriteHealth, WriteNoBackends, WriteText) are exported so that the
// process backend's watchdog, which stands where a proxy would, answers callers the same way.
package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Fixed timeouts of the reference proxy.
const (
	// ForwardTimeout bounds one forwarded exchange, response body included.
	ForwardTimeout = 30 * time.Second
	// ConnectTimeout bounds TCP connection establishment to a backend.
	ConnectTimeout = 2 * time.Second
)

// Exact bodies of the reference proxy.
const (
	noBackendsBody = "No ready container backends"
	proxyErrorPfx  = "Proxy error: "
)

// NewClient returns an HTTP client tuned for forwarding to local replicas: keep-alive with a
// large per-host idle pool (all traffic goes to a few loopback ports), 2 s connect timeout,
// HTTP/1.1 only, no environment proxy, no transparent compression (bodies pass byte for byte)
// and no redirect following. Share one between proxies to share its connection pool.
func NewClient() *http.Client {
	dialer := &net.Dialer{Timeout: ConnectTimeout, KeepAlive: 30 * time.Second}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                  nil,
			DialContext:            dialer.DialContext,
			Protocols:              &protocols,
			MaxIdleConns:           1024,
			MaxIdleConnsPerHost:    256,
			IdleConnTimeout:        90 * time.Second,
			DisableCompression:     true,
			MaxResponseHeaderBytes: 1 << 20,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Proxy forwards /invoke round-robin to a changing set of backends. Safe for concurrent use.
type Proxy struct {
	client    *http.Client
	ownClient bool
	logger    *slog.Logger
	listener  net.Listener
	server    *http.Server
	url       string
	served    chan struct{} // closed when Serve returns

	// backends is replaced wholesale by SetBackends and read lock-free on every request: an
	// atomic pointer is simpler and cheaper than a RWMutex on this hot path.
	backends atomic.Pointer[[]*url.URL]
	counter  atomic.Uint64
}

// New starts a proxy listening on <bindHost>:<ephemeral port>. client may be nil (the proxy then
// owns a NewClient and closes its idle connections on Close); logger may be nil.
func New(bindHost string, client *http.Client, logger *slog.Logger) (*Proxy, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p := &Proxy{client: client, logger: logger, served: make(chan struct{})}
	if p.client == nil {
		p.client, p.ownClient = NewClient(), true
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(bindHost, "0"))
	if err != nil {
		return nil, err
	}
	p.listener = ln
	port := ln.Addr().(*net.TCPAddr).Port
	p.url = "http://" + net.JoinHostPort(bindHost, strconv.Itoa(port)) + "/invoke"
	empty := []*url.URL{}
	p.backends.Store(&empty)
	p.server = &http.Server{
		Handler:           p,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       90 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	go func() {
		defer close(p.served)
		if err := p.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("proxy stopped serving", "url", p.url, "error", err)
		}
	}()
	return p, nil
}

// URL is the endpointUrl of the function: http://<bindHost>:<port>/invoke.
func (p *Proxy) URL() string { return p.url }

// SetBackends replaces the backends (base URLs such as http://127.0.0.1:4711) that receive
// traffic, in round-robin order. Unparseable entries are skipped and logged.
func (p *Proxy) SetBackends(baseURLs []string) {
	list := make([]*url.URL, 0, len(baseURLs))
	for _, b := range baseURLs {
		u, err := url.Parse(b)
		if err != nil || u.Host == "" {
			p.logger.Error("proxy: ignoring invalid backend", "backend", b, "error", err)
			continue
		}
		list = append(list, u)
	}
	p.backends.Store(&list)
}

// Backends returns the current backend base URLs in round-robin order.
func (p *Proxy) Backends() []string {
	list := *p.backends.Load()
	out := make([]string, len(list))
	for i, u := range list {
		out[i] = u.String()
	}
	return out
}

// Close stops accepting, waits for in-flight requests until ctx is done (then drops them) and
// releases the port.
func (p *Proxy) Close(ctx context.Context) error {
	err := p.server.Shutdown(ctx)
	if err != nil {
		_ = p.server.Close()
	}
	<-p.served
	if p.ownClient {
		p.client.CloseIdleConnections()
	}
	return err
}

// ServeHTTP routes /invoke… (any method) to a backend and /health… to the health answer, both
// prefix matches like the reference's JDK HttpServer contexts.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	switch {
	case strings.HasPrefix(path, "/invoke"):
		p.forward(w, r)
	case strings.HasPrefix(path, "/health"):
		WriteHealth(w, len(*p.backends.Load()) > 0)
	default:
		WriteText(w, http.StatusNotFound, "Not Found")
	}
}

func (p *Proxy) forward(w http.ResponseWriter, r *http.Request) {
	list := *p.backends.Load()
	if len(list) == 0 {
		WriteNoBackends(w)
		return
	}
	backend := list[(p.counter.Add(1)-1)%uint64(len(list))]

	ctx, cancel := context.WithTimeout(r.Context(), ForwardTimeout)
	defer cancel()
	target := *backend
	target.Path, target.RawPath = r.URL.Path, r.URL.RawPath
	target.RawQuery = r.URL.RawQuery
	out := &http.Request{
		Method:        r.Method,
		URL:           &target,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        make(http.Header, len(r.Header)+1),
		Host:          target.Host,
		ContentLength: r.ContentLength,
	}
	if r.ContentLength != 0 {
		out.Body = r.Body
	}
	copyRequestHeaders(out.Header, r.Header)
	out = out.WithContext(ctx)

	resp, err := p.client.Do(out)
	if err != nil {
		if r.Context().Err() != nil {
			// The caller went away (the reference's "interruption"): nobody reads this.
			WriteText(w, http.StatusInternalServerError, "Request interrupted")
			return
		}
		WriteText(w, http.StatusBadGateway, proxyErrorPfx+err.Error())
		return
	}
	defer func() { _ = resp.Body.Close() }()

	h := w.Header()
	for k, v := range resp.Header {
		switch k {
		case "Content-Length", "Connection", "Transfer-Encoding":
			continue
		}
		h[k] = v
	}
	if _, ok := resp.Header["Content-Type"]; !ok {
		// Stop net/http from sniffing one: a missing type means something to the dispatcher (D3).
		h["Content-Type"] = nil
	}
	// A known length is sent as such; an unknown one is left to net/http, which answers short and
	// empty bodies with a Content-Length and never chunks an empty body.
	if resp.ContentLength > 0 {
		h.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	w.WriteHeader(resp.StatusCode)
	if resp.ContentLength == 0 {
		return
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		p.logger.Debug("proxy: response body copy failed", "backend", backend.Host, "error", err)
	}
}

// copyRequestHeaders copies every request header except the ones the reference drops. net/http
// already keeps Host and Transfer-Encoding out of the map; User-Agent is copied when present and
// otherwise suppressed so the backend does not see Go's default.
func copyRequestHeaders(dst, src http.Header) {
	for k, v := range src {
		switch k {
		case "Host", "Content-Length", "Connection", "Upgrade", "Http2-Settings":
			continue
		}
		dst[k] = v
	}
	if _, ok := dst["User-Agent"]; !ok {
		dst["User-Agent"] = nil
	}
}

// WriteHealth answers a /health probe: 200 "UP" when some backend is ready, else 503 "DOWN".
func WriteHealth(w http.ResponseWriter, up bool) {
	if up {
		WriteText(w, http.StatusOK, "UP")
	} else {
		WriteText(w, http.StatusServiceUnavailable, "DOWN")
	}
}

// WriteNoBackends answers an invocation that no backend can take: 503 "No ready container
// backends".
func WriteNoBackends(w http.ResponseWriter) {
	WriteText(w, http.StatusServiceUnavailable, noBackendsBody)
}

// WriteText answers status with body as text/plain.
func WriteText(w http.ResponseWriter, status int, body string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}
