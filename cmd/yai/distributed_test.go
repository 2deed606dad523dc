package main

import (
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/yai-dev/yai/internal/cluster"
	"github.com/yai-dev/yai/internal/rundir"
	"github.com/yai-dev/yai/mlx"
)

// Every test here runs its ranks on 127.0.0.1 only (the launcher's loopback ring), a bounded
// number of them for a bounded time; each test waits for every process it started.

// dpRecipe trains the tiny model without dropout (so ranks and a single process draw no
// different random masks) on shuffled batches of 6 rows, which 1, 2 and 3 ranks divide.
func dpRecipe(t *testing.T, steps int, extra string) string {
	t.Helper()
	_, modelDir := yai(t)
	data, _ := filepath.Abs(filepath.Join("..", "..", "recipes", "data", "quickstart"))
	src := fmt.Sprintf(`version: 1
name: dp
model: %s
data: %s
steps: %d
seed: 3
memory: {limit: 2GB}
distributed: {peer_timeout: 5}
stages:
  - {id: load, kind: load-4bit}
  - {id: lora, kind: attach-lora, after: [load], with: {rank: 4, layers: 2, keys: [q_proj, v_proj], dropout: 0}}
  - {id: data, kind: data, after: [load], with: {format: text, batch_size: 6, max_seq_length: 64}}
  - {id: train, kind: step, with: {lr: 1e-3, schedule: cosine, warmup: 2}}
  - {id: save, kind: save-adapter, on: teardown}
%s`, modelDir, data, steps, extra)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// relativeDiff is max over tensors of ‖a − b‖ / ‖b‖ between two adapters files.
func relativeDiff(t *testing.T, a, b string) float64 {
	t.Helper()
	ta, _, err := mlx.LoadSafetensors(a)
	if err != nil {
		t.Fatal(err)
	}
	tb, _, err := mlx.LoadSafetensors(b)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, x := range ta {
			x.Free()
		}
		for _, x := range tb {
			x.Free()
		}
	}()
	if len(ta) != len(tb) || len(ta) == 0 {
		t.Fatalf("%d tensors against %d", len(ta), len(tb))
	}
	worst := 0.0
	for name, x := range ta {
		y, ok := tb[name]
		if !ok {
			t.Fatalf("%s missing from %s", name, b)
		}
		xs, ys := x.Floats(), y.Floats()
		var diff, norm float64
		for i := range xs {
			d := float64(xs[i]) - float64(ys[i])
			diff += d * d
			norm += float64(ys[i]) * float64(ys[i])
		}
		if norm == 0 {
			t.Fatalf("%s is all zeros: the run did not train", name)
		}
		worst = max(worst, math.Sqrt(diff/norm))
	}
	return worst
}

