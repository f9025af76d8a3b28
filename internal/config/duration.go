package config

import (
	"errors"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// errDurationSyntax is the reason given for any unparsable duration.
var errDurationSyntax = errors.New("not a duration (use e.g. 2s, 500ms, 5m, PT2S, PT0.5S or a number of milliseconds)")

// errDurationRange is the reason given for a duration that does not fit time.Duration (±292 years).
var errDurationRange = errors.New("duration out of range")

// isoDuration is java.time.Duration.parse's grammar: days, hours, minutes and seconds (up to 9
// fractional digits), each optionally signed, case-insensitive. A compiled Regexp is immutable.
var isoDuration = regexp.MustCompile(`^(?i)([-+]?)P(?:([-+]?[0-9]+)D)?(T(?:([-+]?[0-9]+)H)?(?:([-+]?[0-9]+)M)?(?:([-+]?[0-9]+)(?:[.,]([0-9]{0,9}))?S)?)?$`)

// ParseDuration parses a configuration duration the way Spring Boot binds one, and more:
//   - a bare integer is milliseconds ("1500");
//   - a number with a unit: ns, us, µs, ms, s, m, h, d ("2s", "500ms", "5m", "1d"), and any Go
//     duration ("1m30s", "1.5s"); units are case-insensitive;
//   - ISO-8601 as java.time.Duration reads it ("PT2S", "PT0.5S", "PT1M30S", "P1DT2H", "-PT5S").
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errDurationSyntax
	}
	if isInteger(s) {
		ms, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, errDurationRange
		}
		return mulChecked(ms, int64(time.Millisecond))
	}
	body := strings.TrimLeft(s, "+-")
	if body != "" && (body[0] == 'P' || body[0] == 'p') {
		return ParseISODuration(s)
	}
	lower := strings.ToLower(s)
	if days, ok := strings.CutSuffix(lower, "d"); ok && isInteger(days) {
		n, err := strconv.ParseInt(days, 10, 64)
		if err != nil {
			return 0, errDurationRange
		}
		return mulChecked(n, int64(24*time.Hour))
	}
	d, err := time.ParseDuration(lower)
	if err != nil {
		return 0, errDurationSyntax
	}
	return d, nil
}

// ParseISODuration parses only the ISO-8601 form accepted by java.time.Duration.parse ("PT2S",
// "PT0.5S", "PT1M30S", "P2D", "PT-1.5S"); "2s" or a bare number is an error. The runtime-config
// admin API uses this form.
func ParseISODuration(s string) (time.Duration, error) {
	m := isoDuration.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, errDurationSyntax
	}
	negate, days, tPart, hours, mins, secs, frac := m[1] == "-", m[2], m[3], m[4], m[5], m[6], m[7]
	if days == "" && hours == "" && mins == "" && secs == "" {
		return 0, errDurationSyntax // "P", "PT" or "P...T" with nothing after T
	}
	if strings.EqualFold(tPart, "T") {
		return 0, errDurationSyntax
	}
	var total int64
	for _, part := range []struct {
		text string
		unit time.Duration
	}{{days, 24 * time.Hour}, {hours, time.Hour}, {mins, time.Minute}, {secs, time.Second}} {
		if part.text == "" {
			continue
		}
		n, err := strconv.ParseInt(part.text, 10, 64)
		if err != nil {
			return 0, errDurationRange
		}
		v, err := mulChecked(n, int64(part.unit))
		if err != nil {
			return 0, err
		}
		if total, err = addChecked(total, int64(v)); err != nil {
			return 0, err
		}
	}
	if frac != "" {
		ns, _ := strconv.ParseInt((frac + "000000000")[:9], 10, 64) // at most 9 digits: fits
		if strings.HasPrefix(secs, "-") {
			ns = -ns
		}
		var err error
		if total, err = addChecked(total, ns); err != nil {
			return 0, err
		}
	}
	if negate {
		if total == math.MinInt64 {
			return 0, errDurationRange
		}
		total = -total
	}
	return time.Duration(total), nil
}

// FormatISODuration formats d as java.time.Duration.toString does: "PT2S", "PT0.5S", "PT1M30S",
// "PT48H", "PT0S", "PT-0.5S", "PT-1M-30S".
func FormatISODuration(d time.Duration) string {
	// Java keeps (seconds, nanos) with nanos in [0, 1e9): floor division.
	seconds := int64(d) / int64(time.Second)
	nanos := int64(d) % int64(time.Second)
	if nanos < 0 {
		nanos += int64(time.Second)
		seconds--
	}
	if seconds == 0 && nanos == 0 {
		return "PT0S"
	}
	effective := seconds
	if seconds < 0 && nanos > 0 {
		effective++
	}
	hours := effective / 3600
	minutes := (effective % 3600) / 60
	secs := effective % 60
	b := make([]byte, 0, 24)
	b = append(b, "PT"...)
	if hours != 0 {
		b = strconv.AppendInt(b, hours, 10)
		b = append(b, 'H')
	}
	if minutes != 0 {
		b = strconv.AppendInt(b, minutes, 10)
		b = append(b, 'M')
	}
	if secs == 0 && nanos == 0 && len(b) > 2 {
		return string(b)
	}
	if seconds < 0 && nanos > 0 && secs == 0 {
		b = append(b, "-0"...)
	} else {
		b = strconv.AppendInt(b, secs, 10)
	}
	if nanos > 0 {
		n := nanos
		if seconds < 0 {
			n = int64(time.Second) - nanos
		}
		digits := strings.TrimRight(strconv.FormatInt(n+int64(time.Second), 10)[1:], "0")
		b = append(b, '.')
		b = append(b, digits...)
	}
	return string(append(b, 'S'))
}

func isInteger(s string) bool {
	if s != "" && (s[0] == '+' || s[0] == '-') {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func mulChecked(n, unit int64) (time.Duration, error) {
	if n > math.MaxInt64/unit || n < math.MinInt64/unit {
		return 0, errDurationRange
	}
	return time.Duration(n * unit), nil
}

func addChecked(a, b int64) (int64, error) {
	if (b > 0 && a > math.MaxInt64-b) || (b < 0 && a < math.MinInt64-b) {
		return 0, errDurationRange
	}
	return a + b, nil
}
