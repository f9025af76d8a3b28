package runtimeconfig

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/goleak"

	"github.com/nanofaas/control-plane/internal/config"
	"github.com/nanofaas/control-plane/internal/ratelimit"
)

// Summaries and the scrape test's HTTP handler must not leave goroutines behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeClock is a settable clock, safe for concurrent use.
type fakeClock struct{ nanos atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.nanos.Store(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.nanos.Load()).UTC() }
func (c *fakeClock) Advance(d time.Duration) { c.nanos.Add(int64(d)) }

type fixture struct {
	svc     *Service
	limiter *ratelimit.Limiter
	reg     *prometheus.Registry
	clock   *fakeClock
	logs    *bytes.Buffer
}

func newFixture(t *testing.T, appliers ...Applier) *fixture {
	t.Helper()
	f := &fixture{clock: newFakeClock(), reg: prometheus.NewRegistry(), logs: &bytes.Buffer{}}
	f.limiter = ratelimit.New(ratelimit.DefaultMaxPerSecond, f.clock.Now)
	ids := 0
	svc, err := New(Deps{
		Limiter: f.limiter,
		SyncQueue: SyncQueueDefaults{
			Enabled: true, AdmissionEnabled: true,
			MaxEstimatedWait: 2 * time.Second, MaxQueueWait: 2 * time.Second, RetryAfterSeconds: 2,
		},
		Registerer:  f.reg,
		Appliers:    appliers,
		Clock:       f.clock.Now,
		NewChangeID: func() string { ids++; return "change-" + strconv.Itoa(ids) },
		Logger:      slog.New(slog.NewTextHandler(f.logs, nil)),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	f.svc = svc
	return f
}

func ptr[T any](v T) *T { return &v }

func TestNew_StartsAtRevisionZeroFromLimiterAndSyncQueueDefaults(t *testing.T) {
	reg := prometheus.NewRegistry()
	svc, err := New(Deps{
		Limiter:    ratelimit.New(1234, nil),
		SyncQueue:  CoreSyncQueueDefaults(),
		Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Snapshot{
		Revision: 0, RateMaxPerSecond: 1234,
		SyncQueueEnabled: false, SyncQueueAdmissionEnabled: false,
		SyncQueueMaxEstimatedWait: 2 * time.Second, SyncQueueMaxQueueWait: 2 * time.Second,
		SyncQueueRetryAfterSeconds: 2,
	}
	if got := svc.Get(); got != want {
		t.Fatalf("initial snapshot = %+v, want %+v", got, want)
	}
}

func TestNew_RejectsMissingDependenciesAndDuplicateMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := New(Deps{Registerer: reg}); err == nil {
		t.Error("New without limiter succeeded")
	}
	if _, err := New(Deps{Limiter: ratelimit.New(1, nil)}); err == nil {
		t.Error("New without registerer succeeded")
	}
	if _, err := New(Deps{Limiter: ratelimit.New(1, nil), Registerer: reg}); err != nil {
		t.Fatalf("first New: %v", err)
	}
	if _, err := New(Deps{Limiter: ratelimit.New(1, nil), Registerer: reg}); err == nil {
		t.Error("second New on the same registry succeeded")
	}
}

func TestSyncQueueDefaults_CoreAndFromConfig(t *testing.T) {
	core := CoreSyncQueueDefaults()
	if core != (SyncQueueDefaults{false, false, 2 * time.Second, 2 * time.Second, 2}) {
		t.Errorf("core defaults = %+v", core)
	}
	got := SyncQueueDefaultsFromConfig(config.SyncQueue{
		Enabled: true, AdmissionEnabled: false, MaxDepth: 9,
		MaxEstimatedWait: 3 * time.Second, MaxQueueWait: 5 * time.Second, RetryAfterSeconds: 7,
	})
	if got != (SyncQueueDefaults{true, false, 3 * time.Second, 5 * time.Second, 7}) {
		t.Errorf("from config = %+v", got)
	}
}

func TestSnapshotValidate_MessagesAndOrder(t *testing.T) {
	valid := Snapshot{
		RateMaxPerSecond: 10, SyncQueueMaxEstimatedWait: time.Second, SyncQueueMaxQueueWait: 2 * time.Second,
		SyncQueueRetryAfterSeconds: 1,
	}
	tests := []struct {
		name   string
		mutate func(*Snapshot)
		want   []string
	}{
		{"valid", func(*Snapshot) {}, nil},
		{"estimated equals queue wait is valid", func(s *Snapshot) { s.SyncQueueMaxEstimatedWait = 2 * time.Second }, nil},
		{"rate zero", func(s *Snapshot) { s.RateMaxPerSecond = 0 }, []string{"rateMaxPerSecond must be > 0, got 0"}},
		{"rate negative", func(s *Snapshot) { s.RateMaxPerSecond = -5 }, []string{"rateMaxPerSecond must be > 0, got -5"}},
		{"estimated wait zero", func(s *Snapshot) { s.SyncQueueMaxEstimatedWait = 0 }, []string{"syncQueueMaxEstimatedWait must be > 0"}},
		{"estimated wait negative", func(s *Snapshot) { s.SyncQueueMaxEstimatedWait = -time.Second }, []string{"syncQueueMaxEstimatedWait must be > 0"}},
		{"queue wait zero", func(s *Snapshot) { s.SyncQueueMaxQueueWait = 0 }, []string{"syncQueueMaxQueueWait must be > 0"}},
		{"estimated above queue wait", func(s *Snapshot) { s.SyncQueueMaxEstimatedWait = 3 * time.Second },
			[]string{"syncQueueMaxEstimatedWait must be <= syncQueueMaxQueueWait"}},
		{"estimated above queue wait by a millisecond", func(s *Snapshot) {
			s.SyncQueueMaxEstimatedWait = 2*time.Second + time.Millisecond
		}, []string{"syncQueueMaxEstimatedWait must be <= syncQueueMaxQueueWait"}},
		{"retry after zero", func(s *Snapshot) { s.SyncQueueRetryAfterSeconds = 0 }, []string{"syncQueueRetryAfterSeconds must be >= 1, got 0"}},
		{"all four collected in order", func(s *Snapshot) {
			*s = Snapshot{RateMaxPerSecond: -1, SyncQueueMaxEstimatedWait: 0, SyncQueueMaxQueueWait: -time.Second, SyncQueueRetryAfterSeconds: -3}
		}, []string{
			"rateMaxPerSecond must be > 0, got -1",
			"syncQueueMaxEstimatedWait must be > 0",
			"syncQueueMaxQueueWait must be > 0",
			"syncQueueRetryAfterSeconds must be >= 1, got -3",
		}},
		{"ordering rule skipped when a wait is not positive", func(s *Snapshot) {
			s.SyncQueueMaxEstimatedWait, s.SyncQueueMaxQueueWait = 5*time.Second, 0
		}, []string{"syncQueueMaxQueueWait must be > 0"}},
		{"ordering rule sits between waits and retry", func(s *Snapshot) {
			s.SyncQueueMaxEstimatedWait, s.SyncQueueRetryAfterSeconds, s.RateMaxPerSecond = 9*time.Second, 0, 0
		}, []string{
			"rateMaxPerSecond must be > 0, got 0",
			"syncQueueMaxEstimatedWait must be <= syncQueueMaxQueueWait",
			"syncQueueRetryAfterSeconds must be >= 1, got 0",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := valid
			tt.mutate(&s)
			if got := s.Validate(); !slices.Equal(got, tt.want) {
				t.Errorf("Validate() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPatch_PartialMergeKeepsOtherFieldsAndBumpsRevision(t *testing.T) {
	f := newFixture(t)
	got, err := f.svc.Patch(0, Patch{SyncQueueMaxQueueWait: ptr(10 * time.Second), SyncQueueEnabled: ptr(false)})
	if err != nil {
		t.Fatal(err)
	}
	want := Snapshot{
		Revision: 1, RateMaxPerSecond: ratelimit.DefaultMaxPerSecond,
		SyncQueueEnabled: false, SyncQueueAdmissionEnabled: true,
		SyncQueueMaxEstimatedWait: 2 * time.Second, SyncQueueMaxQueueWait: 10 * time.Second,
		SyncQueueRetryAfterSeconds: 2,
	}
	if got.Snapshot != want || f.svc.Get() != want {
		t.Fatalf("applied %+v, current %+v, want %+v", got.Snapshot, f.svc.Get(), want)
	}
	if !got.AppliedAt.Equal(f.clock.Now()) || got.ChangeID != "change-1" || got.Warnings == nil || len(got.Warnings) != 0 {
		t.Errorf("applied metadata = %+v", got)
	}
}

func TestPatch_EmptyPatchStillBumpsRevision(t *testing.T) {
	f := newFixture(t)
	before := f.svc.Get()
	for rev := int64(0); rev < 3; rev++ {
		got, err := f.svc.Patch(rev, Patch{})
		if err != nil {
			t.Fatalf("patch %d: %v", rev, err)
		}
		if got.Snapshot.Revision != rev+1 {
			t.Fatalf("revision after patch %d = %d", rev, got.Snapshot.Revision)
		}
	}
	after := f.svc.Get()
	after.Revision = 0
	if after != before {
		t.Errorf("empty patches changed values: %+v → %+v", before, after)
	}
}

func TestPatch_StaleRevisionReturnsMismatchWithBothRevisions(t *testing.T) {
	f := newFixture(t)
	if _, err := f.svc.Patch(0, Patch{}); err != nil {
		t.Fatal(err)
	}
	_, err := f.svc.Patch(0, Patch{RateMaxPerSecond: ptr(5)})
	var mm *RevisionMismatchError
	if !errors.As(err, &mm) {
		t.Fatalf("err = %v, want *RevisionMismatchError", err)
	}
	if mm.Expected != 0 || mm.Current != 1 || mm.Error() != "Revision mismatch: expected 0 but current is 1" {
		t.Errorf("mismatch = %+v %q", mm, mm.Error())
	}
	if f.limiter.MaxPerSecond() != ratelimit.DefaultMaxPerSecond || f.svc.Get().RateMaxPerSecond != ratelimit.DefaultMaxPerSecond {
		t.Error("a rejected patch changed the rate")
	}
}

func TestPatch_InvalidMergedSnapshotWinsOverStaleRevision(t *testing.T) {
	f := newFixture(t)
	// est 3s > queue wait 2s only after merging with the current snapshot.
	_, err := f.svc.Patch(42, Patch{SyncQueueMaxEstimatedWait: ptr(3 * time.Second)})
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v, want *ValidationError", err)
	}
	if want := []string{"syncQueueMaxEstimatedWait must be <= syncQueueMaxQueueWait"}; !slices.Equal(ve.Errors, want) {
		t.Errorf("errors = %q, want %q", ve.Errors, want)
	}
	if f.svc.Get().Revision != 0 {
		t.Error("an invalid patch changed the revision")
	}
}

func TestValidate_ChecksMergedSnapshotWithoutChangingIt(t *testing.T) {
	f := newFixture(t)
	before := f.svc.Get()
	if errs := f.svc.Validate(Patch{SyncQueueMaxEstimatedWait: ptr(5 * time.Second)}); !slices.Equal(errs,
		[]string{"syncQueueMaxEstimatedWait must be <= syncQueueMaxQueueWait"}) {
		t.Errorf("Validate = %q", errs)
	}
	if errs := f.svc.Validate(Patch{SyncQueueMaxEstimatedWait: ptr(5 * time.Second), SyncQueueMaxQueueWait: ptr(5 * time.Second)}); errs != nil {
		t.Errorf("Validate of a valid patch = %q", errs)
	}
	if f.svc.Get() != before {
		t.Error("Validate changed the snapshot")
	}
}

func TestPatch_ConcurrentPatchesOnSameRevisionOnlyOneWins(t *testing.T) {
	f := newFixture(t)
	const n = 16
	var wins, mismatches atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			_, err := f.svc.Patch(0, Patch{RateMaxPerSecond: ptr(100 + i)})
			var mm *RevisionMismatchError
			switch {
			case err == nil:
				wins.Add(1)
			case errors.As(err, &mm) && mm.Current == 1:
				mismatches.Add(1)
			default:
				t.Errorf("unexpected error: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	if wins.Load() != 1 || mismatches.Load() != n-1 {
		t.Fatalf("wins=%d mismatches=%d", wins.Load(), mismatches.Load())
	}
	if got := f.svc.Get(); got.Revision != 1 || f.limiter.MaxPerSecond() != got.RateMaxPerSecond {
		t.Errorf("final snapshot %+v, limiter %d", got, f.limiter.MaxPerSecond())
	}
}

func TestPatch_RateAppliesToLiveLimiterImmediately(t *testing.T) {
	f := newFixture(t)
	for range 5 {
		if !f.limiter.Allow() {
			t.Fatal("call rejected under the default limit")
		}
	}
	if _, err := f.svc.Patch(0, Patch{RateMaxPerSecond: ptr(7)}); err != nil {
		t.Fatal(err)
	}
	// Same epoch second: 5 calls already counted, so two more are allowed, then rejection.
	got := []bool{f.limiter.Allow(), f.limiter.Allow(), f.limiter.Allow()}
	if !slices.Equal(got, []bool{true, true, false}) {
		t.Fatalf("calls 6-8 in the same second = %v, want [true true false]", got)
	}
	f.clock.Advance(time.Second)
	allowed := 0
	for range 10 {
		if f.limiter.Allow() {
			allowed++
		}
	}
	if allowed != 7 {
		t.Errorf("allowed %d calls in a fresh window, want 7", allowed)
	}
}

func TestPatch_ApplyFailureRollsBackSnapshotRateAndEarlierAppliers(t *testing.T) {
	var firstSeen []int64
	first := ApplierFunc(func(next Snapshot) error { firstSeen = append(firstSeen, next.Revision); return nil })
	failing := ApplierFunc(func(Snapshot) error { return errors.New("boom") })
	f := newFixture(t, first, failing)
	before := f.svc.Get()

	_, err := f.svc.Patch(0, Patch{RateMaxPerSecond: ptr(3), SyncQueueEnabled: ptr(false)})
	if !errors.Is(err, ErrApplyFailed) {
		t.Fatalf("err = %v, want ErrApplyFailed", err)
	}
	if f.svc.Get() != before {
		t.Errorf("snapshot after rollback = %+v, want %+v", f.svc.Get(), before)
	}
	if !f.svc.SyncQueueEnabled() {
		t.Error("sync-queue source still serves the rolled-back value")
	}
	if f.limiter.MaxPerSecond() != ratelimit.DefaultMaxPerSecond {
		t.Errorf("limiter = %d after rollback", f.limiter.MaxPerSecond())
	}
	if !slices.Equal(firstSeen, []int64{1, 0}) {
		t.Errorf("first applier saw revisions %v, want [1 0] (apply, then rollback)", firstSeen)
	}
	scrape := scrapeMetrics(t, f.reg)
	for _, line := range []string{
		`controlplane_runtime_config_updates_total{status="failure"} 1`,
		`controlplane_runtime_config_updates_total{status="success"} 0`,
		`controlplane_runtime_config_revision 0`,
		`controlplane_runtime_config_apply_duration_seconds_count 0`,
	} {
		if !strings.Contains(scrape, line+"\n") {
			t.Errorf("scrape lacks %q", line)
		}
	}
	if !strings.Contains(f.logs.String(), "outcome=failure") {
		t.Errorf("failure not logged: %s", f.logs)
	}
	// The restored revision is current again: a patch expecting 0 passes the revision check
	// and fails only in the (still failing) applier.
	if _, err := f.svc.Patch(0, Patch{}); !errors.Is(err, ErrApplyFailed) {
		t.Errorf("patch on the restored revision: %v, want ErrApplyFailed", err)
	}
}

func TestPatch_PanicWhileApplyingRollsBack(t *testing.T) {
	f := newFixture(t, ApplierFunc(func(Snapshot) error { panic("applier exploded") }))
	_, err := f.svc.Patch(0, Patch{RateMaxPerSecond: ptr(9)})
	if !errors.Is(err, ErrApplyFailed) || !strings.Contains(err.Error(), "applier exploded") {
		t.Fatalf("err = %v", err)
	}
	if f.svc.Get().Revision != 0 || f.limiter.MaxPerSecond() != ratelimit.DefaultMaxPerSecond {
		t.Errorf("not rolled back: %+v, limiter %d", f.svc.Get(), f.limiter.MaxPerSecond())
	}
}

func TestPatch_SuccessLogsUpdateEvent(t *testing.T) {
	f := newFixture(t)
	if _, err := f.svc.Patch(0, Patch{}); err != nil {
		t.Fatal(err)
	}
	log := f.logs.String()
	for _, kv := range []string{"event=runtime_config_update", "change_id=1", "from_revision=0", "to_revision=1", "outcome=success"} {
		if !strings.Contains(log, kv) {
			t.Errorf("log lacks %s: %s", kv, log)
		}
	}
}

// syncQueueConfigSource mirrors syncqueue.ConfigSource (declared there by its consumer); it is
// repeated here so these tests do not depend on the sync-queue package.
type syncQueueConfigSource interface {
	SyncQueueEnabled() bool
	SyncQueueAdmissionEnabled() bool
	SyncQueueMaxEstimatedWait() time.Duration
	SyncQueueMaxQueueWait() time.Duration
	SyncQueueRetryAfterSeconds() int
}

func TestSyncQueueSource_ReadsTheLiveSnapshot(t *testing.T) {
	f := newFixture(t)
	var src syncQueueConfigSource = f.svc
	if !src.SyncQueueEnabled() || !src.SyncQueueAdmissionEnabled() || src.SyncQueueMaxEstimatedWait() != 2*time.Second ||
		src.SyncQueueMaxQueueWait() != 2*time.Second || src.SyncQueueRetryAfterSeconds() != 2 {
		t.Fatal("initial values differ from the defaults")
	}
	_, err := f.svc.Patch(0, Patch{
		SyncQueueEnabled: ptr(false), SyncQueueAdmissionEnabled: ptr(false),
		SyncQueueMaxEstimatedWait: ptr(500 * time.Millisecond), SyncQueueMaxQueueWait: ptr(10 * time.Second),
		SyncQueueRetryAfterSeconds: ptr(9),
	})
	if err != nil {
		t.Fatal(err)
	}
	if src.SyncQueueEnabled() || src.SyncQueueAdmissionEnabled() || src.SyncQueueMaxEstimatedWait() != 500*time.Millisecond ||
		src.SyncQueueMaxQueueWait() != 10*time.Second || src.SyncQueueRetryAfterSeconds() != 9 {
		t.Fatal("patched values not visible through the source")
	}
}

func TestMetrics_ScrapedWithReferenceNamesAndMaxDecays(t *testing.T) {
	var clock *fakeClock
	// The applier advances the injected clock so the recorded apply duration is deterministic.
	f := newFixture(t, ApplierFunc(func(Snapshot) error { clock.Advance(250 * time.Millisecond); return nil }))
	clock = f.clock

	initial := scrapeMetrics(t, f.reg)
	for _, line := range []string{
		"# TYPE controlplane_runtime_config_revision gauge",
		"controlplane_runtime_config_revision 0",
		"# TYPE controlplane_runtime_config_updates_total counter",
		`controlplane_runtime_config_updates_total{status="failure"} 0`,
		`controlplane_runtime_config_updates_total{status="success"} 0`,
		"# TYPE controlplane_runtime_config_apply_duration_seconds summary",
		"controlplane_runtime_config_apply_duration_seconds_count 0",
		"controlplane_runtime_config_apply_duration_seconds_sum 0",
		"# TYPE controlplane_runtime_config_apply_duration_seconds_max gauge",
		"controlplane_runtime_config_apply_duration_seconds_max 0",
	} {
		if !strings.Contains(initial, line+"\n") {
			t.Errorf("initial scrape lacks %q", line)
		}
	}

	for rev := int64(0); rev < 2; rev++ {
		if _, err := f.svc.Patch(rev, Patch{}); err != nil {
			t.Fatal(err)
		}
	}
	after := scrapeMetrics(t, f.reg)
	for _, line := range []string{
		"controlplane_runtime_config_revision 2",
		`controlplane_runtime_config_updates_total{status="success"} 2`,
		`controlplane_runtime_config_updates_total{status="failure"} 0`,
		"controlplane_runtime_config_apply_duration_seconds_count 2",
		"controlplane_runtime_config_apply_duration_seconds_sum 0.5",
		"controlplane_runtime_config_apply_duration_seconds_max 0.25",
	} {
		if !strings.Contains(after, line+"\n") {
			t.Errorf("scrape after two patches lacks %q", line)
		}
	}

	f.clock.Advance(2 * time.Minute)
	if s := scrapeMetrics(t, f.reg); !strings.Contains(s, "controlplane_runtime_config_apply_duration_seconds_max 0.25\n") {
		t.Error("max decayed before 3 rotation intervals")
	}
	f.clock.Advance(time.Minute)
	if s := scrapeMetrics(t, f.reg); !strings.Contains(s, "controlplane_runtime_config_apply_duration_seconds_max 0\n") {
		t.Error("max did not decay after 3 rotation intervals")
	}
}

func scrapeMetrics(t *testing.T, g prometheus.Gatherer) string {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(g, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/actuator/prometheus", nil))
	body, err := io.ReadAll(rec.Result().Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

func BenchmarkSyncQueueSource_Reads(b *testing.B) {
	svc, err := New(Deps{Limiter: ratelimit.New(1, nil), SyncQueue: CoreSyncQueueDefaults(), Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if svc.SyncQueueEnabled() || svc.SyncQueueMaxQueueWait() == 0 || svc.SyncQueueRetryAfterSeconds() == 0 {
				b.Fatal("unexpected value")
			}
		}
	})
}
