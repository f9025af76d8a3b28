// Command testruntime is the function runtime of the process provider's tests. By default it is
// an echo function served by fnruntime (the project's Go runtime: POST /invoke, GET /health,
// PORT and HOST), answering {"port","pid","input","executionId","attempt"}, plus GET /env (its
// environment, cwd and pid). Fault modes, chosen by env, are raw code around fnruntime:
//
//	TR_EXIT_AT_ONCE=1       print a line to stdout and stderr, exit 3 before listening
//	TR_NEVER_HEALTHY=1      /health answers 503
//	TR_STARTUP_DELAY_MS=n   sleep before listening
//	TR_CRASH_AFTER=n        exit 1 right after answering the n-th invocation
//	TR_CRASH_ONCE_FILE=f    with TR_CRASH_AFTER: only the process that creates f crashes
//	TR_EXIT_ONCE_FILE=f     the process that creates f exits 3 before listening
//	TR_EXIT_AFTER_READY_MS=n exit 1 n ms after the first successful /health
//	TR_PID_FILE=f           append "pid <pid> <port>" at start (and "grandchild <pid>")
//	TR_IGNORE_TERM=1        ignore SIGTERM
//	TR_GRANDCHILD=1         start a long-lived grandchild in the same process group
//
// With arguments `handler <mode>` it is instead a STDIO/FILE handler for the built-in watchdog;
// with the argument `fnruntime` it is just fnruntime.Serve with a handler returning its input.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nanofaas/control-plane/fnruntime"
)

func main() {
	if len(os.Args) >= 3 && os.Args[1] == "handler" {
		os.Exit(handler(os.Args[2]))
	}
	if len(os.Args) >= 2 && os.Args[1] == "sleep" {
		time.Sleep(5 * time.Minute)
		return
	}
	if len(os.Args) >= 2 && os.Args[1] == "fnruntime" {
		err := fnruntime.Serve(context.Background(), func(_ context.Context, r fnruntime.Request) (any, error) {
			return r.Input, nil
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	serve()
}

func appendLine(file, line string) {
	if file == "" {
		return
	}
	f, err := os.OpenFile(file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pid file:", err)
		return
	}
	_, _ = f.WriteString(line + "\n")
	_ = f.Close()
}

// serve is the HTTP runtime: fnruntime serves /invoke and /health, wrapped by the fault modes
// (which need to act around a response) and /env, the tests' view of the replica's environment.
// Everything before the listener is raw, since those modes act before any runtime exists.
func serve() {
	port := os.Getenv("PORT")
	fmt.Println("testruntime starting on port", port)
	if os.Getenv("TR_EXIT_AT_ONCE") == "1" {
		fmt.Println("loading configuration")
		fmt.Fprintln(os.Stderr, "fatal: cannot start testruntime")
		os.Exit(3)
	}
	ignoreTerm := os.Getenv("TR_IGNORE_TERM") == "1"
	if ignoreTerm {
		signal.Ignore(syscall.SIGTERM)
	}
	appendLine(os.Getenv("TR_PID_FILE"), fmt.Sprintf("pid %d %s", os.Getpid(), port))
	if os.Getenv("TR_GRANDCHILD") == "1" {
		gc := exec.Command(os.Args[0], "sleep")
		if err := gc.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "grandchild:", err)
			os.Exit(4)
		}
		appendLine(os.Getenv("TR_PID_FILE"), fmt.Sprintf("grandchild %d", gc.Process.Pid))
	}
	if f := os.Getenv("TR_EXIT_ONCE_FILE"); f != "" && createOnce(f) {
		fmt.Fprintln(os.Stderr, "this replica was chosen to fail")
		os.Exit(3)
	}
	if ms, _ := strconv.Atoi(os.Getenv("TR_STARTUP_DELAY_MS")); ms > 0 {
		time.Sleep(time.Duration(ms) * time.Millisecond)
	}

	cfg, err := fnruntime.ConfigFromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(5)
	}
	rt := fnruntime.New(echo(cfg.Port), cfg)
	crashAfter, _ := strconv.ParseInt(os.Getenv("TR_CRASH_AFTER"), 10, 64)
	exitAfterReady, _ := strconv.Atoi(os.Getenv("TR_EXIT_AFTER_READY_MS"))
	h := &faults{
		rt:             rt,
		neverHealthy:   os.Getenv("TR_NEVER_HEALTHY") == "1",
		crashAfter:     crashAfter,
		exitAfterReady: time.Duration(exitAfterReady) * time.Millisecond,
	}

	// SIGTERM stops gracefully, as fnruntime.Serve does, unless the test wants it ignored
	// (signal.Notify would undo signal.Ignore).
	sigs := []os.Signal{os.Interrupt}
	if !ignoreTerm {
		sigs = append(sigs, syscall.SIGTERM)
	}
	ctx, stop := signal.NotifyContext(context.Background(), sigs...)
	defer stop()
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, cfg.Port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(5)
	}
	fmt.Println("testruntime listening")
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(5)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	<-served
	if err := rt.Close(sctx); err != nil {
		fmt.Fprintln(os.Stderr, "close:", err)
	}
}

// echoReply is what an invocation of the HTTP runtime answers: the input and headers it saw,
// and which replica (port, pid) saw them.
type echoReply struct {
	Port        string          `json:"port"`
	PID         int             `json:"pid"`
	Input       json.RawMessage `json:"input"`
	ExecutionID string          `json:"executionId"`
	Attempt     string          `json:"attempt"`
}

