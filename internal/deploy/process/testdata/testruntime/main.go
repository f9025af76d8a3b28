// Command testruntime is a tiny function runtime for the process provider's tests. It follows
// the function-runtime contract (POST /invoke, GET /health, port from PORT) and has fault modes
// chosen by env:
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
// with the argument `fnruntime` it is an echo function served by fnruntime.Serve (which listens
// on HOST).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
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

func serve() {
	port := os.Getenv("PORT")
	fmt.Println("testruntime starting on port", port)
	if os.Getenv("TR_EXIT_AT_ONCE") == "1" {
		fmt.Println("loading configuration")
		fmt.Fprintln(os.Stderr, "fatal: cannot start testruntime")
		os.Exit(3)
	}
	if os.Getenv("TR_IGNORE_TERM") == "1" {
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
	crashAfter, _ := strconv.ParseInt(os.Getenv("TR_CRASH_AFTER"), 10, 64)
	var invocations atomic.Int64
	var sawHealthy atomic.Bool
	exitAfterReady, _ := strconv.Atoi(os.Getenv("TR_EXIT_AFTER_READY_MS"))

	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) {
		if os.Getenv("TR_NEVER_HEALTHY") == "1" {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok"}`)
		if exitAfterReady > 0 && sawHealthy.CompareAndSwap(false, true) {
			go func() {
				time.Sleep(time.Duration(exitAfterReady) * time.Millisecond)
				fmt.Fprintln(os.Stderr, "exiting after being ready")
				os.Exit(1)
			}()
		}
	})
	mux.HandleFunc("/invoke", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		var req struct {
			Input    any               `json:"input"`
			Metadata map[string]string `json:"metadata"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = fmt.Fprintf(w, `{"error":%q}`, err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"port":        port,
			"pid":         os.Getpid(),
			"input":       req.Input,
			"executionId": r.Header.Get("X-Execution-Id"),
			"attempt":     r.Header.Get("X-Dispatch-Attempt"),
		})
		n := invocations.Add(1)
		if crashAfter > 0 && n >= crashAfter && mayCrash() {
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
			go func() {
				time.Sleep(20 * time.Millisecond)
				fmt.Fprintln(os.Stderr, "crashing after", n, "invocations")
				os.Exit(1)
			}()
		}
	})
	mux.HandleFunc("/env", func(w http.ResponseWriter, _ *http.Request) {
		env := map[string]string{}
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		cwd, _ := os.Getwd()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"env": env, "cwd": cwd, "pid": os.Getpid()})
	})
	fmt.Println("testruntime listening")
	if err := http.ListenAndServe("127.0.0.1:"+port, mux); err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(5)
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
