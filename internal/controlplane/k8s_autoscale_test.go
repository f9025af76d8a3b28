//go:build !nok8s

package controlplane

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// k8sasLog records every log record of an app, so a test can see the autoscaler's decisions.
type k8sasLog struct {
	mu      sync.Mutex
	records []k8sasRecord
}

type k8sasRecord struct {
	msg   string
	attrs map[string]string
}

// mark returns a position in the log for countSince.
func (l *k8sasLog) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.records)
}

// countSince returns how many records logged after mark satisfy match.
func (l *k8sasLog) countSince(mark int, match func(k8sasRecord) bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.records[mark:] {
		if match(r) {
			n++
		}
	}
	return n
}

// waitFor polls until at least n records logged after mark satisfy match.
func (l *k8sasLog) waitFor(t *testing.T, mark, n int, what string, match func(k8sasRecord) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for l.countSince(mark, match) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of %d log records within 10 s", what, l.countSince(mark, match), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// k8sasSkipped matches the scaler's record of a scale action of fn from → to that its cooldown
// held back (to = "" matches any target above from).
func k8sasSkipped(fn string, from int32, to string) func(k8sasRecord) bool {
	want := strconv.Itoa(int(from))
	return func(r k8sasRecord) bool {
		if !strings.Contains(r.msg, "cooldown") || r.attrs["function"] != fn || r.attrs["from"] != want {
			return false
		}
		if to != "" {
			return r.attrs["to"] == to
		}
		n, err := strconv.Atoi(r.attrs["to"])
		return err == nil && n > int(from)
	}
}

// k8sasActions matches the scaler's record of a scale action of fn in direction ("up", "down").
func k8sasActions(fn, direction string) func(k8sasRecord) bool {
	return func(r k8sasRecord) bool { return r.attrs["function"] == fn && r.attrs["direction"] == direction }
}

// k8sasHandler is a slog.Handler appending to a k8sasLog at every level (groups are flattened).
type k8sasHandler struct {
	log   *k8sasLog
	attrs []slog.Attr
}

func (k8sasHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h k8sasHandler) Handle(_ context.Context, r slog.Record) error {
	rec := k8sasRecord{msg: r.Message, attrs: make(map[string]string, len(h.attrs)+r.NumAttrs())}
	for _, a := range h.attrs {
		rec.attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.String()
		return true
	})
	h.log.mu.Lock()
	h.log.records = append(h.log.records, rec)
	h.log.mu.Unlock()
	return nil
}

func (h k8sasHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return k8sasHandler{log: h.log, attrs: append(slices.Clip(h.attrs), as...)}
}

func (h k8sasHandler) WithGroup(string) slog.Handler { return h }

// k8sasStartApp is startApp with the app's log recorded.
func k8sasStartApp(t *testing.T, args ...string) (api, mgmt string, logs *k8sasLog) {
	t.Helper()
	logs = &k8sasLog{}
	api, mgmt = startAppLogging(t, slog.New(k8sasHandler{log: logs}), args...)
	return api, mgmt, logs
}

// k8sasSetReady plays the Deployment controller and kubelet: it writes replicas, ready and
// available counts through the Deployment's status subresource.
func k8sasSetReady(t *testing.T, cs kubernetes.Interface, ns, name string, n int32) {
	t.Helper()
	deployments := cs.AppsV1().Deployments(ns)
	for attempt := 0; ; attempt++ {
		dep, err := deployments.Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get %s: %v", name, err)
		}
		dep.Status.Replicas, dep.Status.UpdatedReplicas = n, n
		dep.Status.ReadyReplicas, dep.Status.AvailableReplicas = n, n
		_, err = deployments.UpdateStatus(t.Context(), dep, metav1.UpdateOptions{})
		if err == nil {
			return
		}
		if !apierrors.IsConflict(err) || attempt == 20 {
			t.Fatalf("update status of %s: %v", name, err)
		}
	}
}

// k8sasSpecReplicas reads spec.replicas through the Deployment's scale subresource.
func k8sasSpecReplicas(t *testing.T, cs kubernetes.Interface, ns, name string) int32 {
	t.Helper()
	scale, err := cs.AppsV1().Deployments(ns).GetScale(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get scale of %s: %v", name, err)
	}
	return scale.Spec.Replicas
}

