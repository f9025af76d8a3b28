package metrics

import (
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeClock is a settable clock for the decaying max.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newTestMetrics(t *testing.T) (*FunctionMetrics, *prometheus.Registry, *fakeClock) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	clk := newFakeClock()
	fm, err := NewFunctionMetrics(reg, clk.Now)
	if err != nil {
		t.Fatalf("NewFunctionMetrics: %v", err)
	}
	return fm, reg, clk
}

// series gathers reg and returns every function_* sample as "name{labels}" → value, with the
// summary's _sum/_count flattened the way the text format shows them.
func series(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		name := mf.GetName()
		if !strings.HasPrefix(name, "function_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, lp := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", lp.GetName(), lp.GetValue()))
			}
			key := func(suffix string, extra ...string) string {
				return name + suffix + "{" + strings.Join(append(slices.Clone(labels), extra...), ",") + "}"
			}
			switch {
			case m.Counter != nil:
				out[key("")] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[key("")] = m.GetGauge().GetValue()
			case m.Summary != nil:
				s := m.GetSummary()
				out[key("_count")] = float64(s.GetSampleCount())
				out[key("_sum")] = s.GetSampleSum()
				for _, q := range s.GetQuantile() {
					out[key("", fmt.Sprintf("quantile=%q", fmt.Sprint(q.GetQuantile())))] = q.GetValue()
				}
			}
		}
	}
	return out
}

const oneEventExposition = `# HELP function_cold_start_total Completions served by a cold start.
# TYPE function_cold_start_total counter
function_cold_start_total{function="echo"} 0
# HELP function_dispatch_total Dispatch attempts.
# TYPE function_dispatch_total counter
function_dispatch_total{function="echo"} 1
# HELP function_e2e_latency_ms_seconds End-to-end latency from enqueue to finish, in seconds.
# TYPE function_e2e_latency_ms_seconds summary
function_e2e_latency_ms_seconds{function="echo",quantile="0.5"} 0
function_e2e_latency_ms_seconds{function="echo",quantile="0.95"} 0
function_e2e_latency_ms_seconds{function="echo",quantile="0.99"} 0
function_e2e_latency_ms_seconds_sum{function="echo"} 0
function_e2e_latency_ms_seconds_count{function="echo"} 0
# HELP function_e2e_latency_ms_seconds_max End-to-end latency from enqueue to finish: decaying maximum, in seconds.
# TYPE function_e2e_latency_ms_seconds_max gauge
function_e2e_latency_ms_seconds_max{function="echo"} 0
# HELP function_enqueue_total Invocations admitted into the async queue, including retry re-enqueues.
# TYPE function_enqueue_total counter
function_enqueue_total{function="echo"} 0
# HELP function_error_total Executions completed with an error.
# TYPE function_error_total counter
function_error_total{function="echo"} 0
# HELP function_init_duration_ms_seconds Cold-start init duration, in seconds.
# TYPE function_init_duration_ms_seconds summary
function_init_duration_ms_seconds{function="echo",quantile="0.5"} 0
function_init_duration_ms_seconds{function="echo",quantile="0.95"} 0
function_init_duration_ms_seconds{function="echo",quantile="0.99"} 0
function_init_duration_ms_seconds_sum{function="echo"} 0
function_init_duration_ms_seconds_count{function="echo"} 0
# HELP function_init_duration_ms_seconds_max Cold-start init duration: decaying maximum, in seconds.
# TYPE function_init_duration_ms_seconds_max gauge
function_init_duration_ms_seconds_max{function="echo"} 0
# HELP function_latency_ms_seconds Execution latency from dispatch start to finish, in seconds.
# TYPE function_latency_ms_seconds summary
function_latency_ms_seconds{function="echo",quantile="0.5"} 0.25
function_latency_ms_seconds{function="echo",quantile="0.95"} 0.25
function_latency_ms_seconds{function="echo",quantile="0.99"} 0.25
function_latency_ms_seconds_sum{function="echo"} 0.25
function_latency_ms_seconds_count{function="echo"} 1
# HELP function_latency_ms_seconds_max Execution latency from dispatch start to finish: decaying maximum, in seconds.
# TYPE function_latency_ms_seconds_max gauge
function_latency_ms_seconds_max{function="echo"} 0.25
# HELP function_queue_rejected_total Enqueues refused because the queue was full.
# TYPE function_queue_rejected_total counter
function_queue_rejected_total{function="echo"} 0
# HELP function_queue_wait_ms_seconds Wait between enqueue and dispatch start, in seconds.
# TYPE function_queue_wait_ms_seconds summary
function_queue_wait_ms_seconds{function="echo",quantile="0.5"} 0
function_queue_wait_ms_seconds{function="echo",quantile="0.95"} 0
function_queue_wait_ms_seconds{function="echo",quantile="0.99"} 0
function_queue_wait_ms_seconds_sum{function="echo"} 0
function_queue_wait_ms_seconds_count{function="echo"} 0
# HELP function_queue_wait_ms_seconds_max Wait between enqueue and dispatch start: decaying maximum, in seconds.
# TYPE function_queue_wait_ms_seconds_max gauge
function_queue_wait_ms_seconds_max{function="echo"} 0
# HELP function_retry_total Retries decided after a failed attempt.
# TYPE function_retry_total counter
function_retry_total{function="echo"} 0
# HELP function_success_total Executions completed successfully.
# TYPE function_success_total counter
function_success_total{function="echo"} 0
# HELP function_timeout_total Synchronous waiters that timed out.
# TYPE function_timeout_total counter
function_timeout_total{function="echo"} 0
# HELP function_warm_start_total Completions served warm.
# TYPE function_warm_start_total counter
function_warm_start_total{function="echo"} 0
`

