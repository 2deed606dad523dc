package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/yai-dev/yai/internal/lora"
	"github.com/yai-dev/yai/internal/rundir"
	"github.com/yai-dev/yai/internal/testenv"
	"github.com/yai-dev/yai/internal/testmodel"
	"github.com/yai-dev/yai/mlx"
)

// poisonTensor rewrites one tensor of a safetensors file (the first when name is "") as
// all NaN and returns its name.
func poisonTensor(t *testing.T, path, name string) string {
	t.Helper()
	err := mlx.Do(func() error {
		tensors, meta, err := mlx.LoadSafetensors(path)
		if err != nil {
			return err
		}
		if name == "" {
			for n := range tensors {
				if name == "" || n < name {
					name = n
				}
			}
		}
		x := tensors[name]
		tensors[name] = mlx.Full(x.Shape(), math.NaN(), x.Dtype())
		mlx.Eval(tensors[name])
		if err := mlx.SaveSafetensors(path+".new", tensors, meta); err != nil {
			return err
		}
		return os.Rename(path+".new", path)
	})
	if err != nil {
		t.Fatal(err)
	}
	return name
}

// Adapters holding NaN are refused by fuse, generate and every export before anything is
// written or decoded, naming the file and the tensor.
func TestNaNAdaptersAreRefused(t *testing.T) {
	dir := testmodel.Tiny(t, "tiny")
	adapter := testmodel.RandomAdapter(t, dir, 11, 0.3)
	file := filepath.Join(adapter, lora.WeightsFile)
	name := poisonTensor(t, file, "")
	out := filepath.Join(t.TempDir(), "fused")
	var stdout, stderr strings.Builder
	code := fuseMain([]string{"--model", dir, "--adapter", adapter, "--out", out}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), file) || !strings.Contains(stderr.String(), name) {
		t.Errorf("fuse of NaN adapters: exit %d, %q; want exit 1 naming %s and %s", code, stderr.String(), file, name)
	}
	if exists(out) {
		t.Error("fuse of NaN adapters wrote a model")
	}
	_, errOut, code := runCmd(t, generateCmd, "", "--model", dir, "--adapter", adapter, "--prompt", "hi", "--max-tokens", "2")
	if code != 1 || !strings.Contains(errOut, name) || !strings.Contains(errOut, "NaN") {
		t.Errorf("generate with NaN adapters: exit %d, %q", code, errOut)
	}
	for _, format := range []string{"gguf", "gguf-lora", "peft"} {
		out := filepath.Join(t.TempDir(), format)
		stdout.Reset()
		stderr.Reset()
		code := exportMain([]string{format, "--model", dir, "--adapter", adapter, "--out", out}, &stdout, &stderr)
		if code != 1 || !strings.Contains(stderr.String(), name) || !strings.Contains(stderr.String(), "NaN") {
			t.Errorf("export %s of NaN adapters: exit %d, %q", format, code, stderr.String())
		}
		if exists(out) {
			t.Errorf("export %s of NaN adapters wrote %s", format, out)
		}
	}
}

// trustRecipe trains the tiny model 6 steps on a copy of the quickstart data (so that a test
// may edit it), with a checkpoint every 3 steps.
func trustRecipe(t *testing.T) string {
	t.Helper()
	_, modelDir := yai(t)
	dir := t.TempDir()
	if err := copyDir(filepath.Join("..", "..", "recipes", "data", "quickstart"), filepath.Join(dir, "data")); err != nil {
		t.Fatal(err)
	}
	src := `version: 1
name: trust
model: ` + modelDir + `
data: ./data
steps: 6
memory: {limit: 2GB}
stages:
  - {id: load, kind: load-4bit}
  - {id: lora, kind: attach-lora, after: [load], with: {rank: 4, layers: 1, keys: [q_proj]}}
  - {id: data, kind: data, after: [load], with: {format: text, batch_size: 2, max_seq_length: 64}}
  - {id: train, kind: step, with: {lr: 1e-3}}
  - {id: ckpt, kind: checkpoint, every: 3, with: {keep: 0}}
  - {id: save, kind: save-adapter, on: teardown}
`
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := run(t, dir, "run", "r.yaml"); code != 0 {
		t.Fatalf("run: exit %d\n%s", code, stderr)
	}
	return dir
}

