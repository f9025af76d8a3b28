package process

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"sync"
)

// Output retention limits.
const (
	outputTailBytes   = 1 << 20 // kept per replica
	maxLoggedLine     = 16 << 10
	errorTailLines    = 20
	errorTailMaxBytes = 4 << 10
)

// outputLog receives a replica's merged stdout/stderr: it keeps the last outputTailBytes (for
// error messages) and writes every line to the log tagged with function and replica index.
// Its memory grows with the output up to the limit, then stays a fixed ring.
type outputLog struct {
	logger *slog.Logger

	mu      sync.Mutex
	ring    []byte
	pos     int // next write position once full
	full    bool
	partial []byte // an unterminated last line, logged when complete or too long
}

func newOutputLog(logger *slog.Logger) *outputLog { return &outputLog{logger: logger} }

// Write implements io.Writer; it never fails.
func (o *outputLog) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.keep(p)
	o.logLines(p)
	return len(p), nil
}

func (o *outputLog) keep(p []byte) {
	if len(p) >= outputTailBytes {
		p = p[len(p)-outputTailBytes:]
	}
	if !o.full {
		room := outputTailBytes - len(o.ring)
		if len(p) < room {
			o.ring = append(o.ring, p...)
			return
		}
		o.ring = append(o.ring, p[:room]...)
		p = p[room:]
		o.full, o.pos = true, 0
	}
	for len(p) > 0 {
		n := copy(o.ring[o.pos:], p)
		p = p[n:]
		o.pos = (o.pos + n) % outputTailBytes
	}
}

func (o *outputLog) logLines(p []byte) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			o.partial = append(o.partial, p...)
			if len(o.partial) >= maxLoggedLine {
				o.emit(o.partial)
				o.partial = o.partial[:0]
			}
			return
		}
		if len(o.partial) > 0 {
			o.partial = append(o.partial, p[:i]...)
			o.emit(o.partial)
			o.partial = o.partial[:0]
		} else {
			o.emit(p[:i])
		}
		p = p[i+1:]
	}
}

func (o *outputLog) emit(line []byte) {
	line = bytes.TrimRight(line, "\r")
	o.logger.Info("function output", "line", string(line))
}

// flush logs an unterminated last line (called once the process has exited).
func (o *outputLog) flush() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.partial) > 0 {
		o.emit(o.partial)
		o.partial = o.partial[:0]
	}
}

// Bytes returns the retained output, oldest first.
func (o *outputLog) Bytes() []byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.full {
		return bytes.Clone(o.ring)
	}
	out := make([]byte, 0, outputTailBytes)
	out = append(out, o.ring[o.pos:]...)
	return append(out, o.ring[:o.pos]...)
}

// lastLines returns up to n last non-empty lines of the retained output (at most
// errorTailMaxBytes), for error messages.
func (o *outputLog) lastLines(n int) string {
	return tailLines(o.Bytes(), n)
}

func tailLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\r\n\t "), "\n")
	kept := make([]string, 0, n)
	for i := len(lines) - 1; i >= 0 && len(kept) < n; i-- {
		if l := strings.TrimRight(lines[i], "\r"); strings.TrimSpace(l) != "" {
			kept = append(kept, l)
		}
	}
	slices.Reverse(kept)
	s := strings.Join(kept, "\n")
	if len(s) > errorTailMaxBytes {
		s = "…" + s[len(s)-errorTailMaxBytes:]
	}
	return s
}

// withOutput appends the output tail to a failure message.
func withOutput(msg, tail string) string {
	if tail == "" {
		return msg + "; no output"
	}
	return msg + "; last output:\n" + tail
}
