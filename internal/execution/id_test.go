package execution

import (
	"regexp"
	"sync"
	"testing"
)

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestIDGenerator_TenThousandIDsAreCanonicalV4AndUnique(t *testing.T) {
	g := NewIDGenerator(nil)
	seen := make(map[string]struct{}, 10_000)
	for i := 0; i < 10_000; i++ {
		id := g.NewID()
		if !uuidV4.MatchString(id) {
			t.Fatalf("id %q is not a lower-case canonical UUID v4", id)
		}
		if _, dup := seen[id]; dup {
			t.Fatalf("duplicate id %q after %d ids", id, i)
		}
		seen[id] = struct{}{}
	}
}

func TestIDGenerator_ConcurrentCallersGetUniqueIDs(t *testing.T) {
	g := NewIDGenerator(nil)
	const workers, per = 8, 1000
	out := make([][]string, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range per {
				out[w] = append(out[w], g.NewID())
			}
		}()
	}
	wg.Wait()
	seen := make(map[string]struct{}, workers*per)
	for _, ids := range out {
		for _, id := range ids {
			if _, dup := seen[id]; dup {
				t.Fatalf("duplicate id %q", id)
			}
			seen[id] = struct{}{}
		}
	}
}

func TestIDGenerator_SetsVersionAndVariantBitsWhateverTheSource(t *testing.T) {
	tests := []struct {
		name string
		src  uint64
		want string
	}{
		{"all zeros", 0, "00000000-0000-4000-8000-000000000000"},
		{"all ones", ^uint64(0), "ffffffff-ffff-4fff-bfff-ffffffffffff"},
		{"pattern", 0x0123456789abcdef, "01234567-89ab-4def-8123-456789abcdef"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewIDGenerator(func() uint64 { return tt.src })
			if got := g.NewID(); got != tt.want {
				t.Fatalf("NewID() = %q, want %q", got, tt.want)
			}
		})
	}
}
