package registry

import (
	"fmt"
	"sync"
	"testing"

	"github.com/nanofaas/control-plane/internal/function"
)

func reg(name string) *Registered {
	return &Registered{Spec: &function.Spec{Name: name}}
}

func names(list []*Registered) []string {
	out := make([]string, len(list))
	for i, r := range list {
		out[i] = r.Spec.Name
	}
	return out
}

func TestRegistry_PutGetRemoveAndSortedList(t *testing.T) {
	r := New()
	if got := r.List(); len(got) != 0 {
		t.Fatalf("new registry lists %v", names(got))
	}
	for _, n := range []string{"zeta", "Alpha", "alpha", "mid"} {
		r.Put(reg(n))
	}
	if got, want := fmt.Sprint(names(r.List())), "[Alpha alpha mid zeta]"; got != want {
		t.Fatalf("List = %s, want %s (sorted, case-sensitive)", got, want)
	}
	if _, ok := r.Get("ALPHA"); ok {
		t.Fatal("lookup is not case-sensitive")
	}
	replacement := reg("mid")
	r.Put(replacement)
	if got, _ := r.Get("mid"); got != replacement || r.Len() != 4 {
		t.Fatalf("Put did not replace: %p vs %p, len %d", got, replacement, r.Len())
	}
	removed, ok := r.Remove("alpha")
	if !ok || removed.Spec.Name != "alpha" {
		t.Fatalf("Remove = %v, %v", removed, ok)
	}
	if _, ok := r.Remove("alpha"); ok {
		t.Fatal("second Remove succeeded")
	}
	if got, want := fmt.Sprint(names(r.List())), "[Alpha mid zeta]"; got != want {
		t.Fatalf("List = %s, want %s", got, want)
	}
	list := r.List()
	list[0] = nil
	if r.List()[0] == nil {
		t.Fatal("List exposes internal state")
	}
}

func TestRegistry_ReadsAreConsistentUnderConcurrentWrites(t *testing.T) {
	r := New()
	r.Put(reg("stable"))
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 200 {
				n := fmt.Sprintf("w%d-%d", w, i%10)
				r.Put(reg(n))
				r.Remove(n)
			}
		})
	}
	for range 4 {
		wg.Go(func() {
			for range 500 {
				if _, ok := r.Get("stable"); !ok {
					t.Error("stable entry vanished")
					return
				}
				l := r.List()
				for i := 1; i < len(l); i++ {
					if l[i-1].Spec.Name >= l[i].Spec.Name {
						t.Error("List not sorted")
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if r.Len() != 1 {
		t.Fatalf("Len = %d, want 1", r.Len())
	}
}

func TestRegistryGet_DoesNotAllocate(t *testing.T) {
	r := New()
	for i := range 100 {
		r.Put(reg(fmt.Sprintf("fn-%d", i)))
	}
	name := fmt.Sprintf("fn-%d", 42) // not a constant, like a request path
	allocs := testing.AllocsPerRun(1000, func() {
		if _, ok := r.Get(name); !ok {
			t.Fatal("missing")
		}
	})
	if allocs != 0 {
		t.Fatalf("Get allocates %v times per call", allocs)
	}
}

func BenchmarkRegistryGet(b *testing.B) {
	r := New()
	for i := range 1000 {
		r.Put(reg(fmt.Sprintf("fn-%d", i)))
	}
	name := fmt.Sprintf("fn-%d", 500)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok := r.Get(name); !ok {
				b.Fatal("missing")
			}
		}
	})
}
