// Command fakecli is a Docker-compatible CLI for the container-local provider's tests. Its
// "containers" are real local processes: `run` starts a function runtime binary (word-stats in
// the tests) in its own process group, detached, listening on the published host port, and `rm -f`
// kills that group. It understands only what the provider sends:
//
//	version
//	run -d --name NAME -p [HOST:]PORT:8080 [-e K=V ...] IMAGE [CMD...]
//	rm -f NAME...
//
// State lives in $FAKE_CLI_STATE (default: fakecli-state next to the binary): calls.jsonl (one
// JSON array of arguments per call), NAME.json (a running container), NAME.log (its output).
// The runtime binary is $FAKE_CLI_RUNTIME (default: word-stats next to the binary); it gets the
// -e variables, PORT=<published host port> and FAKE_CLI_CONTAINER=<state>/<name> (a marker for
// leak sweeps) and nothing else, like a container.
//
// Fault injection:
//
//	FAKE_CLI_FAIL_VERSION=1  `version` exits 1 (engine unavailable)
//	FAKE_CLI_HANG=version    `version` never returns (for executor timeouts)
//	FAKE_CLI_FAIL_RUN=k      `run` of a container whose name ends in -r<k> exits 125
//	image never-ready        the container is a process that never listens
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// MarkerVar is set in every container's environment to <state dir>/<name>.
const MarkerVar = "FAKE_CLI_CONTAINER"

// Record is what the fake knows about one running container (NAME.json).
type Record struct {
	Name    string   `json:"name"`
	PID     int      `json:"pid"`
	Image   string   `json:"image"`
	Publish string   `json:"publish"`
	Env     []string `json:"env"`
	Cmd     []string `json:"cmd"`
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "__hold" {
		// The never-ready container: alive, never listening.
		for {
			time.Sleep(time.Hour)
		}
	}
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	state, err := stateDir()
	if err != nil {
		fmt.Println("fakecli:", err)
		return 1
	}
	logCall(state, args)
	if len(args) == 0 {
		fmt.Println("fakecli: no command")
		return 1
	}
	switch args[0] {
	case "version":
		if os.Getenv("FAKE_CLI_HANG") == "version" {
			for {
				time.Sleep(time.Hour)
			}
		}
		if os.Getenv("FAKE_CLI_FAIL_VERSION") != "" {
			fmt.Println("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?")
			return 1
		}
		fmt.Println("Client: fakecli\n Version: 0.0.0")
		return 0
	case "run":
		return runContainer(state, args[1:])
	case "rm":
		return remove(state, args[1:])
	default:
		fmt.Printf("fakecli: unknown command %q\n", args[0])
		return 1
	}
}

func exeDir() string {
	exe, err := os.Executable()
	if err != nil {
		return "."
	}
	return filepath.Dir(exe)
}

func stateDir() (string, error) {
	dir := os.Getenv("FAKE_CLI_STATE")
	if dir == "" {
		dir = filepath.Join(exeDir(), "fakecli-state")
	}
	return dir, os.MkdirAll(dir, 0o755)
}