func TestRanksMatchOneProcessOnTheWholeBatch(t *testing.T) {
	dir := dpRecipe(t, 20, "")
	if _, stderr, code := run(t, dir, "run", "r.yaml"); code != 0 {
		t.Fatalf("one process: exit %d\n%s", code, stderr)
	}
	single := runDirs(dir)[0]
	for _, ranks := range []int{2, 3} {
		t.Run(strconv.Itoa(ranks)+" ranks", func(t *testing.T) {
			before := runDirs(dir)
			_, stderr, code := run(t, dir, "run", "--ranks", strconv.Itoa(ranks), "r.yaml")
			if code != 0 {
				t.Fatalf("exit %d\n%s", code, stderr)
			}
			dp := newRunDir(t, dir, before)
			if d := relativeDiff(t, filepath.Join(dp, "adapters", "adapters.safetensors"), filepath.Join(single, "adapters", "adapters.safetensors")); d > 1e-5 {
				t.Errorf("adapters after 20 steps differ from one process's by %.3g (relative), want ≤ 1e-5", d)
			} else {
				t.Logf("adapters within %.3g (relative) of one process's", d)
			}
			// rank 0 reports the loss and tokens of the whole batch, and every rank's memory
			one, _, err := rundir.ReadMetrics(single, 0)
			if err != nil {
				t.Fatal(err)
			}
			many, _, err := rundir.ReadMetrics(dp, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(many) != 20 || len(one) != 20 {
				t.Fatalf("%d and %d metrics lines, want 20", len(many), len(one))
			}
			for i := range many {
				if many[i].Tokens != one[i].Tokens || math.Abs(float64(many[i].Loss-one[i].Loss)) > 1e-5*math.Abs(float64(one[i].Loss)) {
					t.Errorf("step %d: loss %v over %d tokens, one process %v over %d", i+1, many[i].Loss, many[i].Tokens, one[i].Loss, one[i].Tokens)
				}
				if len(many[i].Ranks) != ranks || many[i].Ranks[ranks-1].MLXPeak == 0 || many[i].Ranks[ranks-1].RSS == 0 {
					t.Errorf("step %d: ranks' memory %+v", i+1, many[i].Ranks)
				}
				// the collectives leave nothing behind: live arrays stay as one process's
				if many[i].MLXArrays != one[i].MLXArrays {
					t.Errorf("step %d: %d live arrays on rank 0, %d in one process", i+1, many[i].MLXArrays, one[i].MLXArrays)
				}
			}
			for r := 1; r < ranks; r++ {
				for _, f := range []string{"log", "result.json", "metrics.jsonl"} {
					if !exists(filepath.Join(dp, fmt.Sprintf("rank-%d.%s", r, f))) {
						t.Errorf("rank %d wrote no rank-%d.%s", r, r, f)
					}
				}
			}
			if exits, err := rundir.ReadRanks(dp); err != nil || len(exits) != ranks {
				t.Errorf("ranks.json: %v %+v", err, exits)
			}
		})
	}
}

func TestValidateRejectsBatchNotDividingByRanks(t *testing.T) {
	dir := dpRecipe(t, 2, "")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"validate", "--ranks", "3", "r.yaml"}, 0, ""},
		{[]string{"validate", "--ranks", "4", "r.yaml"}, 1, "r.yaml:12:76: error: batch_size: 6 does not divide by the 4 ranks of distributed.ranks"},
		{[]string{"validate", "--set", "distributed.ranks=5", "r.yaml"}, 1, "r.yaml:12:76: error: batch_size: 6 does not divide by the 5 ranks"},
		{[]string{"validate", "--ranks", "2", "--set", "stages.train.with.accumulation=2", "r.yaml"}, 1, "error: accumulation: 2 with 2 ranks"},
		{[]string{"validate", "--ranks", "2", "--set", "stages.train.when=mlx.active < limit", "r.yaml"}, 1, "error: when: with 2 ranks the step must run on every rank on the same steps"},
		{[]string{"run", "--ranks", "4", "r.yaml"}, 1, "batch_size: 6 does not divide by the 4 ranks"},
		{[]string{"validate", "--ranks", "2", "--hostfile", "h.json", "r.yaml"}, 2, "give --ranks or --hostfile, not both"},
	} {
		_, stderr, code := run(t, dir, c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("yai %s: exit %d, want %d with %q\n%s", strings.Join(c.args, " "), code, c.code, c.want, stderr)
		}
	}
	if runs := runDirs(dir); len(runs) != 0 {
		t.Errorf("a refused run wrote %v", runs)
	}
}

// rankPID finds the process of a rank among the launcher's children.
func rankPID(t *testing.T, launcher, rank int) int {
	t.Helper()
	var pid int
	waitFor(t, fmt.Sprintf("rank %d to start", rank), func() bool {
		// each thread lists the children it started: the launcher's may come from any of them
		lists, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", launcher))
		var kids []string
		for _, l := range lists {
			b, _ := os.ReadFile(l)
			kids = append(kids, strings.Fields(string(b))...)
		}
		for _, f := range kids {
			env, _ := os.ReadFile("/proc/" + f + "/environ")
			for _, kv := range strings.Split(string(env), "\x00") {
				if kv == "MLX_RANK="+strconv.Itoa(rank) {
					pid, _ = strconv.Atoi(f)
					return true
				}
			}
		}
		return false
	})
	return pid
}

// launchAndWaitForSteps starts `yai run --ranks n` and waits until rank 0 has logged steps.
func launchAndWaitForSteps(t *testing.T, dir string, ranks, steps int) (launcher int, wait func() (int, string, time.Duration)) {
	t.Helper()
	cmd, stderr := start(t, dir, "run", "--ranks", strconv.Itoa(ranks), "r.yaml")
	started := false
	defer func() {
		if !started { // waitFor failed the test: say why the ranks did not get there
			cmd.Process.Kill()
			cmd.Wait()
			t.Logf("the launch's stderr:\n%s", stderr)
		}
	}()
	waitFor(t, "rank 0's metrics", func() bool {
		ms, _ := filepath.Glob(filepath.Join(dir, "runs", "*", "metrics.jsonl"))
		if len(ms) != 1 {
			return false
		}
		b, _ := os.ReadFile(ms[0])
		return strings.Count(string(b), "\n") >= steps
	})
	started = true
	return cmd.Process.Pid, func() (int, string, time.Duration) {
		t0 := time.Now()
		err := cmd.Wait()
		return exitCode(err), stderr.String(), time.Since(t0)
	}
}

