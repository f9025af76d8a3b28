package container

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// DefaultCLITimeout bounds one CLI command (spec-modules §7 "CLI executor").
const DefaultCLITimeout = 2 * time.Minute

// Exit codes the executor makes up when the command has none of its own.
const (
	exitTimedOut   = 124
	exitSpawnError = 1
)

// maxOutput is how much of a command's output is kept: the tail, where the error is (a `run`
// that pulls an image prints its progress first).
const maxOutput = 64 << 10

// cliResult is a finished CLI command: its exit code and merged stdout+stderr, trimmed.
type cliResult struct {
	exitCode int
	output   string
}

func (r cliResult) ok() bool { return r.exitCode == 0 }

// cli runs container-engine commands (the reference's CLI executor): stderr merged into stdout,
// killed after timeout (exit 124 "Timed out after <ms>ms[: output]"), a spawn failure is exit 1
// with the error message. The command runs in its own process group so a timeout also kills
// helpers it started.
type cli struct {
	path    string
	env     []string // nil → the control plane's environment
	timeout time.Duration
}

func (c *cli) run(parent context.Context, args ...string) cliResult {
	ctx, cancel := context.WithTimeout(parent, c.timeout)
	defer cancel()
	var out tailBuffer
	cmd := exec.CommandContext(ctx, c.path, args...)
	cmd.Env = c.env
	cmd.Stdout, cmd.Stderr = &out, &out // one writer: one pipe, merged in order
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A grandchild that keeps the pipe open must not hold us past the kill.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return cliResult{exitCode: exitSpawnError, output: err.Error()}
	}
	err := cmd.Wait()
	output := strings.TrimSpace(out.String())
	if err == nil {
		return cliResult{exitCode: 0, output: output}
	}
	if ctx.Err() != nil {
		msg, code := fmt.Sprintf("Timed out after %dms", c.timeout.Milliseconds()), exitTimedOut
		if perr := parent.Err(); perr != nil {
			// The caller gave up (or the provider is closing), not the command's own timeout.
			msg, code = "Interrupted: "+perr.Error(), exitSpawnError
		}
		if output != "" {
			msg += ": " + output
		}
		return cliResult{exitCode: code, output: msg}
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) && exitErr.ExitCode() > 0 {
		return cliResult{exitCode: exitErr.ExitCode(), output: output}
	}
	// Killed by a signal, or the output could not be read.
	if output == "" {
		output = err.Error()
	}
	return cliResult{exitCode: exitSpawnError, output: output}
}

// tailBuffer keeps the last maxOutput bytes written to it. exec.Cmd calls Write from a single
// goroutine when Stdout and Stderr are the same writer, so it needs no lock.
type tailBuffer struct {
	buf       []byte
	truncated bool
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.buf = append(b.buf, p...)
	if len(b.buf) > 2*maxOutput {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-maxOutput:]...)
		b.truncated = true
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	s := b.buf
	if len(s) > maxOutput {
		s, b.truncated = s[len(s)-maxOutput:], true
	}
	if b.truncated {
		return "…" + string(s)
	}
	return string(s)
}
