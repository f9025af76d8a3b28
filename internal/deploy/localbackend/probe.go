package localbackend

import (
	"context"
	"io"
	"net/http"
	"time"
)

// ProbeTimeout bounds one GET /health (connect and request).
const ProbeTimeout = 2 * time.Second

// Healthy reports whether GET <base>/health answers 2xx within ProbeTimeout. The body is drained
// (up to 64 KiB) so that the keep-alive connection can be reused.
func Healthy(ctx context.Context, client *http.Client, base string) bool {
	ctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/health", nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 300
}
