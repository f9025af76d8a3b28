package syncqueue

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nanofaas/control-plane/internal/metrics"
)

// meterSet marks which per-function meters exist. Like Micrometer's, they appear on first use:
// the depth gauge on register or admission, each counter on its first increment, the wait timer
// on the first dispatch.
type meterSet uint8

const (
	meterDepth meterSet = 1 << iota
	meterAdmitted
	meterRejected
	meterTimedOut
	meterWait
)

// waitTimer is a Micrometer Timer without percentiles: count, total and decaying max, exported
// in seconds as `<name>_count`, `<name>_sum` and gauge `<name>_max`.
type waitTimer struct {
	count uint64
	sum   time.Duration
	max   *metrics.DecayingMax
}

func newWaitTimer(now time.Time) waitTimer { return waitTimer{max: metrics.NewDecayingMax(now)} }

func (t *waitTimer) record(d time.Duration, now time.Time) {
	if d < 0 {
		return // Micrometer ignores negative durations
	}
	t.count++
	t.sum += d
	t.max.Record(d, now)
}

// Metric names (spec-modules §2, §10).
const (
	nameDepth    = "sync_queue_depth"
	nameWait     = "sync_queue_wait_seconds"
	nameWaitMax  = "sync_queue_wait_seconds_max"
	nameAdmitted = "sync_queue_admitted_total"
	nameRejected = "sync_queue_rejected_total"
	nameTimedOut = "sync_queue_timedout_total"
)

// collector exports the module's meters. The reference exports sync_queue_depth and
// sync_queue_wait_seconds both without labels and with `function` in one family; client_golang's
// registry refuses two descriptors of one name with different label names, so this collector is
// unchecked (Describe sends nothing) and the gatherer accepts the mixed family.
type collector struct {
	s *Service

	depth, depthFn     *prometheus.Desc
	wait, waitFn       *prometheus.Desc
	waitMax, waitMaxFn *prometheus.Desc
	admitted           *prometheus.Desc
	rejected           *prometheus.Desc
	timedOut           *prometheus.Desc
}

func newCollector(s *Service) *collector {
	fn := []string{"function"}
	const (
		depthHelp = "Sync invocations waiting in the sync queue."
		waitHelp  = "Time sync invocations waited in the sync queue before dispatch, in seconds."
		maxHelp   = "Decaying maximum of the sync-queue wait, in seconds."
	)
	return &collector{
		s:         s,
		depth:     prometheus.NewDesc(nameDepth, depthHelp, nil, nil),
		depthFn:   prometheus.NewDesc(nameDepth, depthHelp, fn, nil),
		wait:      prometheus.NewDesc(nameWait, waitHelp, nil, nil),
		waitFn:    prometheus.NewDesc(nameWait, waitHelp, fn, nil),
		waitMax:   prometheus.NewDesc(nameWaitMax, maxHelp, nil, nil),
		waitMaxFn: prometheus.NewDesc(nameWaitMax, maxHelp, fn, nil),
		admitted:  prometheus.NewDesc(nameAdmitted, "Sync invocations admitted into the sync queue.", fn, nil),
		rejected:  prometheus.NewDesc(nameRejected, "Sync invocations rejected by the sync queue (depth or estimated wait).", fn, nil),
		timedOut:  prometheus.NewDesc(nameTimedOut, "Sync invocations that exceeded the sync-queue wait limit.", fn, nil),
	}
}

// Describe sends nothing: the collector is unchecked (see collector).
func (c *collector) Describe(chan<- *prometheus.Desc) {}

// meterValues is one function's meters copied under the queue lock.
type meterValues struct {
	name                         string
	created                      meterSet
	depth                        int
	admitted, rejected, timedOut uint64
	waitCount                    uint64
	waitSum, waitMax             time.Duration
}

// Collect copies the values under the queue lock and sends them after releasing it, so a slow
// scrape never holds up admissions.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	now := s.now()
	s.mu.Lock()
	depth := s.q.len()
	gw := meterValues{waitCount: s.wait.count, waitSum: s.wait.sum, waitMax: s.wait.max.Poll(now)}
	fns := make([]meterValues, 0, len(s.fns))
	for name, st := range s.fns {
		if st.removed || st.created == 0 {
			continue
		}
		fns = append(fns, meterValues{
			name: name, created: st.created, depth: st.queued,
			admitted: st.admitted, rejected: st.rejected, timedOut: st.timedOut,
			waitCount: st.wait.count, waitSum: st.wait.sum, waitMax: st.wait.max.Poll(now),
		})
	}
	s.mu.Unlock()

	ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(depth))
	ch <- prometheus.MustNewConstSummary(c.wait, gw.waitCount, gw.waitSum.Seconds(), nil)
	ch <- prometheus.MustNewConstMetric(c.waitMax, prometheus.GaugeValue, gw.waitMax.Seconds())
	for i := range fns {
		v := &fns[i]
		if v.created&meterDepth != 0 {
			ch <- prometheus.MustNewConstMetric(c.depthFn, prometheus.GaugeValue, float64(v.depth), v.name)
		}
		if v.created&meterAdmitted != 0 {
			ch <- prometheus.MustNewConstMetric(c.admitted, prometheus.CounterValue, float64(v.admitted), v.name)
		}
		if v.created&meterRejected != 0 {
			ch <- prometheus.MustNewConstMetric(c.rejected, prometheus.CounterValue, float64(v.rejected), v.name)
		}
		if v.created&meterTimedOut != 0 {
			ch <- prometheus.MustNewConstMetric(c.timedOut, prometheus.CounterValue, float64(v.timedOut), v.name)
		}
		if v.created&meterWait != 0 {
			ch <- prometheus.MustNewConstSummary(c.waitFn, v.waitCount, v.waitSum.Seconds(), nil, v.name)
			ch <- prometheus.MustNewConstMetric(c.waitMaxFn, prometheus.GaugeValue, v.waitMax.Seconds(), v.name)
		}
	}
}
