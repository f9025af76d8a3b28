package controlplane

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// noopRuntime answers every invocation with a small JSON document, like a no-op function.
func noopRuntime(b *testing.B) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	b.Cleanup(srv.Close)
	return srv
}

func post(b *testing.B, client *http.Client, url string, body []byte) {
	resp, err := client.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		b.Fatalf("status %d", resp.StatusCode)
	}
}

// BenchmarkSyncInvokePool measures a sync invocation of a POOL function through the real
// listeners against calling the same runtime directly, in one run: the ratio of the two is the
// control plane's added cost per invocation on loopback.
func BenchmarkSyncInvokePool(b *testing.B) {
	for _, mode := range []struct{ name, modules string }{{"modules=all", "all"}, {"modules=none", "none"}} {
		b.Run(mode.name, func(b *testing.B) {
			rt := noopRuntime(b)
			api, _ := startApp(b, "--nanofaas.control-plane.modules="+mode.modules, "--sync-queue.admission-enabled=false")
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			reg := []byte(`{"name":"noop","image":"i","executionMode":"POOL","endpointUrl":"` + rt.URL + `/invoke"}`)
			resp, err := client.Post(api+"/v1/functions", "application/json", bytes.NewReader(reg))
			if err != nil || resp.StatusCode != 201 {
				b.Fatalf("register: %v %v", err, resp)
			}
			resp.Body.Close()
			body := []byte(`{"input":{"text":"hello"}}`)
			b.Run("direct", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					post(b, client, rt.URL+"/invoke", body)
				}
			})
			b.Run("control-plane", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					post(b, client, api+"/v1/functions/noop:invoke", body)
				}
			})
		})
	}
}