// logCall appends the call's arguments as one JSON line; a single small O_APPEND write keeps
// concurrent calls from interleaving.
func logCall(state string, args []string) {
	line, _ := json.Marshal(args)
	f, err := os.OpenFile(filepath.Join(state, "calls.jsonl"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	_, _ = f.Write(append(line, '\n'))
	_ = f.Close()
}

func runContainer(state string, args []string) int {
	rec := Record{}
	detached := false
	i := 0
	for ; i < len(args) && strings.HasPrefix(args[i], "-"); i++ {
		flag := args[i]
		switch flag {
		case "-d":
			detached = true
			continue
		case "--name", "-p", "-e":
		default:
			fmt.Printf("unknown flag: %s\n", flag)
			return 125
		}
		if i+1 >= len(args) {
			fmt.Printf("flag needs an argument: %s\n", flag)
			return 125
		}
		i++
		switch flag {
		case "--name":
			rec.Name = args[i]
		case "-p":
			rec.Publish = args[i]
		case "-e":
			rec.Env = append(rec.Env, args[i])
		}
	}
	if !detached || rec.Name == "" || i >= len(args) {
		fmt.Println("fakecli: run needs -d, --name and an image")
		return 125
	}
	rec.Image, rec.Cmd = args[i], args[i+1:]

	if k := os.Getenv("FAKE_CLI_FAIL_RUN"); k != "" && strings.HasSuffix(rec.Name, "-r"+k) {
		fmt.Printf("docker: Error response from daemon: injected failure for %s.\n", rec.Name)
		return 125
	}
	port, err := hostPort(rec.Publish)
	if err != nil {
		fmt.Println("docker: invalid publish spec:", err)
		return 125
	}
	recPath := filepath.Join(state, rec.Name+".json")
	if _, err := os.Stat(recPath); err == nil {
		fmt.Printf("docker: Error response from daemon: Conflict. The container name \"/%s\" is already in use.\n", rec.Name)
		return 125
	}

	var cmd *exec.Cmd
	if rec.Image == "never-ready" {
		self, _ := os.Executable()
		cmd = exec.Command(self, "__hold")
	} else {
		runtime := os.Getenv("FAKE_CLI_RUNTIME")
		if runtime == "" {
			runtime = filepath.Join(exeDir(), "word-stats")
		}
		cmd = exec.Command(runtime, rec.Cmd...)
	}
	// The marker lets a test harness find every container process, even one whose record was
	// never written because this command was killed right after starting it.
	cmd.Env = append(append([]string{}, rec.Env...), "PORT="+port, MarkerVar+"="+filepath.Join(state, rec.Name))
	logFile, err := os.Create(filepath.Join(state, rec.Name+".log"))
	if err != nil {
		fmt.Println("fakecli:", err)
		return 125
	}
	defer func() { _ = logFile.Close() }()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Own process group, not waited for: the "container" outlives this command, as with docker.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		fmt.Printf("docker: Error response from daemon: %v.\n", err)
		return 127
	}
	rec.PID = cmd.Process.Pid
	data, _ := json.Marshal(rec)
	// Written aside and renamed so that readers never see a partial record.
	tmp := recPath + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil || os.Rename(tmp, recPath) != nil {
		_ = syscall.Kill(-rec.PID, syscall.SIGKILL)
		fmt.Println("fakecli: cannot record container", rec.Name)
		return 125
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(rec.Name))
	fmt.Printf("%016x%048d\n", h.Sum64(), rec.PID)
	return 0
}

// hostPort returns PORT of "[HOST:]PORT:8080".
func hostPort(publish string) (string, error) {
	rest, ok := strings.CutSuffix(publish, ":8080")
	if !ok {
		return "", fmt.Errorf("%q does not publish container port 8080", publish)
	}
	port := rest
	if strings.Contains(rest, ":") {
		_, p, err := net.SplitHostPort(rest)
		if err != nil {
			return "", err
		}
		port = p
	}
	if _, err := strconv.Atoi(port); err != nil {
		return "", fmt.Errorf("bad host port in %q", publish)
	}
	return port, nil
}

func remove(state string, args []string) int {
	if len(args) == 0 || args[0] != "-f" {
		fmt.Println("fakecli: only rm -f is supported")
		return 1
	}
	code := 0
	for _, name := range args[1:] {
		recPath := filepath.Join(state, name+".json")
		data, err := os.ReadFile(recPath)
		if errors.Is(err, os.ErrNotExist) {
			continue // like docker rm -f: an unknown container is not an error
		}
		var rec Record
		if err == nil {
			err = json.Unmarshal(data, &rec)
		}
		if err != nil {
			fmt.Println("fakecli:", err)
			code = 1
			continue
		}
		_ = syscall.Kill(-rec.PID, syscall.SIGKILL)
		if !waitDead(rec.PID, 5*time.Second) {
			fmt.Printf("Error response from daemon: could not kill container %s\n", name)
			code = 1
			continue
		}
		_ = os.Remove(recPath)
		fmt.Println(name)
	}
	return code
}

// waitDead waits until pid no longer runs. The killed process is not our child (we did not wait
// for it) so it may linger as a zombie until its new parent reaps it; a zombie counts as dead.
func waitDead(pid int, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for {
		if !Alive(pid) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Alive reports whether pid exists and is not a zombie.
func Alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name, which may itself contain ") ".
	s := string(stat)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}
