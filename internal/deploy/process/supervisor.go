package process

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Every long-lived function process runs under a supervisor, so that nothing it starts outlives
// the control plane even when the control plane is SIGKILLed. Pdeathsig alone only reaches the
// direct child: the command's own children (`sleep 313 & exec runtime`) would be orphaned. The
// supervisor is /bin/sh (about 1 MiB, no Go runtime per replica) running supervisorScript:
//
//   - it is the direct child, with Pdeathsig SIGKILL, and the leader of a new process group that
//     the command and everything it starts inherit;
//   - it forks a watcher that blocks reading a pipe whose only write end the control plane holds
//     (the CLOEXEC end of an os.Pipe, never inherited). When the control plane dies, however it
//     dies, the kernel closes that end, the read returns EOF and the watcher SIGKILLs the whole
//     group. The watcher ignores the catchable signals a group may receive (a graceful SIGTERM
//     must not disarm it) and holds no other descriptor;
//   - it runs the command in the foreground, so the command keeps default signal dispositions
//     and stdin (an asynchronous list would get SIGINT/SIGQUIT ignored and stdin from /dev/null),
//     after reporting the command's pid on a second pipe (read from /proc/self/stat in the
//     subshell that then execs the command, so the pid is the command's);
//   - it survives the group's SIGTERM (a caught no-op trap, which exec resets for the command) so
//     the command gets its grace period; when the command has exited it SIGKILLs and reaps the
//     watcher and exits with the command's status (128+n when signal n killed it);
//   - its own stderr goes to /dev/null (the command gets the real one through fd 5), so shell
//     notices such as "Killed" never reach the function's output; a command that cannot be
//     executed is still reported there, by the subshell after the redirection.
//
// The control plane signals the whole group for a graceful stop, and for a hard stop SIGKILLs
// the command alone first: the supervisor then reaps it and its watcher and exits, so no
// process is left as a zombie for init to reap. As soon as the supervisor has exited the
// control plane SIGKILLs what is left in the group (strays, such as ones that ignored SIGTERM),
// then reaps the supervisor.
const supervisorScript = `
( trap '' HUP INT QUIT PIPE ALRM TERM USR1 USR2
  read -r _ <&3
  kill -KILL 0 ) 4>&- </dev/null >/dev/null 2>&1 &
w=$!
exec 3<&- 5>&2 2>/dev/null
trap : TERM
( read -r pid _ </proc/self/stat; echo "${pid:-0}" >&4; exec "$@" 2>&5 4>&- 5>&- )
s=$?
trap '' TERM
kill -KILL "$w"
wait "$w"
exit "$s"
`

const (
	supervisorShell = "/bin/sh"
	// supervisorName is the script's $0: it prefixes the shell's own messages (e.g. a command
	// that cannot be executed) in the replica's output.
	supervisorName = "nanofaas-replica"
	// pidReportTimeout bounds the wait for the command's pid; without it the command is still
	// supervised but is tracked (and hard-stopped) through its group.
	pidReportTimeout = 5 * time.Second
	// supervisorExitWait bounds how long a hard stop waits for the supervisor to reap the
	// command and exit before it SIGKILLs the whole group.
	supervisorExitWait = time.Second
)

// supervised is one command running under the supervisor.
type supervised struct {
	cmd  *exec.Cmd
	pgid int // the supervisor's pid, which is also the group's id
	pid  int // the command's pid; pgid when it was not reported

	// lifeline is the write end of the watcher's pipe: while it is open the watcher waits.
	lifeline *os.File

	// mu guards exited and proc. Once the supervisor has exited, the command is gone and the
	// group has been cleared; after the reaping its pid, and so the group id, may be recycled.
	// So nothing is signalled any more.
	mu     sync.Mutex
	exited bool
	// proc is a handle (a pidfd on Linux) on the command, nil when its pid is unknown; it
	// cannot signal a recycled pid.
	proc *os.Process
}

// startSupervised starts cmd (built by exec.Command, with its Dir, Env and I/O set) under the
// supervisor, in a new process group, and learns the command's pid. The wait for that pid ends
// early when ctx is done. The caller must call wait.
func startSupervised(ctx context.Context, cmd *exec.Cmd) (*supervised, error) {
	if cmd.Err != nil {
		return nil, cmd.Err
	}
	lifeR, lifeW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	repR, repW, err := os.Pipe()
	if err != nil {
		_ = lifeR.Close()
		_ = lifeW.Close()
		return nil, err
	}
	defer func() { _ = repR.Close() }()
	cmd.Args = append([]string{supervisorShell, "-c", supervisorScript, supervisorName, cmd.Path}, cmd.Args[1:]...)
	cmd.Path = supervisorShell
	cmd.ExtraFiles = []*os.File{lifeR, repW} // fd 3 and fd 4 of the script
	cmd.SysProcAttr = supervisorSysProcAttr()
	err = cmd.Start()
	_ = lifeR.Close()
	_ = repW.Close()
	if err != nil {
		_ = lifeW.Close()
		return nil, err
	}
	s := &supervised{cmd: cmd, pgid: cmd.Process.Pid, pid: cmd.Process.Pid, lifeline: lifeW}
	if pid := readPID(ctx, repR); pid > 0 {
		s.pid = pid
		// The command is a child of the supervisor, which cannot have reaped it yet unless it
		// already exited; a pid found outside the group is not trusted.
		if proc, err := os.FindProcess(pid); err == nil {
			if pgid, err := syscall.Getpgid(pid); err == nil && pgid == s.pgid {
				s.proc = proc
			} else {
				_ = proc.Release()
			}
		}
	}
	return s, nil
}

