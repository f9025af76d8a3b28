package autoscaler

import (
	"context"
	"fmt"
	"testing"

	"github.com/nanofaas/control-plane/internal/function"
)

// BenchmarkTick measures one scaler tick over 100 adaptive functions (per-op = one tick).
func BenchmarkTick(b *testing.B) {
	h := &harness{clock: newClock(), replicas: newReplicas(), fns: &fakeLister{}, source: newSource(), disp: &fakeDispatches{}}
	s, err := New(Deps{Functions: h.fns, Replicas: h.replicas, Dispatches: h.disp, Metrics: h.source, Logger: quietLog, Now: h.clock.Now})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 100 {
		sc := internalScaling(2, 2, metric("queue_depth", "5"), metric("rps", "10"))
		sc.ConcurrencyControl = &function.ConcurrencyControlConfig{Mode: ptr(function.ConcurrencyAdaptivePerPod)}
		spec := &function.Spec{Name: fmt.Sprintf("fn%03d", i), Concurrency: ptr(8), ExecutionMode: ptr(function.ModeDeployment), ScalingConfig: sc}
		if err := s.OnRegister(context.Background(), spec); err != nil {
			b.Fatal(err)
		}
		h.fns.regs = append(h.fns.regs, managed(spec))
		h.replicas.setReady(spec.Name, 2)
		h.source.setDepth(spec.Name, 5)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		h.source.takePushes()
		s.tick(ctx)
	}
}
