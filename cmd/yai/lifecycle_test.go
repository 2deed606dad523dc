package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/yai-dev/yai/internal/rundir"
)

// lifecycleRecipe trains the tiny model with gradient accumulation 2, dropout (so the random
// key matters), shuffled data, an eval every 4 steps (which draws from the batch generator)
// and a checkpoint every 3 steps, so checkpoints fall both inside and at the end of an
// accumulation window.
func lifecycleRecipe(t *testing.T, steps int, extra string) string {
	t.Helper()
	_, modelDir := yai(t)
	data, _ := filepath.Abs(filepath.Join("..", "..", "recipes", "data", "quickstart"))
	src := fmt.Sprintf(`version: 1
name: life
model: %s
data: %s
steps: %d
seed: 7
memory: {limit: 2GB}
stages:
  - {id: load, kind: load-4bit}
  - {id: lora, kind: attach-lora, after: [load], with: {rank: 4, layers: 2, keys: [q_proj, v_proj], dropout: 0.1}}
  - {id: data, kind: data, after: [load], with: {format: text, batch_size: 4, max_seq_length: 128}}
  - {id: train, kind: step, with: {lr: 1e-3, accumulation: 2, schedule: cosine, warmup: 2}}
  - {id: validate, kind: eval, every: 4, with: {batches: 2}}
  - {id: ckpt, kind: checkpoint, every: 3, with: {keep: 0}}
  - {id: save, kind: save-adapter, on: teardown}
%s`, modelDir, data, steps, extra)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// onlyRun is the one run directory under dir/runs created after the ones in before.
func newRunDir(t *testing.T, dir string, before []string) string {
	t.Helper()
	all, _ := filepath.Glob(filepath.Join(dir, "runs", "*"))
	var fresh []string
	for _, d := range all {
		if !contains(before, d) {
			fresh = append(fresh, d)
		}
	}
	if len(fresh) != 1 {
		t.Fatalf("%d new run directories: %v", len(fresh), fresh)
	}
	return fresh[0]
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func runDirs(dir string) []string {
	all, _ := filepath.Glob(filepath.Join(dir, "runs", "*"))
	return all
}

// start runs yai in dir in the background.
func start(t *testing.T, dir string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	bin, _ := yai(t)
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// a test that fails before the run ends leaves nothing running (a launcher's ranks
	// follow it through their parent-death signal)
	t.Cleanup(func() { cmd.Process.Kill() })
	return cmd, &stderr
}

// waitFor polls until cond holds (or fails the test after a minute).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

func exitCode(err error) int {
	if e, ok := err.(*exec.ExitError); ok {
		return e.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func losses(t *testing.T, runDir string, upTo int64) []float64 {
	t.Helper()
	ms, _, err := rundir.ReadMetrics(runDir, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []float64
	for _, m := range ms {
		if upTo == 0 || m.Step <= upTo {
			out = append(out, float64(m.Loss))
		}
	}
	return out
}

// Killed with SIGKILL at three points (one resumes from a checkpoint inside an accumulation
// window), then resumed: the final adapters and optimizer state are bit-identical to a run
// that was never interrupted, and the metrics concatenate to the same losses.
func TestKillAndResumeIsExact(t *testing.T) {
	const steps = 12
	dir := lifecycleRecipe(t, steps, "")
	if _, stderr, code := run(t, dir, "run", "r.yaml"); code != 0 {
		t.Fatalf("uninterrupted run: exit %d\n%s", code, stderr)
	}
	straight := runDirs(dir)[0]
	want := losses(t, straight, 0)

	for _, at := range []int{3, 6, 9} { // the checkpoint to kill after; 3 and 9 are mid-window
		before := runDirs(dir)
		cmd, _ := start(t, dir, "run", "r.yaml")
		var victim string
		waitFor(t, fmt.Sprintf("checkpoint of step %d", at), func() bool {
			if victim == "" {
				if fresh := runDirs(dir); len(fresh) > len(before) {
					victim = newRunDir(t, dir, before)
				}
				return false
			}
			return exists(filepath.Join(victim, "checkpoints", fmt.Sprintf("step-%08d", at)))
		})
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if exists(filepath.Join(victim, "result.json")) {
			t.Fatalf("kill at %d: the run finished before it was killed", at)
		}
		before = runDirs(dir)
		_, stderr, code := run(t, dir, "run", "--resume", victim)
		if code != 0 {
			t.Fatalf("resume after kill at %d: exit %d\n%s", at, code, stderr)
		}
		resumed := newRunDir(t, dir, before)
		var rec struct{ Step int64 }
		json.Unmarshal(readFile(t, filepath.Join(resumed, "resume.json")), &rec)
		if rec.Step < int64(at) {
			t.Fatalf("resumed from step %d, want %d or later", rec.Step, at)
		}
		for _, f := range []string{"adapters/adapters.safetensors", "checkpoints/step-00000012/optimizer.safetensors", "checkpoints/step-00000012/data.json"} {
			if !bytes.Equal(readFile(t, filepath.Join(straight, f)), readFile(t, filepath.Join(resumed, f))) {
				t.Errorf("kill at %d (resumed from %d): %s differs from the uninterrupted run's", at, rec.Step, f)
			}
		}
		got := append(losses(t, victim, rec.Step), losses(t, resumed, 0)...)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("kill at %d: losses (-uninterrupted +killed and resumed):\n%s", at, diff)
		}
	}
}

// A guard stops the run at a low limit; resumed with the limit raised, the run finishes with
// adapters bit-identical to a run made at the higher limit from the start.
func TestGuardStopThenResumeWithRaisedLimit(t *testing.T) {
	guard := "  - {id: guard, kind: guard, with: {watch: [mlx.peak], buffer: 0, action: checkpoint-and-stop}}\n"
	dir := lifecycleRecipe(t, 8, guard)
	if _, stderr, code := run(t, dir, "run", "r.yaml"); code != 0 {
		t.Fatalf("run at 2GB: exit %d\n%s", code, stderr)
	}
	straight := runDirs(dir)[0]
	before := runDirs(dir)
	_, stderr, code := run(t, dir, "run", "--set", "memory.limit=1MB", "r.yaml")
	if code != 3 {
		t.Fatalf("run at 1MB: exit %d, want the guard's 3\n%s", code, stderr)
	}
	stopped := newRunDir(t, dir, before)
	before = runDirs(dir)
	_, stderr, code = run(t, dir, "run", "--resume", stopped, "--set", "memory.limit=2GB")
	if code != 0 || !strings.Contains(stderr, "resume: allowed change: memory.limit: 1MB → 2GB") {
		t.Fatalf("resume at 2GB: exit %d\n%s", code, stderr)
	}
	resumed := newRunDir(t, dir, before)
	if !bytes.Equal(readFile(t, filepath.Join(straight, "adapters", "adapters.safetensors")), readFile(t, filepath.Join(resumed, "adapters", "adapters.safetensors"))) {
		t.Error("adapters after the guard stop and resume differ from the uninterrupted run's")
	}
}

// SIGTERM, SIGHUP and SIGINT each stop the run at a step boundary with adapters saved, a
// checkpoint, a result.json, and the signal's exit code.
func TestSignalsSaveAndExitWithTheirCode(t *testing.T) {
	dir := lifecycleRecipe(t, 100000, "")
	for sig, code := range map[syscall.Signal]int{syscall.SIGTERM: 143, syscall.SIGHUP: 129, syscall.SIGINT: 130} {
		before := runDirs(dir)
		cmd, stderr := start(t, dir, "run", "r.yaml")
		var runDir string
		waitFor(t, "two steps", func() bool {
			if runDir == "" && len(runDirs(dir)) > len(before) {
				runDir = newRunDir(t, dir, before)
			}
			ms, _, _ := rundir.ReadMetrics(runDir, 0)
			return runDir != "" && len(ms) >= 2
		})
		cmd.Process.Signal(sig)
		if got := exitCode(cmd.Wait()); got != code {
			t.Errorf("%v: exit %d, want %d\n%s", sig, got, code, stderr)
			continue
		}
		if res, err := rundir.ReadResult(runDir, 0); err != nil || res == nil || res.ExitCode != code {
			t.Errorf("%v: result.json %+v (%v)", sig, res, err)
		}
		if !exists(filepath.Join(runDir, "adapters", "adapters.safetensors")) {
			t.Errorf("%v: no adapters saved", sig)
		}
		if ckpts, _ := filepath.Glob(filepath.Join(runDir, "checkpoints", "step-*")); len(ckpts) == 0 {
			t.Errorf("%v: no checkpoint", sig)
		}
	}
}

// A resume that changes the learning rate is refused with a located error and the diff; one
// that changes only memory.limit goes on.
func TestResumeRefusesUnsafeChanges(t *testing.T) {
	dir := lifecycleRecipe(t, 6, "")
	if _, stderr, code := run(t, dir, "run", "r.yaml"); code != 0 {
		t.Fatalf("run: exit %d\n%s", code, stderr)
	}
	first := runDirs(dir)[0]
	_, stderr, code := run(t, dir, "run", "--resume", first, "--set", "stages.train.with.lr=2e-3", "--set", "steps=9")
	if code != 1 || !strings.Contains(stderr, "--set stages.train.with.lr=2e-3: error: resume: stages.train.with.lr: 0.001 → 0.002; it changes the math of the steps already done") ||
		!strings.Contains(stderr, "allowed  steps: 6 → 9") || !strings.Contains(stderr, "unsafe   stages.train.with.lr: 0.001 → 0.002") {
		t.Errorf("lr change: exit %d\n%s", code, stderr)
	}
	if len(runDirs(dir)) != 1 {
		t.Error("a refused resume made a run directory")
	}
	_, stderr, code = run(t, dir, "run", "--resume", first, "--set", "memory.limit=3GB", "--set", "steps=9")
	if code != 0 {
		t.Errorf("memory.limit change: exit %d\n%s", code, stderr)
	}
	resumed := runDirs(dir)[1]
	if ms, _, _ := rundir.ReadMetrics(resumed, 0); len(ms) != 3 || ms[0].Step != 7 {
		t.Errorf("extended run's metrics: %+v; want steps 7 to 9", ms)
	}
	_, stderr, code = run(t, dir, "run", "--resume", first, "--force", "--set", "stages.train.with.lr=2e-3", "--set", "steps=9")
	if code != 0 || !strings.Contains(stderr, "warning: resume: stages.train.with.lr") {
		t.Errorf("forced lr change: exit %d\n%s", code, stderr)
	}
}

// Two processes resuming the same run: the second fails at once with a clear error and the
// first finishes unharmed.
func TestTwoResumesOfOneRun(t *testing.T) {
	dir := lifecycleRecipe(t, 3, "")
	if _, stderr, code := run(t, dir, "run", "r.yaml"); code != 0 {
		t.Fatalf("run: exit %d\n%s", code, stderr)
	}
	first := runDirs(dir)[0]
	a, aErr := start(t, dir, "run", "--resume", first, "--set", "steps=400")
	waitFor(t, "the first resume to start", func() bool { return len(runDirs(dir)) == 2 })
	_, stderr, code := run(t, dir, "run", "--resume", first, "--set", "steps=5")
	if code != 1 || !strings.Contains(stderr, "is in use by another yai process (pid") {
		t.Errorf("second resume: exit %d\n%s", code, stderr)
	}
	a.Process.Signal(syscall.SIGTERM)
	if got := exitCode(a.Wait()); got != 143 {
		t.Errorf("first resume: exit %d\n%s", got, aErr)
	}
}

// nanRecipe trains on completions whose fifth row's prompt fills max_seq_length: with the
// prompt masked, that step has no target token and its loss is 0/0.
func nanRecipe(t *testing.T, onNonFinite string, steps int) string {
	t.Helper()
	_, modelDir := yai(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	os.MkdirAll(data, 0o755)
	var rows []string
	for i := range 12 {
		prompt := fmt.Sprintf("Who owns pet %d?", i)
		if i == 4 {
			prompt = strings.Repeat("a very long question ", 200)
		}
		js, _ := json.Marshal(map[string]string{"prompt": prompt, "completion": fmt.Sprintf(" Pet %d belongs to Kai.", i)})
		rows = append(rows, string(js))
	}
	os.WriteFile(filepath.Join(data, "train.jsonl"), []byte(strings.Join(rows, "\n")+"\n"), 0o644)
	os.WriteFile(filepath.Join(data, "valid.jsonl"), []byte(rows[0]+"\n"+rows[1]+"\n"), 0o644)
	src := fmt.Sprintf(`version: 1
name: nan
model: %s
data: data
steps: %d
memory: {limit: 2GB}
stages:
  - {id: load, kind: load-4bit}
  - {id: lora, kind: attach-lora, after: [load], with: {rank: 4, layers: 1, keys: [q_proj]}}
  - {id: data, kind: data, after: [load], with: {format: completions, batch_size: 1, max_seq_length: 256, mask_prompt: true, shuffle: false}}
  - {id: train, kind: step, with: {lr: 1e-2, on_nonfinite: %s}}
  - {id: keep, kind: save-adapter, on: after-step, every: 2}
  - {id: save, kind: save-adapter, on: teardown}
`, modelDir, steps, onNonFinite)
	os.WriteFile(filepath.Join(dir, "r.yaml"), []byte(src), 0o644)
	return dir
}

// A batch whose loss is not finite is never applied: the run stops with exit 5 naming the
// step and the row, and the adapters it leaves are byte-identical to those of a run that
// stopped just before that step. With on_nonfinite: skip the run finishes and counts it.
func TestNonFiniteStepStopsOrSkips(t *testing.T) {
	dir := nanRecipe(t, "stop", 8)
	_, stderr, code := run(t, dir, "run", "--set", "steps=4", "r.yaml")
	if code != 0 {
		t.Fatalf("4 clean steps: exit %d\n%s", code, stderr)
	}
	clean := runDirs(dir)[0]
	before := runDirs(dir)
	_, stderr, code = run(t, dir, "run", "r.yaml")
	if code != 5 || !strings.Contains(stderr, "step 5: non-finite loss or gradient, not applied: every target token is masked (train_on: last; what it trains lies beyond max_seq_length 256, or the rows have none) in train.jsonl:5") {
		t.Fatalf("exit %d, want 5 naming step 5 and train.jsonl:5\n%s", code, stderr)
	}
	stopped := newRunDir(t, dir, before)
	if !bytes.Equal(readFile(t, filepath.Join(clean, "adapters", "adapters.safetensors")), readFile(t, filepath.Join(stopped, "adapters", "adapters.safetensors"))) {
		t.Error("the adapters after the non-finite stop differ from those after the 4 good steps")
	}

	dir = nanRecipe(t, "skip", 8)
	_, stderr, code = run(t, dir, "run", "r.yaml")
	if code != 0 {
		t.Fatalf("skip: exit %d\n%s", code, stderr)
	}
	skipped := runDirs(dir)[0]
	res := readResult(t, skipped, 0)
	ms, _, _ := rundir.ReadMetrics(skipped, 0)
	if res.Skipped != 1 || len(ms) != 8 || !ms[4].Skipped || ms[7].SkippedTotal != 1 {
		t.Errorf("skip: result %+v; metrics step 5 skipped %v, total %d", res, len(ms) > 4 && ms[4].Skipped, ms[len(ms)-1].SkippedTotal)
	}
}

// With packed rows and the prefix cache, a run killed after a mid-window checkpoint and
// resumed ends bit-identical to the uninterrupted one: packing depends only on the data and
// settings, so the data position in the checkpoint resumes it, and the resumed run refills
// its empty prefix cache with the same values.
func TestPackedRunResumesExactly(t *testing.T) {
	const steps, at = 8, 3
	dir := lifecycleRecipe(t, steps, "")
	// 8 rows: a few packed batches an epoch, so the run goes through epochs 2 and 3, where
	// the prefix cache serves the frozen block's output.
	small := filepath.Join(dir, "small")
	os.MkdirAll(small, 0o755)
	data, _ := filepath.Abs(filepath.Join("..", "..", "recipes", "data", "quickstart"))
	for _, f := range []string{"train.jsonl", "valid.jsonl"} {
		lines := strings.SplitAfter(string(readFile(t, filepath.Join(data, f))), "\n")
		os.WriteFile(filepath.Join(small, f), []byte(strings.Join(lines[:8], "")), 0o644)
	}
	src := strings.Replace(string(readFile(t, filepath.Join(dir, "r.yaml"))), "data: "+data, "data: "+small, 1)
	os.WriteFile(filepath.Join(dir, "r.yaml"), []byte(src), 0o644)
	pack := []string{"--set", "stages.data.with.pack=true", "--set", "stages.data.with.batch_size=2", "--set", "stages.train.with.prefix_cache=64MB"}
	if _, stderr, code := run(t, dir, append([]string{"run", "r.yaml"}, pack...)...); code != 0 {
		t.Fatalf("uninterrupted packed run: exit %d\n%s", code, stderr)
	}
	straight := runDirs(dir)[0]
	want := losses(t, straight, 0)
	before := runDirs(dir)
	cmd, _ := start(t, dir, append([]string{"run", "r.yaml"}, pack...)...)
	var victim string
	waitFor(t, fmt.Sprintf("checkpoint of step %d", at), func() bool {
		if victim == "" {
			if fresh := runDirs(dir); len(fresh) > len(before) {
				victim = newRunDir(t, dir, before)
			}
			return false
		}
		return exists(filepath.Join(victim, "checkpoints", fmt.Sprintf("step-%08d", at)))
	})
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	before = runDirs(dir)
	if _, stderr, code := run(t, dir, "run", "--resume", victim); code != 0 {
		t.Fatalf("resume: exit %d\n%s", code, stderr)
	}
	resumed := newRunDir(t, dir, before)
	var rec struct{ Step int64 }
	json.Unmarshal(readFile(t, filepath.Join(resumed, "resume.json")), &rec)
	if !bytes.Equal(readFile(t, filepath.Join(straight, "adapters/adapters.safetensors")), readFile(t, filepath.Join(resumed, "adapters/adapters.safetensors"))) {
		t.Errorf("adapters of the resumed packed run (from step %d) differ from the uninterrupted run's", rec.Step)
	}
	got := append(losses(t, victim, rec.Step), losses(t, resumed, 0)...)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("losses (-uninterrupted +killed and resumed):\n%s", diff)
	}
}