// k8sasWaitReplicas polls until the Deployment's spec.replicas is want.
func k8sasWaitReplicas(t *testing.T, cs kubernetes.Interface, ns, name string, want int32, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := k8sasSpecReplicas(t, cs, ns, name)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has spec.replicas %d after %v, want %d", name, got, within, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// k8sasAwaitLookups waits until no DNS lookup is running. Dispatches to a function's in-cluster
// Service name start lookups that the resolver finishes in the background after the dial is
// abandoned; where the DNS server drops queries that takes up to the resolver's timeout, and
// goleak would report those goroutines.
func k8sasAwaitLookups(t *testing.T) {
	t.Helper()
	buf := make([]byte, 1<<20)
	deadline := time.Now().Add(30 * time.Second)
	for {
		n := goruntime.Stack(buf, true)
		if n == len(buf) {
			buf = make([]byte, 2*len(buf))
			continue
		}
		if !bytes.Contains(buf[:n], []byte("net.(*Resolver).")) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("DNS lookups still running 30 s after the test")
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// k8sasLoad enqueues an invocation of fn every 50 ms until the returned stop is called (a steady
// rate that DNS servers limiting queries per second still answer). stop waits for the load
// goroutine to end and returns how many were accepted; the test's cleanup also calls it.
func k8sasLoad(t *testing.T, api, fn string) (stop func() int) {
	quit := make(chan struct{})
	done := make(chan struct{})
	accepted := 0
	go func() {
		defer close(done)
		client := &http.Client{Timeout: 5 * time.Second}
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
			}
			resp, err := client.Post(api+"/v1/functions/"+fn+":enqueue", "application/json", strings.NewReader(`{"input":1}`))
			if err != nil {
				continue
			}
			resp.Body.Close()
			if resp.StatusCode == 202 {
				accepted++
			}
		}
	}()
	var once sync.Once
	stop = func() int {
		once.Do(func() { close(quit) })
		<-done
		return accepted
	}
	t.Cleanup(func() { stop() })
	return stop
}

// TestK8sAutoscaleE2E_InternalScalerScalesARealDeploymentUpAndDown runs the control plane's
// internal autoscaler against a real kube-apiserver with an INTERNAL DEPLOYMENT function whose
// ready replicas the test reports through the Deployment's status subresource, as the Deployment
// controller would. The cooldowns are hard-coded (30 s up, 60 s down; the nanofaas.scaling
// cooldown properties are unused, as in the reference), so the test checks the actions that must
// happen at once and the ones the cooldowns must hold back, using the scaler's log to know that
// it evaluated the state the test set up:
//   - steady load (enqueues; their dispatches fail fast, or pile up, as the function's in-cluster
//     Service is not reachable from the test) raises the rps or queue_depth signal far over its
//     target: the Deployment is scaled up from its one ready replica;
//   - while the load lasts and only some of the new replicas are ready, a further scale-up is held
//     back by the up cooldown and nothing is scaled down;
//   - once the load stops (all replicas ready) it is scaled down to minReplicas at once;
//   - an operator then scales it to 3, ready, with no load: the down signal is held back by the
//     down cooldown and spec.replicas stays 3.
func TestK8sAutoscaleE2E_InternalScalerScalesARealDeploymentUpAndDown(t *testing.T) {
	cluster := kube.Cluster(t)
	ns := cluster.Namespace(t)
	cs := cluster.Clientset
	t.Setenv("KUBECONFIG", cluster.Kubeconfig)
	t.Cleanup(func() { k8sasAwaitLookups(t) }) // runs after the app has stopped
	api, _, logs := k8sasStartApp(t,
		"--nanofaas.deployment.default-backend=k8s",
		"--nanofaas.k8s.namespace="+ns,
		"--nanofaas.image-validator.enabled=false",
		"--nanofaas.scaling.poll-interval-ms=400",
		// A short connect timeout bounds each dispatch to the unreachable Service name.
		"--nanofaas.http-client.connect-timeout-ms=200",
	)
	const dep = "fn-scaled"
	spec := `{"name":"scaled","image":"registry.example/scaled:1","concurrency":4,"queueSize":5,"maxRetries":1,"timeoutMs":500,` +
		`"scalingConfig":{"strategy":"INTERNAL","minReplicas":1,"maxReplicas":4,` +
		`"metrics":[{"type":"rps","target":"1"},{"type":"queue_depth","target":"1"}]}}`
	if code, body := call(t, "POST", api+"/v1/functions", spec); code != 201 {
		t.Fatalf("register = %d %s", code, body)
	}
	if got := k8sasSpecReplicas(t, cs, ns, dep); got != 1 {
		t.Fatalf("initial spec.replicas = %d, want minReplicas 1", got)
	}
	k8sasSetReady(t, cs, ns, dep, 1)

	stop := k8sasLoad(t, api, "scaled")
	var scaled int32
	deadline := time.Now().Add(10 * time.Second)
	for scaled = k8sasSpecReplicas(t, cs, ns, dep); scaled <= 1; scaled = k8sasSpecReplicas(t, cs, ns, dep) {
		if time.Now().After(deadline) {
			t.Fatal("the autoscaler did not scale up under load")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("scaled up to %d replicas", scaled)

	// Under load with one replica fewer ready than requested, the scaler wants more (up to
	// maxReplicas) but its last scale-up is younger than the up cooldown; nothing is scaled down.
	mark := logs.mark()
	k8sasSetReady(t, cs, ns, dep, scaled-1)
	logs.waitFor(t, mark, 2, "scale-ups held back under load", k8sasSkipped("scaled", scaled-1, ""))
	if got := k8sasSpecReplicas(t, cs, ns, dep); got != scaled {
		t.Fatalf("spec.replicas = %d under load, want %d", got, scaled)
	}

	if n := stop(); n == 0 {
		t.Fatal("no invocation was accepted during the load")
	}
	k8sasSetReady(t, cs, ns, dep, scaled)
	k8sasWaitReplicas(t, cs, ns, dep, 1, 10*time.Second)
	k8sasSetReady(t, cs, ns, dep, 1)

	// An operator scales back to 3 and the replicas become ready; with no load the scaler wants
	// 1, but its last scale-down is younger than the down cooldown.
	mark = logs.mark()
	if code, body := call(t, "PUT", api+"/v1/functions/scaled/replicas", `{"replicas":3}`); code != 200 || body != `{"function":"scaled","replicas":3}` {
		t.Fatalf("replicas = %d %s", code, body)
	}
	k8sasSetReady(t, cs, ns, dep, 3)
	logs.waitFor(t, mark, 2, "scale-downs held back by the cooldown", k8sasSkipped("scaled", 3, "1"))
	if got := k8sasSpecReplicas(t, cs, ns, dep); got != 3 {
		t.Errorf("spec.replicas = %d within the scale-down cooldown, want 3", got)
	}
	for direction, want := range map[string]int{"up": 1, "down": 1} {
		if n := logs.countSince(0, k8sasActions("scaled", direction)); n != want {
			t.Errorf("%d scale-%s actions logged, want %d", n, direction, want)
		}
	}
}