// What a resume reads back is checked: nothing left to train is an error with the hint, a
// chosen older checkpoint resumes, edited data is refused unless --force (and recorded), a
// checkpoint with NaN optimizer state is refused naming the tensor and file, and a resume
// that fails leaves no adapters behind.
func TestResumeTrustsNothingReadBack(t *testing.T) {
	dir := trustRecipe(t)
	parent := runDirs(dir)[0]

	for _, args := range [][]string{{}, {"--set", "steps=4"}} {
		_, stderr, code := run(t, dir, append([]string{"run", "--resume", parent}, args...)...)
		if code == 0 || !strings.Contains(stderr, "nothing left to train") || !strings.Contains(stderr, "--set steps=") {
			t.Errorf("resume of a finished run %v: exit %d\n%s", args, code, stderr)
		}
	}
	if n := len(runDirs(dir)); n != 1 {
		t.Fatalf("a refused resume made a run directory (%d)", n)
	}

	before := runDirs(dir)
	_, stderr, code := run(t, dir, "run", "--resume", rundir.CheckpointDir(parent, 3))
	if code != 0 {
		t.Fatalf("resume of step-3: exit %d\n%s", code, stderr)
	}
	if ms, _, _ := rundir.ReadMetrics(newRunDir(t, dir, before), 0); len(ms) != 3 || ms[0].Step != 4 {
		t.Errorf("resume of the step-3 checkpoint trained %+v; want steps 4 to 6", ms)
	}

	// every row edited, the row count kept
	train := filepath.Join(dir, "data", "train.jsonl")
	raw, _ := os.ReadFile(train)
	if err := os.WriteFile(train, []byte(strings.ReplaceAll(string(raw), "has a", "owns a")), 0o644); err != nil {
		t.Fatal(err)
	}
	before = runDirs(dir)
	_, stderr, code = run(t, dir, "run", "--resume", parent, "--set", "steps=8")
	if code != 1 || !strings.Contains(stderr, "train.jsonl changed since the checkpoint") || len(runDirs(dir)) != len(before) {
		t.Errorf("resume on edited data: exit %d\n%s", code, stderr)
	}
	_, stderr, code = run(t, dir, "run", "--resume", parent, "--set", "steps=8", "--force")
	if code != 0 {
		t.Fatalf("forced resume on edited data: exit %d\n%s", code, stderr)
	}
	if b := readFile(t, filepath.Join(newRunDir(t, dir, before), "resume.json")); !strings.Contains(string(b), "train.jsonl changed") {
		t.Errorf("resume.json does not record the data change: %s", b)
	}
	os.WriteFile(train, raw, 0o644)

	file := filepath.Join(rundir.CheckpointDir(parent, 6), "optimizer.safetensors")
	name := poisonTensor(t, file, "")
	before = runDirs(dir)
	_, stderr, code = run(t, dir, "run", "--resume", parent, "--set", "steps=8")
	if code == 0 || !strings.Contains(stderr, file) || !strings.Contains(stderr, name) || !strings.Contains(stderr, "NaN") {
		t.Errorf("resume of a poisoned checkpoint: exit %d\n%s", code, stderr)
	}
	if failed := runDirs(dir); len(failed) > len(before) {
		d := newRunDir(t, dir, before)
		if exists(filepath.Join(d, "adapters")) || exists(filepath.Join(d, "adapters.safetensors")) {
			t.Errorf("a failed resume saved adapters into %s", d)
		}
		if r, _ := rundir.ReadResult(d, 0); r == nil || r.ExitCode == 0 || r.Steps != 0 {
			t.Errorf("failed resume's result %+v", r)
		}
	}
}

// Every numeric flag out of its range is a usage error (exit 2) naming the flag, before
// anything runs.
func TestNumericFlagsAreRangeChecked(t *testing.T) {
	dir := t.TempDir()
	m := []string{"--model", "m", "--data", "d"}
	g := []string{"--model", "m", "--prompt", "hi"}
	cases := []struct {
		flag string
		args []string
	}{
		{"--ranks", []string{"run", "--ranks", "0", "r.yaml"}},
		{"--ranks", []string{"run", "--ranks", "-3", "r.yaml"}},
		{"--ranks", []string{"validate", "--ranks", "0", "r.yaml"}},
		{"--port", []string{"run", "--port", "70000", "r.yaml"}},
		{"--port", []string{"run", "--port", "0", "r.yaml"}},
		{"--batches", append([]string{"eval", "--batches", "0"}, m...)},
		{"--batches", append([]string{"eval", "--batches", "-5"}, m...)},
		{"--max-seq-length", append([]string{"eval", "--max-seq-length", "-5"}, m...)},
		{"--batch-size", append([]string{"eval", "--batch-size", "0"}, m...)},
		{"--seed", append([]string{"eval", "--seed", "4294967296"}, m...)},
		{"--max-tokens", append([]string{"generate", "--max-tokens", "0"}, g...)},
		{"--temp", append([]string{"generate", "--temp", "-1"}, g...)},
		{"--temp", append([]string{"generate", "--temp", "NaN"}, g...)},
		{"--top-p", append([]string{"generate", "--top-p", "1.5"}, g...)},
		{"--top-k", append([]string{"generate", "--top-k", "-1"}, g...)},
		{"--min-p", []string{"chat", "--min-p", "2", "--model", "m"}},
		{"--max-tokens", []string{"compare", "--model", "m", "--adapters", "a", "--max-tokens", "-1", "Q?"}},
		{"--bits", []string{"import", "--bits", "7", "--out", "o", "x.gguf"}},
		{"--group-size", []string{"import", "--group-size", "48", "--out", "o", "x.gguf"}},
	}
	for _, c := range cases {
		_, stderr, code := run(t, dir, c.args...)
		if code != 2 || !strings.Contains(stderr, c.flag) {
			t.Errorf("yai %s: exit %d, %q; want exit 2 naming %s", strings.Join(c.args, " "), code, stderr, c.flag)
		}
	}
}

