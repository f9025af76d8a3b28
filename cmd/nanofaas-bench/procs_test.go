package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseStatCPU_SumsUtimeAndStimeAfterTheCommandName(t *testing.T) {
	for _, tc := range []struct {
		name string
		stat string
		want time.Duration
		bad  bool
	}{
		{"plain", "1234 (control-plane) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0", 3 * time.Second, false},
		{"name with spaces and parens", "99 (a) b (c) R 1 2 3 4 5 6 7 8 9 10 1 2 0 0", 30 * time.Millisecond, false},
		{"no command name", "99 a R 1", 0, true},
		{"truncated", "99 (x) R 1 2 3", 0, true},
		{"not a number", "99 (x) R 1 2 3 4 5 6 7 8 9 10 u s 0", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatCPU(tc.stat)
			if (err != nil) != tc.bad {
				t.Fatalf("err = %v, want error: %v", err, tc.bad)
			}
			if got != tc.want {
				t.Errorf("cpu = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseStatusMemory_ReadsResidentSetPartsInBytes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status string
		want   memUsage
		bad    bool
	}{
		{"present", "Name:\tx\nVmPeak:\t 9 kB\nVmRSS:\t   12636 kB\nRssAnon:\t 2000 kB\nRssFile:\t 10636 kB\nThreads:\t7\n",
			memUsage{rss: 12636 << 10, anon: 2000 << 10, file: 10636 << 10}, false},
		{"missing", "Name:\tx\n", memUsage{}, true},
		{"partial", "VmRSS:\t5 kB\n", memUsage{}, true},
		{"odd unit", "VmRSS:\t1 MB\nRssAnon:\t1 kB\nRssFile:\t1 kB\n", memUsage{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatusMemory(tc.status)
			if (err != nil) != tc.bad || got != tc.want {
				t.Errorf("= %+v, %v; want %+v (error %v)", got, err, tc.want, tc.bad)
			}
		})
	}
}

func TestProcReaders_ReadThisProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	if _, err := cpuTime(os.Getpid()); err != nil {
		t.Errorf("cpuTime: %v", err)
	}
	if m, err := residentMemory(os.Getpid()); err != nil || m.rss <= 0 || m.anon <= 0 {
		t.Errorf("residentMemory = %+v, %v", m, err)
	}
	m := describeMachine()
	if m.Cores <= 0 || m.GoVersion == "" || m.CPUModel == "" {
		t.Errorf("machine = %+v", m)
	}
}

func TestChildOutput_HandsOverTheListenLineEvenWhenSplitAcrossWrites(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	o := &childOutput{file: f, listen: make(chan string, 1)}
	for _, part := range []string{"starting\nBENCH-LI", "STEN 127.0.0.1:1 127.0", ".0.1:2\nmore\n", "BENCH-LISTEN again\n"} {
		if _, err := o.Write([]byte(part)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case got := <-o.listen:
		if got != "127.0.0.1:1 127.0.0.1:2" {
			t.Errorf("listen line = %q", got)
		}
	default:
		t.Fatal("no listen line")
	}
	if len(o.listen) != 0 {
		t.Error("a second listen line was handed over")
	}
	if !strings.Contains(o.tail(), "more") {
		t.Errorf("tail = %q", o.tail())
	}
}

func TestChildOutput_KeepsOnlyTheTail(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	o := &childOutput{file: f, listen: make(chan string, 1)}
	_, _ = o.Write([]byte(strings.Repeat("a", 3*tailSize)))
	_, _ = o.Write([]byte("END"))
	if tail := o.tail(); len(tail) != tailSize || !strings.HasSuffix(tail, "END") {
		t.Errorf("tail has %d bytes, ends %q", len(tail), tail[len(tail)-3:])
	}
}
