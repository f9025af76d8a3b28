package dispatch

import (
	"net"
	"net/http"
	"time"
)

// Defaults of nanofaas.http-client.* (spec-core §8.1), used when a configured value is <= 0.
const (
	DefaultConnectTimeout         = 5 * time.Second
	DefaultMaxResponseBytes int64 = 16 << 20
)

// ClientConfig tunes the shared function-dispatch HTTP client.
type ClientConfig struct {
	// ConnectTimeout bounds TCP connection establishment (connect-timeout-ms); <= 0 → 5s.
	ConnectTimeout time.Duration
	// MaxResponseBytes is the response-body buffer limit (max-in-memory-size-mb). The transport
	// does not enforce it; the Pool does: build it with NewPool(client, cfg.MaxResponseBytes).
	MaxResponseBytes int64
}

// NewHTTPClient returns the one client the whole process should use to reach functions: keep-alive
// with a large idle pool (all traffic goes to few hosts, so per-host idle connections matter most),
// HTTP/1.1 only, no proxy from the environment (functions are cluster-internal), no transparent
// compression (bodies are passed through byte for byte) and no redirect following (a 3xx is a
// function error, as in the reference's WebClient). Per-request deadlines come from the context.
func NewHTTPClient(cfg ClientConfig) *http.Client {
	connect := cfg.ConnectTimeout
	if connect <= 0 {
		connect = DefaultConnectTimeout
	}
	dialer := &net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	transport := &http.Transport{
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		Protocols:              &protocols,
		MaxIdleConns:           1024,
		MaxIdleConnsPerHost:    256,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    connect,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 1 << 20,
		WriteBufferSize:        16 << 10,
		ReadBufferSize:         16 << 10,
	}
	return &http.Client{
		Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
