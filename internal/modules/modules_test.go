package modules

import (
	"slices"
	"strings"
	"testing"
)

func TestParse_SelectsModules(t *testing.T) {
	every := Known()
	tests := []struct {
		name string
		csv  string
		want []string
	}{
		{"empty means all", "", every},
		{"blank means all", "  \t ", every},
		{"all", "all", every},
		{"all with spaces", "  all ", every},
		{"all combined with names is still all", "all,autoscaler", every},
		{"none is core only", "none", []string{}},
		{"none twice", "none, none", []string{}},
		{"single module", "autoscaler", []string{Autoscaler}},
		{"whitespace around names", " autoscaler ,\truntime-config ", []string{Autoscaler, RuntimeConfig}},
		{"duplicates are harmless", "autoscaler,autoscaler", []string{Autoscaler}},
		{"empty elements are skipped", "autoscaler,,build-metadata,", []string{Autoscaler, BuildMetadata}},
		{"sync-queue implies async-queue", "sync-queue", []string{AsyncQueue, SyncQueue}},
		{"image-validator implies k8s provider", "image-validator", []string{ImageValidator, K8sDeploymentProvider}},
		{"async-queue alone does not imply sync-queue", "async-queue", []string{AsyncQueue}},
		{"k8s provider alone does not imply validator", "k8s-deployment-provider", []string{K8sDeploymentProvider}},
		{"container provider", "container-deployment-provider", []string{ContainerDeploymentProvider}},
		{"process provider", "process-deployment-provider", []string{ProcessDeploymentProvider}},
		{"every name listed", strings.Join(every, ","), every},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse(tc.csv)
			if err != nil {
				t.Fatalf("Parse(%q) error: %v", tc.csv, err)
			}
			if got := s.Names(); !slices.Equal(got, tc.want) {
				t.Fatalf("Parse(%q).Names() = %v, want %v", tc.csv, got, tc.want)
			}
			if s.Len() != len(tc.want) {
				t.Fatalf("Len() = %d, want %d", s.Len(), len(tc.want))
			}
			for _, n := range every {
				if s.Has(n) != slices.Contains(tc.want, n) {
					t.Fatalf("Has(%q) = %v, want %v", n, s.Has(n), !s.Has(n))
				}
			}
		})
	}
}

func TestParse_RejectsInvalidSelections(t *testing.T) {
	tests := []struct {
		name         string
		csv          string
		wantContains []string
	}{
		{"unknown name", "autoscaler,foo", []string{`"foo"`, "valid modules:", "async-queue", "process-deployment-provider", `"all"`, `"none"`}},
		{"several unknown names", "foo,bar", []string{`"foo", "bar"`, "modules"}},
		{"names are case-sensitive", "Autoscaler", []string{`"Autoscaler"`}},
		{"none with a module", "none,autoscaler", []string{`"none" cannot be combined`}},
		{"none with all", "all, none", []string{`"none" cannot be combined`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.csv)
			if err == nil {
				t.Fatalf("Parse(%q) succeeded, want error", tc.csv)
			}
			for _, want := range tc.wantContains {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestHas_UnknownAndKeywordNamesAreNeverSelected(t *testing.T) {
	for _, n := range []string{"", "foo", KeywordAll, KeywordNone} {
		if All().Has(n) {
			t.Errorf("All().Has(%q) = true, want false", n)
		}
	}
}

func TestString_RoundTripsThroughParse(t *testing.T) {
	for _, csv := range []string{"all", "none", "sync-queue", "image-validator,autoscaler", "build-metadata"} {
		s, err := Parse(csv)
		if err != nil {
			t.Fatalf("Parse(%q): %v", csv, err)
		}
		back, err := Parse(s.String())
		if err != nil {
			t.Fatalf("Parse(%q) of String(): %v", s.String(), err)
		}
		if back != s {
			t.Errorf("Parse(%q).String() = %q reads back as %v", csv, s.String(), back.Names())
		}
	}
}

func TestString_Formats(t *testing.T) {
	if got := None().String(); got != "none" {
		t.Errorf("None().String() = %q, want none", got)
	}
	s, _ := Parse("sync-queue")
	if got := s.String(); got != "async-queue,sync-queue" {
		t.Errorf("String() = %q, want async-queue,sync-queue", got)
	}
	if got := All().String(); got != strings.Join(Known(), ",") {
		t.Errorf("All().String() = %q", got)
	}
}

func TestKnown_IsSortedAndComplete(t *testing.T) {
	k := Known()
	if !slices.IsSorted(k) {
		t.Fatalf("Known() not sorted: %v", k)
	}
	want := []string{AsyncQueue, SyncQueue, Autoscaler, RuntimeConfig, ImageValidator,
		K8sDeploymentProvider, ContainerDeploymentProvider, ProcessDeploymentProvider, BuildMetadata}
	slices.Sort(want)
	if !slices.Equal(k, want) {
		t.Fatalf("Known() = %v, want %v", k, want)
	}
	k[0] = "mutated"
	if Known()[0] != AsyncQueue {
		t.Fatal("Known() exposes internal state")
	}
}

func TestZeroValue_IsCoreOnly(t *testing.T) {
	var s Set
	if s != None() || s.Len() != 0 || s.Has(AsyncQueue) {
		t.Fatalf("zero Set = %v, want empty", s.Names())
	}
}
