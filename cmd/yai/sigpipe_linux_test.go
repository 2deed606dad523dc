package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/yai-dev/yai/internal/rundir"
)

// A write to a dead peer's socket raises SIGPIPE in the thread that wrote, and MLX's ring
// writes from threads of its own, where Go's runtime lets the signal kill the process. A
// rank ignores it (the write fails with EPIPE and the collective with it): here SIGPIPE
// reaches every thread of both ranks, and both go on training.
func TestBrokenPipeNeverKillsARank(t *testing.T) {
	dir := dpRecipe(t, 100000, "")
	launcher, wait := launchAndWaitForSteps(t, dir, 2, 2)
	for rank := range 2 {
		pid := rankPID(t, launcher, rank)
		tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		for _, task := range tasks {
			tid, _ := strconv.Atoi(task.Name())
			syscall.Tgkill(pid, tid, syscall.SIGPIPE)
		}
	}
	metrics := filepath.Join(runDirs(dir)[0], "metrics.jsonl")
	b, _ := os.ReadFile(metrics)
	steps := strings.Count(string(b), "\n")
	waitFor(t, "two more steps", func() bool {
		b, _ := os.ReadFile(metrics)
		return strings.Count(string(b), "\n") >= steps+2
	})
	syscall.Kill(launcher, syscall.SIGTERM)
	code, stderr, _ := wait()
	if code != 143 {
		t.Errorf("launch: exit %d, want 143 (SIGTERM, after SIGPIPE)\n%s", code, stderr)
	}
	exits, _ := rundir.ReadRanks(runDirs(dir)[0])
	for _, e := range exits {
		if e.Signal != "" {
			t.Errorf("rank %d ended by %s", e.Rank, e.Signal)
		}
	}
}
