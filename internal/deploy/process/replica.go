package process

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nanofaas/control-plane/internal/deploy/localbackend"
	"github.com/nanofaas/control-plane/internal/failure"
)

// Fixed timings of process-backend.md.
const (
	readinessPollInterval = 100 * time.Millisecond
	// pipeWaitDelay bounds how long Wait waits for the output pipes after the child exited
	// (a grandchild outside the process group could keep them open forever).
	pipeWaitDelay = time.Second
)

// errStopped means the replica was asked to stop before it became ready.
var errStopped = errors.New("replica stopped")

// launchSpec is what every replica of one function runs.
type launchSpec struct {
	function string
	argv     []string
	env      []string // without PORT
	dir      string
}

// replica supervises replica `index` (1-based) of a function: one goroutine (supervise) starts
// the child, waits for readiness, marks it routable, restarts it with backoff when it exits, and
// stops and reaps it when halted. Nothing else touches the child.
type replica struct {
	p      *Provider
	st     *fnState
	launch *launchSpec
	index  int
	logger *slog.Logger
	out    *outputLog

	ctx      context.Context // cancelled by halt: stop supervising
	cancel   context.CancelFunc
	hard     chan struct{} // closed when stopping must not wait for the grace period
	hardOnce sync.Once
	done     chan struct{} // closed when supervise returned and the child is reaped
	first    chan error    // result of the first start (buffered)

	// base is the replica's URL while it is ready and routable, nil otherwise. It is read by
	// the routing refresh without the supervisor's cooperation, hence atomic.
	base atomic.Pointer[string]
	pid  atomic.Int64 // pid of the running child, 0 when none
}

// child is one run of the replica's command.
type child struct {
	sp      *supervised
	pid     int // the command's (see supervised.pid)
	base    string
	exited  chan struct{} // closed once reaped and its output drained
	waitErr error         // valid after exited is closed
}

func (p *Provider) newReplica(st *fnState, index int) *replica {
	ctx, cancel := context.WithCancel(context.Background())
	logger := p.logger.With("function", st.Name(), "replica", index)
	return &replica{
		p: p, st: st, launch: st.launch, index: index, logger: logger,
		out:    newOutputLog(logger),
		ctx:    ctx,
		cancel: cancel,
		hard:   make(chan struct{}),
		done:   make(chan struct{}),
		first:  make(chan error, 1),
	}
}

// halt stops the replica and waits until its child is reaped: SIGTERM to the process group, then
// SIGKILL after the grace period or as soon as ctx is done. It always waits for the reaping.
func (r *replica) halt(ctx context.Context) {
	r.cancel()
	select {
	case <-r.done:
		return
	case <-ctx.Done():
	}
	r.hardOnce.Do(func() { close(r.hard) })
	<-r.done
}

// haltAll halts replicas in parallel.
func haltAll(ctx context.Context, reps []*replica) {
	var wg sync.WaitGroup
	for _, r := range reps {
		wg.Go(func() { r.halt(ctx) })
	}
	wg.Wait()
}

// supervise runs the replica until halted. The outcome of the first start is sent on r.first;
// when that start fails the child is killed and reaped first, and supervision ends (the caller
// reports the failure); later exits are restarted with backoff.
func (r *replica) supervise() {
	defer close(r.done)
	cfg := &r.p.cfg
	backoff := cfg.RestartBackoff
	started := false
	for {
		c, err := r.start()
		if err == nil {
			if err = r.awaitReady(c); err != nil {
				r.kill(c)
			}
		}
		if err != nil {
			if !started {
				r.first <- err
				return
			}
			if errors.Is(err, errStopped) {
				return
			}
			r.logger.Warn("process replica failed to restart", "error", err, "retry_in", backoff)
			if !r.sleep(backoff) {
				return
			}
			backoff = min(2*backoff, cfg.MaxRestartBackoff)
			continue
		}

		r.base.Store(&c.base)
		r.st.refreshRoutes()
		readyAt := cfg.Now()
		r.logger.Info("process replica ready", "pid", c.pid, "url", c.base)
		if !started {
			started = true
			r.first <- nil
		}

		select {
		case <-r.ctx.Done():
			r.base.Store(nil)
			r.st.refreshRoutes()
			r.terminate(c)
			return
		case <-c.exited:
			r.base.Store(nil)
			r.st.refreshRoutes()
		}
		if cfg.Now().Sub(readyAt) >= cfg.MaxRestartBackoff {
			backoff = cfg.RestartBackoff // it ran long enough: this is not a crash loop
		}
		r.logger.Warn(withOutput(fmt.Sprintf("process replica exited (%s)", describeExit(c.waitErr)),
			r.out.lastLines(errorTailLines)), "retry_in", backoff)
		if !r.sleep(backoff) {
			return
		}
		backoff = min(2*backoff, cfg.MaxRestartBackoff)
	}
}