// supervisorSysProcAttr makes the supervisor the leader of a new process group and asks the
// kernel to SIGKILL it if the control plane dies (Pdeathsig follows the forking OS thread; the Go
// runtime only retires threads that a goroutine locked and never unlocked, which this process
// does not do). The watcher covers the rest of the group.
func supervisorSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// readPID reads the pid line the script writes, or returns 0 on EOF (the supervisor died), on
// timeout or when ctx is done.
func readPID(ctx context.Context, r *os.File) int {
	_ = r.SetReadDeadline(time.Now().Add(pidReportTimeout))
	stop := context.AfterFunc(ctx, func() { _ = r.SetReadDeadline(time.Now()) })
	defer stop()
	var buf []byte
	chunk := make([]byte, 32)
	for len(buf) < 64 {
		n, err := r.Read(chunk)
		buf = append(buf, chunk[:n]...)
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			pid, _ := strconv.Atoi(string(buf[:i]))
			return pid
		}
		if err != nil {
			return 0
		}
	}
	return 0
}

// signalGroup sends sig to the whole process group, unless the supervisor has exited.
func (s *supervised) signalGroup(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.exited {
		_ = syscall.Kill(-s.pgid, sig)
	}
}

// killCommand SIGKILLs the command, which makes the supervisor reap it and exit; without a
// handle on the command it SIGKILLs the whole group. It may be called at any time, from any
// goroutine.
func (s *supervised) killCommand() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exited {
		return
	}
	if s.proc == nil {
		_ = syscall.Kill(-s.pgid, syscall.SIGKILL)
		return
	}
	// A command that is already gone needs nothing: its supervisor is exiting.
	if err := s.proc.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		_ = syscall.Kill(-s.pgid, syscall.SIGKILL)
	}
}

// hardStop kills the command and waits until exited is closed (the supervisor reaped), falling
// back to SIGKILLing the whole group when the supervisor does not exit in time.
func (s *supervised) hardStop(exited <-chan struct{}) {
	s.killCommand()
	t := time.NewTimer(supervisorExitWait)
	defer t.Stop()
	select {
	case <-exited:
		return
	case <-t.C:
	}
	s.signalGroup(syscall.SIGKILL)
	<-exited
}

// wait reaps the supervisor and releases the pipe and the handle. As soon as the supervisor has
// exited, and before reaping it (its zombie still pins the group id), it SIGKILLs whatever is left
// in the group, so strays holding the output pipes do not delay the reaping. It returns the
// supervisor's exit, which carries the command's status.
func (s *supervised) wait() error {
	var err error
	waited := !s.awaitExit()
	if waited {
		err = s.cmd.Wait() // not expected on Linux; the strays then go after the reaping
	}
	s.mu.Lock()
	_ = syscall.Kill(-s.pgid, syscall.SIGKILL)
	s.exited = true
	s.mu.Unlock()
	if !waited {
		err = s.cmd.Wait()
	}
	_ = s.lifeline.Close()
	if s.proc != nil {
		_ = s.proc.Release()
	}
	return err
}

// awaitExit blocks until the supervisor has exited, without reaping it (waitid with WNOWAIT, as
// os.Process.Wait does on Linux); it reports whether it could.
func (s *supervised) awaitExit() bool {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, s.pgid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return err == nil
		}
	}
}

// shellSignal returns the signal n of an exit status 128+n, the supervisor's (a shell's) report
// of a command killed by signal n.
func shellSignal(code int) (syscall.Signal, bool) {
	if code > 128 && code <= 128+64 {
		return syscall.Signal(code - 128), true
	}
	return 0, false
}

// describeExit renders how a supervised command ended, naming the signal behind a 128+n status.
func describeExit(err error) string {
	if err == nil {
		return "exit status 0"
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		if sig, ok := shellSignal(exitErr.ExitCode()); ok {
			return err.Error() + " (signal: " + sig.String() + ")"
		}
	}
	return err.Error()
}
