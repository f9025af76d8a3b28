package localbackend

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestHealthy_OnlyA2xxHealthAnswerCounts(t *testing.T) {
	tests := []struct {
		name   string
		status int
		want   bool
	}{
		{"200", http.StatusOK, true},
		{"204", http.StatusNoContent, true},
		{"503", http.StatusServiceUnavailable, false},
		{"404", http.StatusNotFound, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			paths := make(chan string, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				paths <- r.URL.Path
				w.WriteHeader(tc.status)
			}))
			defer srv.Close()
			if got := Healthy(context.Background(), srv.Client(), srv.URL); got != tc.want {
				t.Fatalf("Healthy = %v, want %v", got, tc.want)
			}
			if path := <-paths; path != "/health" {
				t.Fatalf("probed %q, want /health", path)
			}
		})
	}
}

func TestHealthy_UnreachableOrCancelledIsNotHealthy(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	base, client := srv.URL, srv.Client()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Healthy(ctx, client, base) {
		t.Fatal("cancelled probe reported healthy")
	}
	srv.Close()
	if Healthy(context.Background(), client, base) {
		t.Fatal("closed server reported healthy")
	}
}
