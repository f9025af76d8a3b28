// Package proctree owns reading the process tree from /proc: which live processes descend from a
// given one. Tests use it to check that function processes (replicas run under a supervisor
// shell, so they are grandchildren) come and go with the control plane.
package proctree

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Descendants returns the PIDs of the live (not zombie) processes below root, at any depth.
func Descendants(root int) []int {
	parent := map[int]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the parenthesised command: state, ppid, ...
		s := string(stat)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) < 2 || fields[0] == "Z" {
			continue
		}
		parent[pid], _ = strconv.Atoi(fields[1])
	}
	var out []int
	for pid := range parent {
		for p := parent[pid]; p > 1; p = parent[p] {
			if p == root {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// Exe returns the path of the executable pid runs, "" when it cannot be read.
func Exe(pid int) string {
	exe, _ := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "exe"))
	return exe
}
