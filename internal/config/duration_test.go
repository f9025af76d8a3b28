package config

import (
	"testing"
	"time"
)

func TestParseDuration_AcceptsSpringGoAndISOForms(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"2s", 2 * time.Second},
		{"500ms", 500 * time.Millisecond},
		{"5m", 5 * time.Minute},
		{"1h", time.Hour},
		{"1d", 24 * time.Hour},
		{"2S", 2 * time.Second},
		{"10MS", 10 * time.Millisecond},
		{"100us", 100 * time.Microsecond},
		{"7ns", 7},
		{"1m30s", 90 * time.Second},
		{"1.5s", 1500 * time.Millisecond},
		{" 2s ", 2 * time.Second},
		{"1500", 1500 * time.Millisecond},
		{"0", 0},
		{"+20", 20 * time.Millisecond},
		{"-20", -20 * time.Millisecond},
		{"PT2S", 2 * time.Second},
		{"PT0.5S", 500 * time.Millisecond},
		{"PT0,25S", 250 * time.Millisecond},
		{"PT1M30S", 90 * time.Second},
		{"PT1H", time.Hour},
		{"P1D", 24 * time.Hour},
		{"P1DT2H3M4.000000005S", 26*time.Hour + 3*time.Minute + 4*time.Second + 5},
		{"pt2s", 2 * time.Second},
		{"-PT5S", -5 * time.Second},
		{"+PT5S", 5 * time.Second},
		{"PT-0.5S", -500 * time.Millisecond},
		{"PT-1M-30S", -90 * time.Second},
		{"-PT-5S", 5 * time.Second},
		{"PT0S", 0},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseDuration(tc.in)
			if err != nil {
				t.Fatalf("ParseDuration(%q) error: %v", tc.in, err)
			}
			if got != tc.want {
				t.Fatalf("ParseDuration(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseDuration_RejectsGarbage(t *testing.T) {
	tests := []struct {
		in        string
		wantRange bool
	}{
		{"", false},
		{"   ", false},
		{"abc", false},
		{"2x", false},
		{"1.5", false},
		{"s", false},
		{"P", false},
		{"PT", false},
		{"P1DT", false},
		{"PT1.5M", false},
		{"PT1S2M", false},
		{"PT0.1234567891S", false},
		{"2 s", false},
		{"99999999999999999999", true},
		{"9999999999999999", true},
		{"999999999d", true},
		{"P999999999D", true},
		{"PT9223372036854775807S", true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseDuration(tc.in)
			if err == nil {
				t.Fatalf("ParseDuration(%q) = %v, want error", tc.in, got)
			}
			if isRange := err == errDurationRange; isRange != tc.wantRange {
				t.Fatalf("ParseDuration(%q) error %q, want range error: %v", tc.in, err, tc.wantRange)
			}
		})
	}
}

func TestParseISODuration_RejectsNonISOForms(t *testing.T) {
	for _, in := range []string{"2s", "1500", "500ms", "PT", "T2S", ""} {
		if d, err := ParseISODuration(in); err == nil {
			t.Errorf("ParseISODuration(%q) = %v, want error", in, d)
		}
	}
	if d, err := ParseISODuration("PT0.5S"); err != nil || d != 500*time.Millisecond {
		t.Fatalf("ParseISODuration(PT0.5S) = %v, %v", d, err)
	}
}

// Expected strings are java.time.Duration.toString() outputs.
func TestFormatISODuration_MatchesJavaToString(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "PT0S"},
		{2 * time.Second, "PT2S"},
		{500 * time.Millisecond, "PT0.5S"},
		{90 * time.Second, "PT1M30S"},
		{time.Minute, "PT1M"},
		{time.Hour, "PT1H"},
		{48 * time.Hour, "PT48H"},
		{time.Hour + time.Second, "PT1H1S"},
		{1, "PT0.000000001S"},
		{1500 * time.Millisecond, "PT1.5S"},
		{123456789 * time.Microsecond, "PT2M3.456789S"},
		{-500 * time.Millisecond, "PT-0.5S"},
		{-1500 * time.Millisecond, "PT-1.5S"},
		{-90 * time.Second, "PT-1M-30S"},
		{-time.Hour, "PT-1H"},
		{-(time.Minute + 500*time.Millisecond), "PT-1M-0.5S"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if got := FormatISODuration(tc.in); got != tc.want {
				t.Fatalf("FormatISODuration(%v) = %q, want %q", tc.in, got, tc.want)
			}
			back, err := ParseISODuration(tc.want)
			if err != nil || back != tc.in {
				t.Fatalf("ParseISODuration(%q) = %v, %v; want %v", tc.want, back, err, tc.in)
			}
		})
	}
}
