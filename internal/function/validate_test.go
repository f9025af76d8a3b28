package function

import (
	"reflect"
	"strings"
	"testing"
)

func TestValidate_ReportsReferenceMessages(t *testing.T) {
	valid := func() Spec { return Spec{Name: "echo", Image: "img"} }
	tests := []struct {
		name   string
		modify func(*Spec)
		want   []string
	}{
		{"valid minimal", func(*Spec) {}, nil},
		{"valid with bounds", func(s *Spec) {
			s.TimeoutMs, s.Concurrency, s.QueueSize, s.MaxRetries = ptr(1), ptr(1), ptr(1), ptr(0)
		}, nil},
		{"empty name", func(s *Spec) { s.Name = "" }, []string{"name: must not be blank"}},
		{"whitespace name", func(s *Spec) { s.Name = " \t\n" }, []string{"name: must not be blank"}},
		{"empty image", func(s *Spec) { s.Image = "" }, []string{"image: must not be blank"}},
		{"blank image", func(s *Spec) { s.Image = "   " }, []string{"image: must not be blank"}},
		{"zero timeout", func(s *Spec) { s.TimeoutMs = ptr(0) }, []string{"timeoutMs: must be greater than or equal to 1"}},
		{"zero concurrency", func(s *Spec) { s.Concurrency = ptr(0) }, []string{"concurrency: must be greater than or equal to 1"}},
		{"negative concurrency", func(s *Spec) { s.Concurrency = ptr(-1) }, []string{"concurrency: must be greater than or equal to 1"}},
		{"zero queue", func(s *Spec) { s.QueueSize = ptr(0) }, []string{"queueSize: must be greater than or equal to 1"}},
		{"negative retries", func(s *Spec) { s.MaxRetries = ptr(-1) }, []string{"maxRetries: must be greater than or equal to 0"}},
		{"name with colon (D22)", func(s *Spec) { s.Name = "a:b" },
			[]string{`name: must match "^[a-zA-Z][a-zA-Z0-9._-]{0,62}$"`}},
		{"everything wrong", func(s *Spec) {
			s.Name, s.Image, s.TimeoutMs, s.Concurrency, s.QueueSize, s.MaxRetries = "", "", ptr(0), ptr(0), ptr(0), ptr(-5)
		}, []string{
			"name: must not be blank", "image: must not be blank",
			"timeoutMs: must be greater than or equal to 1", "concurrency: must be greater than or equal to 1",
			"queueSize: must be greater than or equal to 1", "maxRetries: must be greater than or equal to 0",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := valid()
			tt.modify(&s)
			if got := s.Validate(); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Validate() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestValidName_EnforcesPublishedPattern(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"Echo", true},
		{"fn-1.v2_x", true},
		{"a" + strings.Repeat("b", 62), true},  // 63 chars
		{"a" + strings.Repeat("b", 63), false}, // 64 chars
		{"1fn", false},
		{"-fn", false},
		{"_fn", false},
		{"fn name", false},
		{"fn:invoke", false},
		{"fn/x", false},
		{"fné", false},
		{"é", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := ValidName(tt.name); got != tt.ok {
			t.Errorf("ValidName(%q) = %v, want %v", tt.name, got, tt.ok)
		}
	}
}