func readResult(t *testing.T, runDir string, rank int) rundir.Result {
	t.Helper()
	res, err := rundir.ReadResult(runDir, rank)
	if err != nil || res == nil {
		t.Fatalf("%s of %s: %v", rundir.RankFile(rank, rundir.ResultFile), runDir, err)
	}
	return *res
}

func TestKilledRankStopsTheOthers(t *testing.T) {
	dir := dpRecipe(t, 100000, "")
	launcher, wait := launchAndWaitForSteps(t, dir, 3, 2)
	victim := rankPID(t, launcher, 1)
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	code, stderr, took := wait()
	// peer_timeout is 5 s: the ring notices closed sockets at once, the heartbeat names the
	// rank, and the launcher kills whatever is left after the timeout
	if took > 30*time.Second {
		t.Errorf("the other ranks took %s to stop", took)
	}
	if code == 0 {
		t.Fatalf("launch exited 0 after a rank was killed\n%s", stderr)
	}
	runDir := runDirs(dir)[0]
	res := readResult(t, runDir, 0)
	if res.ExitCode == 0 || !strings.Contains(res.Error, "rank 1") {
		t.Errorf("rank 0's result.json does not say rank 1 was lost: %+v", res)
	}
	exits, err := rundir.ReadRanks(runDir)
	if err != nil {
		t.Fatal(err)
	}
	if exits[1].Signal != syscall.SIGKILL.String() || exits[0].ExitCode == 0 || exits[2].ExitCode == 0 {
		t.Errorf("ranks.json: %+v", exits)
	}
	if !strings.Contains(string(readFile(t, filepath.Join(runDir, "run.log"))), "rank 1") {
		t.Error("run.log does not name the lost rank")
	}
	t.Logf("stopped %s after the kill; rank 0: %s", took, res.Error)
}

