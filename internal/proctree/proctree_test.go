package proctree

import (
	"os"
	"os/exec"
	"slices"
	"testing"
)

// A shell that starts a sleep: both the shell (child) and the sleep (grandchild) descend from
// this test process, and neither does once they are gone.
func TestDescendants_FindsChildrenAndGrandchildren(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", "sleep 30 & echo $!; wait")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var sleepPID int
	buf := make([]byte, 32)
	n, _ := out.Read(buf)
	for _, c := range buf[:n] {
		if c >= '0' && c <= '9' {
			sleepPID = sleepPID*10 + int(c-'0')
		}
	}
	got := Descendants(os.Getpid())
	if !slices.Contains(got, cmd.Process.Pid) || !slices.Contains(got, sleepPID) {
		t.Errorf("descendants %v lack the shell %d or its sleep %d", got, cmd.Process.Pid, sleepPID)
	}
	if exe := Exe(sleepPID); exe == "" {
		t.Errorf("no executable for %d", sleepPID)
	}
	p, _ := os.FindProcess(sleepPID)
	_ = p.Kill()
	_ = cmd.Wait()
	if got := Descendants(os.Getpid()); slices.Contains(got, cmd.Process.Pid) || slices.Contains(got, sleepPID) {
		t.Errorf("descendants %v still hold the finished shell or sleep", got)
	}
}
