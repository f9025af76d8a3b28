package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// startInProcess runs a child mode in a goroutine and returns its listen fields and a stop
// function that cancels it and returns its error.
func startInProcess(t *testing.T, runChild func(ctx context.Context, stdout io.Writer) error) ([]string, func() error) {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	out := &childOutput{file: f, listen: make(chan string, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runChild(ctx, out) }()
	stop := func() error { cancel(); return <-done }
	select {
	case line := <-out.listen:
		return strings.Fields(line), stop
	case err := <-done:
		cancel()
		t.Fatalf("child returned before listening: %v", err)
	case <-time.After(5 * time.Second):
		_ = stop()
		t.Fatal("child did not report its address")
	}
	return nil, nil
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestRuntimeChild_ServesTheNoopFunctionAndRecordsOnlyWhenSwitchedOn(t *testing.T) {
	defer goleak.VerifyNone(t)
	addrs, stop := startInProcess(t, func(ctx context.Context, stdout io.Writer) error {
		return runRuntimeChild(ctx, stdout, quietLogger())
	})
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	fn, ctl := "http://"+addrs[0], "http://"+addrs[1]

	invoke := func(id string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, fn+"/invoke", strings.NewReader(string(invokeBody)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Execution-Id", id)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != string(noopOutput) {
			t.Fatalf("invoke = %d %s", resp.StatusCode, body)
		}
	}
	post := func(path string) []byte {
		t.Helper()
		resp, err := client.Post(ctl+path, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 300 {
			t.Fatalf("POST %s = %d %s", path, resp.StatusCode, b)
		}
		return b
	}

	invoke("before")
	post(pathRecord + "?on=true")
	invoke("e1")
	invoke("e2")
	post(pathRecord + "?on=false")
	invoke("after")

	var got struct{ At map[string]int64 }
	if err := json.Unmarshal(post(pathRecorded), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.At) != 2 || got.At["e1"] == 0 || got.At["e2"] < got.At["e1"] {
		t.Errorf("recorded %v, want e1 ≤ e2 only", got.At)
	}
	got.At = nil
	if err := json.Unmarshal(post(pathRecorded), &got); err != nil || len(got.At) != 0 {
		t.Errorf("second take = %v, %v; want empty (taken once)", got.At, err)
	}
	client.CloseIdleConnections()
	if err := stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
}

func TestProxyChild_ForwardsToTheTarget(t *testing.T) {
	defer goleak.VerifyNone(t)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seen-Path", r.URL.Path)
		_, _ = io.WriteString(w, "hello")
	}))
	defer target.Close()
	addrs, stop := startInProcess(t, func(ctx context.Context, stdout io.Writer) error {
		return runProxyChild(ctx, stdout, quietLogger(), target.URL)
	})
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Post("http://"+addrs[0]+"/invoke", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	client.CloseIdleConnections()
	if resp.StatusCode != 200 || string(body) != "hello" || resp.Header.Get("X-Seen-Path") != "/invoke" {
		t.Errorf("proxied = %d %q path %q", resp.StatusCode, body, resp.Header.Get("X-Seen-Path"))
	}
	if err := stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
}

func TestProxyChild_RejectsARelativeTarget(t *testing.T) {
	if err := runProxyChild(context.Background(), io.Discard, quietLogger(), "localhost:80"); err == nil {
		t.Error("want an error")
	}
}

func TestBufferPool_ReusesReturnedBuffersUpToItsBound(t *testing.T) {
	p := newBufferPool(1, 16)
	a := p.Get()
	if len(a) != 16 {
		t.Fatalf("len = %d", len(a))
	}
	a[0] = 'x'
	p.Put(a)
	p.Put(make([]byte, 16)) // over the bound: dropped, must not block
	if b := p.Get(); b[0] != 'x' {
		t.Error("returned buffer was not reused")
	}
}

// An opened-but-unused connection (what a load client's transport leaves after a speculative
// dial) holds net/http's Shutdown for 5 s; the children's shutdown budget must outlast that rule
// and still report a clean stop.
func TestChildren_StopCleanlyWithAnUnusedConnectionOpen(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out net/http's 5 s rule for new connections")
	}
	target := httptest.NewServer(http.NotFoundHandler())
	defer target.Close()
	for name, runChild := range map[string]func(context.Context, io.Writer) error{
		"runtime": func(ctx context.Context, stdout io.Writer) error { return runRuntimeChild(ctx, stdout, quietLogger()) },
		"proxy": func(ctx context.Context, stdout io.Writer) error {
			return runProxyChild(ctx, stdout, quietLogger(), target.URL)
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			addrs, stop := startInProcess(t, runChild)
			conn, err := net.Dial("tcp", addrs[0])
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			time.Sleep(50 * time.Millisecond) // let the server accept it
			if err := stop(); err != nil {
				t.Errorf("stop with an unused connection open: %v", err)
			}
		})
	}
}