func echo(port string) fnruntime.Handler {
	pid := os.Getpid()
	return func(_ context.Context, req fnruntime.Request) (any, error) {
		attempt := ""
		if req.Attempt > 0 {
			attempt = strconv.Itoa(req.Attempt)
		}
		return echoReply{Port: port, PID: pid, Input: req.Input, ExecutionID: req.ExecutionID, Attempt: attempt}, nil
	}
}

// faults wraps the runtime with the fault modes that act around its answers, and serves /env.
type faults struct {
	rt             http.Handler
	neverHealthy   bool
	crashAfter     int64
	exitAfterReady time.Duration

	invocations atomic.Int64
	sawHealthy  atomic.Bool
}

func (f *faults) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/health":
		if f.neverHealthy {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		f.rt.ServeHTTP(w, r)
		if f.exitAfterReady > 0 && f.sawHealthy.CompareAndSwap(false, true) {
			time.AfterFunc(f.exitAfterReady, func() {
				fmt.Fprintln(os.Stderr, "exiting after being ready")
				os.Exit(1)
			})
		}
	case "/invoke":
		f.rt.ServeHTTP(w, r)
		if r.Method != http.MethodPost || f.crashAfter <= 0 {
			return
		}
		n := f.invocations.Add(1)
		if n >= f.crashAfter && mayCrash() {
			// The answer goes out first; the exit follows shortly after it.
			_ = http.NewResponseController(w).Flush()
			time.AfterFunc(20*time.Millisecond, func() {
				fmt.Fprintln(os.Stderr, "crashing after", n, "invocations")
				os.Exit(1)
			})
		}
	case "/env":
		env := map[string]string{}
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		cwd, _ := os.Getwd()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"env": env, "cwd": cwd, "pid": os.Getpid()})
	default:
		f.rt.ServeHTTP(w, r)
	}
}

func mayCrash() bool {
	marker := os.Getenv("TR_CRASH_ONCE_FILE")
	return marker == "" || createOnce(marker)
}

// createOnce reports whether this process created marker (only one process ever does).
func createOnce(marker string) bool {
	f, err := os.OpenFile(marker, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return false
	}
	_ = f.Close()
	return true
}

// handler is one run of a watchdog command; it returns the exit code.
func handler(mode string) int {
	switch mode {
	case "echo": // STDIO: the request on stdin, the result on stdout
		raw, err := io.ReadAll(os.Stdin)
		if err != nil {
			return 9
		}
		var req map[string]any
		if err := json.Unmarshal(raw, &req); err != nil {
			fmt.Fprintln(os.Stderr, "bad stdin:", err)
			return 8
		}
		_ = json.NewEncoder(os.Stdout).Encode(map[string]any{
			"output":      req["input"],
			"metadata":    req["metadata"],
			"executionId": os.Getenv("EXECUTION_ID"),
			"traceId":     os.Getenv("TRACE_ID"),
			"function":    os.Getenv("FUNCTION_NAME"),
			"compact":     !strings.Contains(string(raw), "\n"),
		})
		return 0
	case "file": // FILE: INPUT_FILE in, OUTPUT_FILE out
		raw, err := os.ReadFile(os.Getenv("INPUT_FILE"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "input:", err)
			return 8
		}
		var req map[string]any
		if err := json.Unmarshal(raw, &req); err != nil {
			fmt.Fprintln(os.Stderr, "bad input file:", err)
			return 8
		}
		out, _ := json.Marshal(map[string]any{
			"output":      req["input"],
			"executionId": os.Getenv("EXECUTION_ID"),
			"pretty":      strings.Contains(string(raw), "\n  "),
		})
		if err := os.WriteFile(os.Getenv("OUTPUT_FILE"), out, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "output:", err)
			return 7
		}
		fmt.Println("this stdout line is ignored in FILE mode")
		return 0
	case "nooutput": // FILE: forgets OUTPUT_FILE
		return 0
	case "fail":
		fmt.Println(`{"partial":true}`)
		fmt.Fprintln(os.Stderr, "warming up")
		fmt.Fprintln(os.Stderr, "handler exploded: bad input")
		return 2
	case "invalid":
		fmt.Println("this is not json")
		fmt.Fprintln(os.Stderr, "oops, printed text")
		return 0
	case "twodocs":
		fmt.Println(`{"a":1}`)
		fmt.Println(`{"b":2}`)
		return 0
	case "spawn": // records its pid and a grandchild's (which holds its output), then outlives any sane timeout
		gc := exec.Command(os.Args[0], "sleep")
		gc.Stdout, gc.Stderr = os.Stdout, os.Stderr
		if err := gc.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "grandchild:", err)
			return 4
		}
		appendLine(os.Getenv("TR_PID_FILE"), fmt.Sprintf("pid %d", os.Getpid()))
		appendLine(os.Getenv("TR_PID_FILE"), fmt.Sprintf("grandchild %d", gc.Process.Pid))
		time.Sleep(time.Minute)
		return 0
	case "sleep": // records its pid, then outlives any sane timeout
		appendLine(os.Getenv("TR_PID_FILE"), fmt.Sprintf("pid %d", os.Getpid()))
		time.Sleep(time.Minute)
		return 0
	case "slot": // records start/end around a pause, to measure concurrency
		log := os.Getenv("TR_SLOT_LOG")
		appendLine(log, "start")
		time.Sleep(150 * time.Millisecond)
		appendLine(log, "end")
		_, _ = io.WriteString(os.Stdout, `{"ok":true}`)
		return 0
	}
	fmt.Fprintln(os.Stderr, "unknown handler mode", mode)
	return 64
}