func TestFor_FirstEventExposesAllThirteenMetersInSeconds(t *testing.T) {
	fm, reg, _ := newTestMetrics(t)

	m := fm.For("echo")
	m.Dispatch()
	m.Latency(250 * time.Millisecond)

	if err := testutil.GatherAndCompare(reg, strings.NewReader(oneEventExposition)); err != nil {
		t.Fatal(err)
	}
}

func TestMeters_EachMethodUpdatesItsOwnSeries(t *testing.T) {
	tests := []struct {
		name   string
		event  func(*Meters)
		series string
		want   float64
	}{
		{"enqueue", (*Meters).Enqueue, `function_enqueue_total{function="f"}`, 1},
		{"dispatch", (*Meters).Dispatch, `function_dispatch_total{function="f"}`, 1},
		{"success", (*Meters).Success, `function_success_total{function="f"}`, 1},
		{"error", (*Meters).Error, `function_error_total{function="f"}`, 1},
		{"retry", (*Meters).Retry, `function_retry_total{function="f"}`, 1},
		{"timeout", (*Meters).Timeout, `function_timeout_total{function="f"}`, 1},
		{"queue rejected", (*Meters).QueueRejected, `function_queue_rejected_total{function="f"}`, 1},
		{"cold start", (*Meters).ColdStart, `function_cold_start_total{function="f"}`, 1},
		{"warm start", (*Meters).WarmStart, `function_warm_start_total{function="f"}`, 1},
		{"latency", func(m *Meters) { m.Latency(1500 * time.Millisecond) }, `function_latency_ms_seconds_sum{function="f"}`, 1.5},
		{"init duration", func(m *Meters) { m.InitDuration(1500 * time.Millisecond) }, `function_init_duration_ms_seconds_sum{function="f"}`, 1.5},
		{"queue wait", func(m *Meters) { m.QueueWait(1500 * time.Millisecond) }, `function_queue_wait_ms_seconds_sum{function="f"}`, 1.5},
		{"e2e", func(m *Meters) { m.E2E(1500 * time.Millisecond) }, `function_e2e_latency_ms_seconds_sum{function="f"}`, 1.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fm, reg, _ := newTestMetrics(t)
			tt.event(fm.For("f"))

			got := series(t, reg)
			if len(got) != 9+4*6 {
				t.Fatalf("got %d series, want all 33 (9 counters + 4 × [3 quantiles, sum, count, max])", len(got))
			}
			nonZero := 0
			for k, v := range got {
				if v != 0 {
					nonZero++
					if !strings.HasPrefix(k, strings.SplitN(tt.series, "_seconds_sum", 2)[0]) {
						t.Errorf("unexpected non-zero series %s = %v", k, v)
					}
				}
			}
			if got[tt.series] != tt.want {
				t.Fatalf("%s = %v, want %v", tt.series, got[tt.series], tt.want)
			}
			if nonZero == 0 {
				t.Fatal("no series changed")
			}
		})
	}
}

