package syncqueue

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/nanofaas/control-plane/internal/metrics"
)

// scrape serves the fixture's registry as the management listener does and returns the body.
func (f *fixture) scrape(t *testing.T, accept string) string {
	t.Helper()
	h := promhttp.HandlerFor(f.reg, promhttp.HandlerOpts{EnableOpenMetrics: true, ErrorHandling: promhttp.HTTPErrorOnError})
	req := httptest.NewRequest(http.MethodGet, "/actuator/prometheus", nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, req)
	body, _ := io.ReadAll(rr.Body)
	if rr.Code != http.StatusOK {
		t.Fatalf("scrape status %d: %s", rr.Code, body)
	}
	return string(body)
}

func assertLines(t *testing.T, body string, present, absent []string) {
	t.Helper()
	lines := map[string]bool{}
	for _, l := range strings.Split(body, "\n") {
		lines[l] = true
		lines[strings.TrimSuffix(l, ".0")] = true // OpenMetrics renders integral values as "3.0"
	}
	for _, l := range present {
		if !lines[l] {
			t.Errorf("missing line %q", l)
		}
	}
	for _, prefix := range absent {
		if strings.Contains(body, prefix) {
			t.Errorf("unexpected %q", prefix)
		}
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", body)
	}
}

func TestMetrics_GlobalMetricsExistAtStartup(t *testing.T) {
	f := newFixture(t, schedulerSettings())
	assertLines(t, f.scrape(t, ""), []string{
		"sync_queue_depth 0",
		"sync_queue_wait_seconds_count 0",
		"sync_queue_wait_seconds_sum 0",
		"sync_queue_wait_seconds_max 0",
	}, []string{`function="`})
}

func TestMetrics_DepthIsServedWithAndWithoutTheFunctionLabel(t *testing.T) {
	f := newFixture(t, schedulerSettings())
	// The shared registry also holds the core's checked per-function collector.
	if _, err := metrics.NewFunctionMetrics(f.reg, f.clock.Now); err != nil {
		t.Fatal(err)
	}
	f.svc.RegisterFunction("idle")
	f.enqueue("a")
	f.enqueue("a")
	f.enqueue("b")

	for _, accept := range []string{"", "application/openmetrics-text; version=1.0.0"} {
		body := f.scrape(t, accept)
		assertLines(t, body, []string{
			"sync_queue_depth 3",
			`sync_queue_depth{function="a"} 2`,
			`sync_queue_depth{function="b"} 1`,
			`sync_queue_depth{function="idle"} 0`,
		}, nil)
		if n := strings.Count(body, "# TYPE sync_queue_depth gauge"); n != 1 {
			t.Errorf("accept %q: %d TYPE lines for sync_queue_depth, want one family", accept, n)
		}
	}
}

func TestMetrics_CountersAndWaitTimerPerFunction(t *testing.T) {
	s := schedulerSettings()
	s.MaxDepth = 2
	f := newFixture(t, s)
	f.enqueue("fn")
	f.enqueue("fn")
	if err := f.svc.Enqueue(f.newTask("fn")); err == nil {
		t.Fatal("third enqueue admitted past max depth")
	}
	f.clock.Advance(250 * time.Millisecond)
	f.step() // dispatch after 250ms
	f.slots.SetLimit("fn", 0)
	f.clock.Advance(2 * time.Second)
	f.step() // the second item times out (queued 2.25 s)

	assertLines(t, f.scrape(t, ""), []string{
		"sync_queue_depth 0",
		`sync_queue_depth{function="fn"} 0`,
		`sync_queue_admitted_total{function="fn"} 2`,
		`sync_queue_rejected_total{function="fn"} 1`,
		`sync_queue_timedout_total{function="fn"} 1`,
		"sync_queue_wait_seconds_count 1",
		"sync_queue_wait_seconds_sum 0.25",
		"sync_queue_wait_seconds_max 0.25",
		`sync_queue_wait_seconds_count{function="fn"} 1`,
		`sync_queue_wait_seconds_sum{function="fn"} 0.25`,
		`sync_queue_wait_seconds_max{function="fn"} 0.25`,
	}, []string{"reason="})
}

func TestMetrics_MetersAppearOnFirstUse(t *testing.T) {
	f := newFixture(t, schedulerSettings())
	f.svc.RegisterFunction("fn")
	assertLines(t, f.scrape(t, ""), []string{`sync_queue_depth{function="fn"} 0`},
		[]string{"sync_queue_admitted_total", "sync_queue_rejected_total", "sync_queue_timedout_total", `sync_queue_wait_seconds_count{`})
}

func TestMetrics_WaitMaxDecaysAfterThreeMinutes(t *testing.T) {
	f := newFixture(t, schedulerSettings())
	f.enqueue("fn")
	f.clock.Advance(time.Second)
	f.step()
	f.clock.Advance(2 * time.Minute)
	assertLines(t, f.scrape(t, ""), []string{"sync_queue_wait_seconds_max 1"}, nil)
	f.clock.Advance(time.Minute)
	assertLines(t, f.scrape(t, ""), []string{
		"sync_queue_wait_seconds_max 0",
		"sync_queue_wait_seconds_count 1", // count and sum never decay
		`sync_queue_wait_seconds_max{function="fn"} 0`,
	}, nil)
}

func TestMetrics_RemovalDeletesFunctionMetersUntilReregistered(t *testing.T) {
	f := newFixture(t, schedulerSettings())
	f.enqueue("gone")
	f.enqueue("kept")
	f.step()

	f.svc.RemoveFunction("gone")
	_ = f.svc.Enqueue(f.newTask("gone")) // refused: must not bring meters back
	body := f.scrape(t, "")
	assertLines(t, body, []string{
		"sync_queue_depth 1",
		`sync_queue_depth{function="kept"} 1`,
		"sync_queue_wait_seconds_count 1",
	}, []string{`function="gone"`})

	f.svc.RegisterFunction("gone")
	assertLines(t, f.scrape(t, ""), []string{`sync_queue_depth{function="gone"} 0`},
		[]string{`sync_queue_admitted_total{function="gone"}`, `sync_queue_wait_seconds_count{function="gone"}`})
	f.enqueue("gone")
	assertLines(t, f.scrape(t, ""), []string{`sync_queue_admitted_total{function="gone"} 1`}, nil)
}
