package process

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nanofaas/control-plane/internal/function"
)

func TestFunctionEnv_OrderOverridesAndFiltering(t *testing.T) {
	spec := &function.Spec{
		Name:           "fn",
		TimeoutMs:      ptr(500),
		RuntimeMode:    ptr(function.RuntimeSTDIO),
		RuntimeCommand: ptr("/app/h.sh"),
		Env:            map[string]string{"B": "2", "A": "1", "WARM": "no", "PORT": "9", "HOST": "0.0.0.0", "": "x"},
	}
	got := functionEnv([]string{"PATH=/bin", "NANOFAAS_X=1", "Sync_Queue_Y=2", "SYNCQUEUE_Z=3", "TIMEOUT_MS=7", "HOST=box", "HOME=/h"}, spec, "http://cb")
	want := []string{"PATH=/bin", "HOME=/h", "FUNCTION_NAME=fn", "WARM=true", "TIMEOUT_MS=500",
		"EXECUTION_MODE=STDIO", "WATCHDOG_CMD=/app/h.sh", "CALLBACK_URL=http://cb", "A=1", "B=2"}
	if !slices.Equal(got, want) {
		t.Fatalf("env =\n%v\nwant\n%v", got, want)
	}
}

func TestFunctionEnv_OptionalEntriesOmitted(t *testing.T) {
	spec := &function.Spec{Name: "fn", TimeoutMs: ptr(1), RuntimeCommand: ptr("  ")}
	got := functionEnv(nil, spec, " ")
	want := []string{"FUNCTION_NAME=fn", "WARM=true", "TIMEOUT_MS=1"}
	if !slices.Equal(got, want) {
		t.Fatalf("env = %v, want %v", got, want)
	}
}

func TestInitialReplicas_MinReplicasElseOne(t *testing.T) {
	tests := []struct {
		sc   *function.ScalingConfig
		want int
	}{
		{nil, 1},
		{&function.ScalingConfig{}, 1},
		{&function.ScalingConfig{MinReplicas: ptr(0)}, 0},
		{&function.ScalingConfig{MinReplicas: ptr(3)}, 3},
		{&function.ScalingConfig{MinReplicas: ptr(-2)}, 0},
	}
	for _, tc := range tests {
		if got := initialReplicas(&function.Spec{ScalingConfig: tc.sc}); got != tc.want {
			t.Errorf("initialReplicas(%+v) = %d, want %d", tc.sc, got, tc.want)
		}
	}
}

func TestOutputLog_KeepsLastMiBAndLogsLines(t *testing.T) {
	var logBuf bytes.Buffer
	o := newOutputLog(slog.New(slog.NewTextHandler(&logBuf, nil)).With("function", "f", "replica", 2))
	_, _ = o.Write([]byte("first line\nsecond "))
	_, _ = o.Write([]byte("half\n"))
	if !strings.Contains(logBuf.String(), `line="first line"`) || !strings.Contains(logBuf.String(), `line="second half"`) ||
		!strings.Contains(logBuf.String(), "replica=2") {
		t.Fatalf("log = %s", logBuf.String())
	}
	chunk := bytes.Repeat([]byte("0123456789abcde\n"), 1<<12) // 64 KiB
	for range 20 {
		_, _ = o.Write(chunk)
	}
	_, _ = o.Write([]byte("the end"))
	b := o.Bytes()
	if len(b) != outputTailBytes || !bytes.HasSuffix(b, []byte("abcde\nthe end")) {
		t.Fatalf("kept %d bytes, suffix %q", len(b), b[len(b)-20:])
	}
	if got := o.lastLines(2); got != "0123456789abcde\nthe end" {
		t.Fatalf("lastLines = %q", got)
	}
	o.flush()
	if !strings.Contains(logBuf.String(), `line="the end"`) {
		t.Fatal("unterminated last line not logged on flush")
	}
	big := bytes.Repeat([]byte("x"), 3*outputTailBytes)
	_, _ = o.Write(big)
	if b := o.Bytes(); len(b) != outputTailBytes || b[0] != 'x' {
		t.Fatalf("huge write kept %d bytes", len(b))
	}
}

func TestTailLines_SkipsBlankAndCapsSize(t *testing.T) {
	if got := tailLines([]byte("a\n\n  \nb\r\nc\n\n"), 2); got != "b\nc" {
		t.Fatalf("tailLines = %q", got)
	}
	if got := tailLines(nil, 3); got != "" {
		t.Fatalf("tailLines(nil) = %q", got)
	}
	long := strings.Repeat("y", 10_000)
	if got := tailLines([]byte(long), 1); len(got) > errorTailMaxBytes+len("…") {
		t.Fatalf("tail of %d bytes", len(got))
	}
	if withOutput("m", "") != "m; no output" || withOutput("m", "x") != "m; last output:\nx" {
		t.Fatal("withOutput format")
	}
}

func TestSlots_BlockAtLimitAndFailWhenZero(t *testing.T) {
	var s slots
	s.changed = make(chan struct{})
	if err := s.acquire(context.Background()); !errors.Is(err, errNoSlots) {
		t.Fatalf("acquire with 0 slots: %v", err)
	}
	s.setLimit(1)
	if err := s.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := s.acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second acquire: %v", err)
	}

	got := make(chan error, 2)
	go func() { got <- s.acquire(context.Background()) }()
	go func() { got <- s.acquire(context.Background()) }()
	waitWaiting(t, &s, 2)
	s.release() // one waiter gets the slot
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	waitWaiting(t, &s, 1)
	s.setLimit(0) // the other learns there are no replicas left
	if err := <-got; !errors.Is(err, errNoSlots) {
		t.Fatalf("waiter after scale to 0: %v", err)
	}
}

func waitWaiting(t *testing.T, s *slots, n int) {
	t.Helper()
	eventually(t, "waiters", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.waiting == n
	})
}
