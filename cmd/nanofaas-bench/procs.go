package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// listenPrefix starts the line a bench child prints once its listeners are bound.
const listenPrefix = "BENCH-LISTEN "

// child is a process the harness started. Its combined output goes to a log file and a short
// in-memory tail (quoted in errors).
type child struct {
	name    string
	cmd     *exec.Cmd
	out     *childOutput
	started time.Time     // just before exec
	exited  chan struct{} // closed once the process has been reaped; waitErr is set before
	waitErr error
}

// startChild execs path with args. env is appended to the harness's environment.
func startChild(name, path, logDir string, args, env []string) (*child, error) {
	logFile, err := os.Create(filepath.Join(logDir, name+".log"))
	if err != nil {
		return nil, err
	}
	out := &childOutput{file: logFile, listen: make(chan string, 1)}
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out // the same writer: exec copies both through one pipe
	c := &child{name: name, cmd: cmd, out: out, exited: make(chan struct{})}
	c.started = time.Now()
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { // owned: ends when the process is reaped; stop makes sure it is
		c.waitErr = cmd.Wait()
		_ = logFile.Close()
		close(c.exited)
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// listenAddrs waits for the child's BENCH-LISTEN line and returns its fields.
func (c *child) listenAddrs(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	select {
	case line := <-c.out.listen:
		return strings.Fields(line), nil
	case <-c.exited:
		return nil, c.failure("exited before listening")
	case <-ctx.Done():
		return nil, c.failure("did not report its address: " + ctx.Err().Error())
	}
}

// failure describes a problem with the child, quoting the end of its output.
func (c *child) failure(what string) error {
	return fmt.Errorf("%s %s; last output:\n%s", c.name, what, c.out.tail())
}

// stop sends SIGTERM and waits for the exit; after grace it kills the process.
func (c *child) stop(grace time.Duration) error {
	select {
	case <-c.exited:
		return c.exitErr()
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-c.exited:
		return c.exitErr()
	case <-t.C:
		_ = c.cmd.Process.Kill()
		<-c.exited
		return c.failure(fmt.Sprintf("did not stop within %v of SIGTERM and was killed", grace))
	}
}

func (c *child) exitErr() error {
	if c.waitErr != nil {
		return c.failure("exited with " + c.waitErr.Error())
	}
	return nil
}

// childOutput is the child's output sink: every byte to the log file, the last tailSize bytes in
// memory, and the first BENCH-LISTEN line to listen.
type childOutput struct {
	mu      sync.Mutex
	file    *os.File
	buf     []byte // bytes of the current, unfinished line
	last    []byte // tail of the output
	listen  chan string
	spotted bool
}

const tailSize = 8 << 10

func (o *childOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, _ = o.file.Write(p)
	o.last = append(o.last, p...)
	if len(o.last) > tailSize {
		o.last = append(o.last[:0], o.last[len(o.last)-tailSize:]...)
	}
	if o.spotted {
		return len(p), nil
	}
	o.buf = append(o.buf, p...)
	for {
		i := bytes.IndexByte(o.buf, '\n')
		if i < 0 {
			break
		}
		line := string(o.buf[:i])
		o.buf = o.buf[i+1:]
		if rest, ok := strings.CutPrefix(line, listenPrefix); ok {
			o.spotted = true
			o.buf = nil
			o.listen <- rest
			break
		}
	}
	return len(p), nil
}

func (o *childOutput) tail() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return string(o.last)
}

// freePort asks the kernel for a free loopback port. Another process could take it before the
// control plane binds it; startControlPlane retries once when that happens.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// userHZ is the kernel's clock-tick rate for /proc/<pid>/stat times (USER_HZ, 100 on every
// mainstream Linux build).
const userHZ = 100

// cpuTime is utime+stime of the process from /proc/<pid>/stat (all threads).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(b))
}

// parseStatCPU reads utime (field 14) and stime (field 15) from a /proc/<pid>/stat line. The
// command name (field 2) may contain spaces and parentheses, so fields are counted after the last
// ')'.
func parseStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("proc stat: no command name")
	}
	f := strings.Fields(stat[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, errors.New("proc stat: too few fields")
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("proc stat: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// memUsage is the resident memory of a process: the total (VmRSS) and its anonymous (heap,
// stacks) and file-backed (mostly the mapped executable) parts.
type memUsage struct{ rss, anon, file int64 }

// residentMemory reads VmRSS, RssAnon and RssFile from /proc/<pid>/status.
func residentMemory(pid int) (memUsage, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return memUsage{}, err
	}
	return parseStatusMemory(string(b))
}

func parseStatusMemory(status string) (memUsage, error) {
	var m memUsage
	fields := map[string]*int64{"VmRSS:": &m.rss, "RssAnon:": &m.anon, "RssFile:": &m.file}
	found := 0
	for line := range strings.Lines(status) {
		key, rest, ok := strings.Cut(line, "\t")
		dst := fields[key]
		if !ok || dst == nil {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return memUsage{}, fmt.Errorf("proc status: odd %s line %q", key, strings.TrimSpace(line))
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return memUsage{}, fmt.Errorf("proc status: %w", err)
		}
		*dst = kb << 10
		found++
	}
	if m.rss == 0 || found != len(fields) {
		return memUsage{}, errors.New("proc status: VmRSS, RssAnon or RssFile missing")
	}
	return m, nil
}

// Machine describes where the numbers were taken.
type Machine struct {
	CPUModel     string `json:"cpuModel"`
	Cores        int    `json:"cores"`
	GoVersion    string `json:"goVersion"`
	OSArch       string `json:"osArch"`
	Kernel       string `json:"kernel"`
	MemTotal     string `json:"memTotal"`
	LoadAvgStart string `json:"loadAvgStart"` // 1/5/15-minute load averages when the run began
	LoadAvgEnd   string `json:"loadAvgEnd"`
}

func describeMachine() Machine {
	m := Machine{
		CPUModel:     "unknown",
		Cores:        runtime.NumCPU(),
		GoVersion:    runtime.Version(),
		OSArch:       runtime.GOOS + "/" + runtime.GOARCH,
		Kernel:       strings.TrimSpace(readFile("/proc/sys/kernel/osrelease")),
		LoadAvgStart: loadAvg(),
	}
	for line := range strings.Lines(readFile("/proc/cpuinfo")) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			m.CPUModel = strings.TrimSpace(v)
			break
		}
	}
	for line := range strings.Lines(readFile("/proc/meminfo")) {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			m.MemTotal = strings.TrimSpace(rest)
			break
		}
	}
	return m
}

func loadAvg() string {
	f := strings.Fields(readFile("/proc/loadavg"))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}