// A rank that stops without closing its sockets (SIGSTOP) leaves MLX's ring waiting forever:
// the heartbeat's silence is what ends the others.
func TestSilentRankStopsTheOthers(t *testing.T) {
	dir := dpRecipe(t, 100000, "")
	launcher, wait := launchAndWaitForSteps(t, dir, 2, 2)
	victim := rankPID(t, launcher, 1)
	if err := syscall.Kill(victim, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	code, stderr, took := wait()
	if took > 40*time.Second {
		t.Errorf("rank 0 took %s to stop", took)
	}
	if code == 0 {
		t.Fatalf("launch exited 0\n%s", stderr)
	}
	res := readResult(t, runDirs(dir)[0], 0)
	if !strings.Contains(res.Error, "rank 1 sent no heartbeat") {
		t.Errorf("rank 0's result.json: %+v", res)
	}
}

// A guard that fires on rank 1 only stops every rank after the same step, with the guard's
// exit code; the trigger sees rank and world.
func TestGuardOnOneRankStopsEveryRank(t *testing.T) {
	guard := `  - {id: guard, kind: guard, when: "rank == world - 1 && step >= 3", with: {watch: [mlx.peak], buffer: 0, action: checkpoint-and-stop}}` + "\n"
	dir := dpRecipe(t, 10, guard)
	_, stderr, code := run(t, dir, "run", "--ranks", "2", "--set", "memory.limit=1MB", "r.yaml")
	if code != 3 {
		t.Fatalf("exit %d, want the guard's 3\n%s", code, stderr)
	}
	runDir := runDirs(dir)[0]
	res := readResult(t, runDir, 0)
	if res.Steps != 3 || !strings.HasPrefix(res.Reason, "rank 1: ") {
		t.Errorf("rank 0's result: %+v", res)
	}
	other := readResult(t, runDir, 1)
	if other.Steps != 3 || other.ExitCode != 3 {
		t.Errorf("rank 1's result: %+v", other)
	}
	if !exists(filepath.Join(runDir, "checkpoints", "step-00000003")) || !exists(filepath.Join(runDir, "adapters", "adapters.safetensors")) {
		t.Error("rank 0 saved no checkpoint or adapters at the stop")
	}
}

// SIGTERM to the launcher reaches every rank once; they stop after the same step with the
// signal's code and rank 0 checkpoints; a resume on two ranks then ends bit for bit where an
// uninterrupted two-rank run ends.
func TestSignalThenResumeAcrossRanks(t *testing.T) {
	dir := dpRecipe(t, 12, "")
	if _, stderr, code := run(t, dir, "run", "--ranks", "2", "r.yaml"); code != 0 {
		t.Fatalf("straight run: exit %d\n%s", code, stderr)
	}
	straight := runDirs(dir)[0]
	before := runDirs(dir)

	cmd, stderr := start(t, dir, "run", "--ranks", "2", "r.yaml")
	var stopped string
	waitFor(t, "three steps", func() bool {
		for _, d := range runDirs(dir) {
			if !contains(before, d) {
				stopped = d
			}
		}
		b, _ := os.ReadFile(filepath.Join(stopped, "metrics.jsonl"))
		return stopped != "" && strings.Count(string(b), "\n") >= 3
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(cmd.Wait()); code != 143 {
		t.Fatalf("exit %d, want 143\n%s", code, stderr)
	}
	res := readResult(t, stopped, 0)
	other := readResult(t, stopped, 1)
	if res.ExitCode != 143 || other.ExitCode != 143 || res.Steps != other.Steps || res.Steps >= 12 {
		t.Fatalf("rank 0 %+v, rank 1 %+v: want both stopped by SIGTERM after the same step", res, other)
	}
	if !exists(filepath.Join(stopped, "checkpoints", fmt.Sprintf("step-%08d", res.Steps))) {
		t.Fatalf("no checkpoint of step %d", res.Steps)
	}

	before = runDirs(dir)
	if _, stderr, code := run(t, dir, "run", "--ranks", "2", "--resume", stopped); code != 0 {
		t.Fatalf("resume: exit %d\n%s", code, stderr)
	}
	resumed := newRunDir(t, dir, before)
	if readResult(t, resumed, 0).Steps != 12 {
		t.Errorf("resumed run: %+v", readResult(t, resumed, 0))
	}
	a := readFile(t, filepath.Join(straight, "adapters", "adapters.safetensors"))
	if b := readFile(t, filepath.Join(resumed, "adapters", "adapters.safetensors")); string(a) != string(b) {
		t.Errorf("adapters after the stop and resume differ from the uninterrupted run's by %.3g",
			relativeDiff(t, filepath.Join(resumed, "adapters", "adapters.safetensors"), filepath.Join(straight, "adapters", "adapters.safetensors")))
	}

	// the world may change on resume: three ranks share out the same global batches
	before = runDirs(dir)
	_, stderr3, code := run(t, dir, "run", "--ranks", "3", "--resume", stopped)
	if code != 0 || !strings.Contains(stderr3, "resume: allowed change: distributed.ranks: 2 → 3") {
		t.Fatalf("resume on 3 ranks: exit %d\n%s", code, stderr3)
	}
	three := newRunDir(t, dir, before)
	if d := relativeDiff(t, filepath.Join(three, "adapters", "adapters.safetensors"), filepath.Join(straight, "adapters", "adapters.safetensors")); d > 1e-5 {
		t.Errorf("resumed on 3 ranks: adapters differ by %.3g (relative) from the 2-rank run's", d)
	}
}

// consecutivePorts finds n consecutive loopback ports nothing listens on now.
func consecutivePorts(t *testing.T, n int) int {
	t.Helper()
	for range 20 {
		ports, err := cluster.FreeLoopbackPorts(1)
		if err != nil {
			t.Fatal(err)
		}
		free := true
		for p := ports[0]; p < ports[0]+n && free; p++ {
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err != nil {
				free = false
				continue
			}
			l.Close()
		}
		if free {
			return ports[0]
		}
	}
	t.Fatal("no consecutive free ports on 127.0.0.1")
	return 0
}

// An mlx.launch hostfile whose hosts are 127.0.0.1 starts its ranks without ssh, on the
// ports mlx.launch would give them, and trains as --ranks does.
func TestHostfileOnLoopback(t *testing.T) {
	dir := dpRecipe(t, 4, "")
	hosts := `{"backend": "ring", "envs": [], "hosts": [{"ssh": "127.0.0.1", "ips": ["127.0.0.1"]}, {"ssh": "127.0.0.1", "ips": ["127.0.0.1"]}]}`
	if err := os.WriteFile(filepath.Join(dir, "hosts.json"), []byte(hosts), 0o644); err != nil {
		t.Fatal(err)
	}
	port := consecutivePorts(t, 3) // two ranks and the heartbeat
	_, stderr, code := run(t, dir, "run", "--hostfile", "hosts.json", "--port", strconv.Itoa(port), "r.yaml")
	if code != 0 || !strings.Contains(stderr, "starting 2 ranks (ring backend)") {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	runDir := runDirs(dir)[0]
	if res := readResult(t, runDir, 0); res.Steps != 4 {
		t.Errorf("result %+v", res)
	}
	if !exists(filepath.Join(runDir, "rank-1.result.json")) {
		t.Error("rank 1 wrote no result")
	}
}