// A torn last metrics line (a killed run) is reported with its file and line, not dropped
// silently.
func TestReportNamesATornMetricsLine(t *testing.T) {
	run := writeRun(t, t.TempDir(), "a-20260101T000001Z", 0, 3, 2.5)
	f, err := os.OpenFile(filepath.Join(run, "metrics.jsonl"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"step":3,"loss":2.`)
	f.Close()
	var stdout, stderr strings.Builder
	code := reportMain([]string{"--out", filepath.Join(t.TempDir(), "r"), run}, &stdout, &stderr, time.Now())
	want := filepath.Join(run, "metrics.jsonl") + ":3: the last line is torn"
	if code != 0 || !strings.Contains(stderr.String(), want) {
		t.Errorf("exit %d, stderr %q; want it to say %q", code, stderr.String(), want)
	}
}

// A prompt longer than the model's context is an error in generate and chat; a chat line
// over the reader's limit is an error naming the line.
func TestPromptOverTheContextAndLongChatLines(t *testing.T) {
	dir := testmodel.Tiny(t, "micro") // max_position_embeddings 512
	long := strings.Repeat("owl ", 600)
	_, errOut, code := runCmd(t, generateCmd, "", "--model", dir, "--raw", "--prompt", long, "--max-tokens", "2")
	if code != 1 || !strings.Contains(errOut, "longer than the model's context of 512") {
		t.Errorf("generate with a long prompt: exit %d, %q", code, errOut)
	}
	_, errOut, code = runCmd(t, chatCmd, "hi\n"+long+"\n", "--model", dir, "--max-tokens", "2")
	if code != 1 || !strings.Contains(errOut, "longer than the model's context of 512") {
		t.Errorf("chat with a long turn: exit %d, %q", code, errOut)
	}
	defer func(n int) { maxChatLine = n }(maxChatLine)
	maxChatLine = 100
	_, errOut, code = runCmd(t, chatCmd, "hi\n\n"+strings.Repeat("x", 200)+"\n", "--model", dir, "--max-tokens", "2")
	if code != 1 || !strings.Contains(errOut, "stdin line 3 is longer than 100 bytes") {
		t.Errorf("chat with a line over the limit: exit %d, %q", code, errOut)
	}
}

// validate refuses a distributed backend this build cannot run, at its line; ring passes.
func TestValidateRefusesUnavailableBackends(t *testing.T) {
	for _, b := range []string{"ring", "mpi", "nccl"} {
		dir := cliRecipe(t, "distributed: {ranks: 2, backend: "+b+"}\n")
		_, stderr, code := run(t, dir, "validate", "--skip-model", "r.yaml")
		switch {
		case mlx.DistributedAvailable(b) && code != 0:
			t.Errorf("backend %s (available): exit %d\n%s", b, code, stderr)
		case !mlx.DistributedAvailable(b) && (code != 1 || !strings.Contains(stderr, "r.yaml:13:") || !strings.Contains(stderr, "cannot run the "+b+" distributed backend")):
			t.Errorf("backend %s (not in this build): exit %d\n%s", b, code, stderr)
		}
	}
}

// A rank killed at any moment never takes rank 0 down with it: rank 0 runs teardown (the
// adapters are saved), writes result.json naming the lost rank and ends with an exit code of
// its own, not a signal (a write to the dead peer's socket once raised SIGPIPE in an MLX
// thread, killing rank 0 about one time in three). Many times in the long tier.
func TestKilledRankNeverTakesRankZeroDown(t *testing.T) {
	trials := 4
	if testenv.Long() {
		trials = 100
	}
	for i := range trials {
		dir := dpRecipe(t, 100000, "")
		launcher, wait := launchAndWaitForSteps(t, dir, 2, 1+i%3)
		victim := rankPID(t, launcher, 1)
		time.Sleep(time.Duration(i%5) * 7 * time.Millisecond) // kill at different points of a step
		if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		code, stderr, _ := wait()
		runDir := runDirs(dir)[0]
		res, err := rundir.ReadResult(runDir, 0)
		exits, _ := rundir.ReadRanks(runDir)
		switch {
		case code == 0:
			t.Fatalf("trial %d: launch exited 0 after rank 1 was killed\n%s", i, stderr)
		case err != nil || res == nil:
			t.Fatalf("trial %d: rank 0 wrote no result.json (%v); ranks.json %+v\n%s", i, err, exits, stderr)
		case !strings.Contains(res.Error, "rank 1"):
			t.Fatalf("trial %d: rank 0's result does not name rank 1: %+v", i, res)
		case len(exits) < 1 || exits[0].Signal != "":
			t.Fatalf("trial %d: rank 0 ended by a signal: %+v", i, exits)
		case !exists(filepath.Join(runDir, "adapters", lora.WeightsFile)):
			t.Fatalf("trial %d: rank 0 saved no adapters (no teardown)", i)
		}
	}
}