func TestMeters_NegativeDurationIsIgnored(t *testing.T) {
	fm, reg, _ := newTestMetrics(t)
	fm.For("f").QueueWait(-time.Second)

	got := series(t, reg)
	if c := got[`function_queue_wait_ms_seconds_count{function="f"}`]; c != 0 {
		t.Fatalf("count = %v, want 0", c)
	}
}

func TestFor_ReusesSameMetersOnWarmPath(t *testing.T) {
	fm, _, _ := newTestMetrics(t)
	a, b := fm.For("f"), fm.For("f")
	if a != b {
		t.Fatal("For returned different Meters for the same function")
	}
	if fm.For("g") == a {
		t.Fatal("For returned the same Meters for different functions")
	}
}

func TestRegisterFunction_CreatesNoMeters(t *testing.T) {
	fm, reg, _ := newTestMetrics(t)
	fm.RegisterFunction("f")

	if got := series(t, reg); len(got) != 0 {
		t.Fatalf("registration created series: %v", got)
	}
}

func TestRemoveFunction_DeletesAllMetersOfThatFunctionOnly(t *testing.T) {
	fm, reg, _ := newTestMetrics(t)
	fm.For("f").Dispatch()
	fm.For("g").Dispatch()

	fm.RemoveFunction("f")

	for k := range series(t, reg) {
		if strings.Contains(k, `function="f"`) {
			t.Errorf("series %s survived removal", k)
		}
	}
	if got := series(t, reg)[`function_dispatch_total{function="g"}`]; got != 1 {
		t.Fatalf("other function's dispatch = %v, want 1", got)
	}
}

func TestRemoveFunction_LaterEventsRecreateNothing(t *testing.T) {
	fm, reg, _ := newTestMetrics(t)
	fm.For("f").Dispatch()
	fm.RemoveFunction("f")
	fm.RemoveFunction("never-seen")

	for _, fn := range []string{"f", "never-seen"} {
		m := fm.For(fn)
		if m != fm.noop {
			t.Fatalf("For(%q) after removal is not the shared no-op", fn)
		}
		m.Dispatch()
		m.Success()
		m.Latency(time.Second)
		m.E2E(time.Second)
	}

	if got := series(t, reg); len(got) != 0 {
		t.Fatalf("events after removal recreated series: %v", got)
	}
}

func TestRegisterAfterRemove_MetersStartFromZero(t *testing.T) {
	fm, reg, _ := newTestMetrics(t)
	old := fm.For("f")
	old.Dispatch()
	old.Dispatch()
	old.Latency(time.Second)
	fm.RemoveFunction("f")

	fm.RegisterFunction("f")
	if got := series(t, reg); len(got) != 0 {
		t.Fatalf("re-registration created series: %v", got)
	}
	fm.For("f").Dispatch()
	old.Dispatch() // a stale handle must not leak into the new meters

	got := series(t, reg)
	want := map[string]float64{
		`function_dispatch_total{function="f"}`:                     1,
		`function_latency_ms_seconds_count{function="f"}`:           0,
		`function_latency_ms_seconds_max{function="f"}`:             0,
		`function_latency_ms_seconds{function="f",quantile="0.99"}`: 0,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
}

func TestRegisterFunction_KeepsLiveMeters(t *testing.T) {
	fm, reg, _ := newTestMetrics(t)
	fm.For("f").Dispatch()
	fm.RegisterFunction("f")

	if got := series(t, reg)[`function_dispatch_total{function="f"}`]; got != 1 {
		t.Fatalf("dispatch = %v, want 1", got)
	}
}

func TestTimerMax_DecaysWithInjectedClock(t *testing.T) {
	fm, reg, clk := newTestMetrics(t)
	const maxSeries = `function_latency_ms_seconds_max{function="f"}`
	m := fm.For("f")
	m.Latency(2 * time.Second)

	steps := []struct {
		advance time.Duration
		record  time.Duration
		want    float64
	}{
		{0, 0, 2},
		{70 * time.Second, 500 * time.Millisecond, 2}, // t=70s: lands after the first rotation
		{109 * time.Second, 0, 2},                     // t=179s: the 2 s sample's last bucket
		{time.Second, 0, 0.5},                         // t=180s: 2 s sample expired, 0.5 s still visible
		{59 * time.Second, 0, 0.5},                    // t=239s
		{time.Second, 0, 0},                           // t=240s: everything expired
		{0, 3 * time.Second, 3},
		{10 * time.Minute, 0, 0},
	}
	for i, s := range steps {
		clk.Advance(s.advance)
		if s.record > 0 {
			m.Latency(s.record)
		}
		if got := series(t, reg)[maxSeries]; got != s.want {
			t.Fatalf("step %d: %s = %v, want %v", i, maxSeries, got, s.want)
		}
	}
	if got := series(t, reg)[`function_latency_ms_seconds_count{function="f"}`]; got != 3 {
		t.Fatalf("count = %v, want 3 (the max decays, the count does not)", got)
	}
}

func TestRemoveFunction_ConcurrentForDoesNotResurrect(t *testing.T) {
	fm, reg, _ := newTestMetrics(t)
	const fn = "racy"
	for round := range 50 {
		fm.RegisterFunction(fn)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				<-start
				for range 200 {
					m := fm.For(fn)
					m.Dispatch()
					m.Success()
					m.Latency(time.Millisecond)
				}
			})
		}
		wg.Go(func() {
			<-start
			runtime.Gosched()
			fm.RemoveFunction(fn)
		})
		close(start)
		wg.Wait()

		for k := range series(t, reg) {
			if strings.Contains(k, `function="racy"`) {
				t.Fatalf("round %d: series %s exists after removal", round, k)
			}
		}
	}
}