// sleep waits d unless the replica is halted first; it reports whether to go on.
func (r *replica) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.ctx.Done():
		return false
	}
}

// start launches the command on a free loopback port under its supervisor (supervisor.go), in
// its own process group, and starts the goroutine that reaps it.
func (r *replica) start() (*child, error) {
	if err := r.ctx.Err(); err != nil {
		return nil, errStopped
	}
	port, err := freePort()
	if err != nil {
		return nil, failure.Unavailablef("Function '%s': no free port for replica %d: %v", r.launch.function, r.index, err)
	}
	argv := r.launch.argv
	cannotStart := func(err error) error {
		return failure.Unavailablef("Function '%s': cannot start replica %d (command %q): %v",
			r.launch.function, r.index, argv, err)
	}
	// Checked here because the supervisor would only report a missing command as exit 127.
	if err := checkExecutable(argv[0], r.launch.dir); err != nil {
		return nil, cannotStart(err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = r.launch.dir
	n := len(r.launch.env)
	cmd.Env = append(r.launch.env[:n:n], envPort+"="+strconv.Itoa(port), envHost+"="+replicaHost)
	cmd.Stdout, cmd.Stderr = r.out, r.out // the same writer: one pipe, merged in order
	cmd.WaitDelay = pipeWaitDelay
	sp, err := startSupervised(r.ctx, cmd)
	if err != nil {
		return nil, cannotStart(err)
	}
	c := &child{sp: sp, pid: sp.pid, base: "http://" + replicaHost + ":" + strconv.Itoa(port), exited: make(chan struct{})}
	r.pid.Store(int64(c.pid))
	r.logger.Debug("process replica started", "pid", c.pid, "pgid", sp.pgid, "port", port)
	go func() {
		c.waitErr = sp.wait()
		r.out.flush()
		r.pid.Store(0)
		close(c.exited)
	}()
	return c, nil
}

// awaitReady polls GET <base>/health every 100 ms until a 2xx, the readiness timeout, the
// child's exit or a halt.
func (r *replica) awaitReady(c *child) error {
	timeout := r.p.cfg.ReadinessTimeout
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(readinessPollInterval)
	defer tick.Stop()
	for {
		if localbackend.Healthy(r.ctx, r.p.client, c.base) {
			return nil
		}
		select {
		case <-r.ctx.Done():
			return errStopped
		case <-c.exited:
			return failure.Unavailablef("%s", withOutput(fmt.Sprintf(
				"Function '%s': replica %d exited before becoming ready (%s)",
				r.launch.function, r.index, describeExit(c.waitErr)), r.out.lastLines(errorTailLines)))
		case <-deadline.C:
			return failure.Unavailablef("%s", withOutput(fmt.Sprintf(
				"Function '%s': replica %d did not become ready within %s (GET %s/health)",
				r.launch.function, r.index, timeout, c.base), r.out.lastLines(errorTailLines)))
		case <-tick.C:
		}
	}
}

// terminate stops a running child gracefully: SIGTERM to its group, a hard stop after the grace
// period (or at once when the stop turned hard), then waits until it is reaped.
func (r *replica) terminate(c *child) {
	c.sp.signalGroup(syscall.SIGTERM)
	t := time.NewTimer(r.p.cfg.StopGrace)
	defer t.Stop()
	select {
	case <-c.exited:
		r.logger.Info("process replica stopped", "pid", c.pid)
		return
	case <-t.C:
	case <-r.hard:
	}
	r.kill(c)
	r.logger.Info("process replica killed", "pid", c.pid)
}

// kill SIGKILLs the child and waits until it is reaped.
func (r *replica) kill(c *child) { c.sp.hardStop(c.exited) }

// freePort asks the kernel for a free loopback port and releases it for the child (racy by
// nature, as in the reference; a lost race shows up as a replica that fails to start).
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	return port, ln.Close()
}