func TestNewFunctionMetrics_SecondRegistrationOnSameRegistryFails(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := NewFunctionMetrics(reg, nil); err != nil {
		t.Fatalf("first: %v", err)
	}
	_, err := NewFunctionMetrics(reg, nil)
	var are prometheus.AlreadyRegisteredError
	if !errors.As(err, &are) {
		t.Fatalf("second registration error = %v, want AlreadyRegisteredError", err)
	}
}

func TestNewRegistry_ScrapeShowsRuntimeProcessAndFunctionMetrics(t *testing.T) {
	reg := NewRegistry()
	fm, err := NewFunctionMetrics(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := fm.For("echo")
	m.Dispatch()
	m.Latency(100 * time.Millisecond)

	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	client := srv.Client()
	defer client.CloseIdleConnections()
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	text := string(body)

	wantLines := []string{
		"# TYPE go_goroutines gauge",
		`function_dispatch_total{function="echo"} 1`,
		"# TYPE function_latency_ms_seconds summary",
		`function_latency_ms_seconds{function="echo",quantile="0.5"} 0.1`,
		`function_latency_ms_seconds{function="echo",quantile="0.95"} 0.1`,
		`function_latency_ms_seconds{function="echo",quantile="0.99"} 0.1`,
		`function_latency_ms_seconds_count{function="echo"} 1`,
		"# TYPE function_latency_ms_seconds_max gauge",
		`function_latency_ms_seconds_max{function="echo"} 0.1`,
		`function_warm_start_total{function="echo"} 0`,
	}
	if runtime.GOOS == "linux" {
		wantLines = append(wantLines, "# TYPE process_resident_memory_bytes gauge")
	}
	lines := strings.Split(text, "\n")
	for _, w := range wantLines {
		if !slices.Contains(lines, w) {
			t.Errorf("scrape lacks line %q", w)
		}
	}
}

func TestDispatchCount_ReadsTheCounterWithoutCreatingMeters(t *testing.T) {
	reg := prometheus.NewRegistry()
	fm, err := NewFunctionMetrics(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := fm.DispatchCount("fn"); got != 0 {
		t.Fatalf("DispatchCount before any event = %v, want 0", got)
	}
	if n, _ := testutil.GatherAndCount(reg); n != 0 {
		t.Fatalf("DispatchCount created %d series", n)
	}
	fm.For("fn").Dispatch()
	fm.For("fn").Dispatch()
	if got := fm.DispatchCount("fn"); got != 2 {
		t.Fatalf("DispatchCount = %v, want 2", got)
	}
	fm.RemoveFunction("fn")
	if got := fm.DispatchCount("fn"); got != 0 {
		t.Fatalf("DispatchCount after removal = %v, want 0", got)
	}
}
