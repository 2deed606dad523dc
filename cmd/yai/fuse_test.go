package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yai-dev/yai/internal/gguf"
	"github.com/yai-dev/yai/internal/ggufexport"
	"github.com/yai-dev/yai/internal/ggufimport"
	"github.com/yai-dev/yai/internal/rundir"
	"github.com/yai-dev/yai/internal/testmodel"
	"github.com/yai-dev/yai/internal/testtrain"
	"github.com/yai-dev/yai/mlx"
)

// yai fuse writes a model that yai generate answers with exactly as the base model with the
// adapter does (float fuse), takes a run directory for --adapter, and never overwrites.
func TestFuseCommand(t *testing.T) {
	dir := testmodel.Tiny(t, "tiny")
	adapter := testmodel.RandomAdapter(t, dir, 11, 0.3)
	runDir := t.TempDir()
	if err := copyDir(adapter, filepath.Join(runDir, "adapters")); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "fused")
	var stdout, stderr strings.Builder
	if code := fuseMain([]string{"--model", dir, "--adapter", runDir, "--out", out, "--dequantize"}, &stdout, &stderr); code != 0 {
		t.Fatalf("yai fuse: exit %d\n%s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "fused 6 layers") {
		t.Errorf("stdout %q", stdout.String())
	}
	args := []string{"--prompt", "The blue owl", "--max-tokens", "16"}
	fused, _, _ := runCmd(t, generateCmd, "", append([]string{"--model", out}, args...)...)
	adapted, _, _ := runCmd(t, generateCmd, "", append([]string{"--model", dir, "--adapter", adapter}, args...)...)
	if fused != adapted {
		t.Errorf("fused model answers %q, base with adapter %q", fused, adapted)
	}
	stdout.Reset()
	stderr.Reset()
	before, _ := os.ReadFile(filepath.Join(out, "config.json"))
	if code := fuseMain([]string{"--model", dir, "--adapter", adapter, "--out", out}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "already exists") {
		t.Errorf("second fuse into %s: exit %d, %q", out, code, stderr.String())
	}
	if after, _ := os.ReadFile(filepath.Join(out, "config.json")); string(after) != string(before) {
		t.Errorf("the existing fused model was changed")
	}
}

// With --data, yai fuse reports the losses and the share of the improvement kept; a fuse
// whose re-quantization rounds the update away is refused with the remedy and writes
// nothing; --dequantize passes, and --force writes the refused one.
func TestFuseCommandChecksTheMerge(t *testing.T) {
	dir := testmodel.Tiny(t, "tiny")
	adapter := testtrain.TrainedAdapter(t, dir, 1e-5, 20)
	data := testtrain.QuickstartData(t)
	parent := t.TempDir()
	out := filepath.Join(parent, "fused")
	var stdout, stderr strings.Builder
	code := fuseMain([]string{"--model", dir, "--adapter", adapter, "--out", out, "--data", data}, &stdout, &stderr)
	t.Logf("refused:\n%s%s", stdout.String(), stderr.String())
	if code != 1 || !strings.Contains(stderr.String(), "refused") || !strings.Contains(stderr.String(), "--dequantize") ||
		!strings.Contains(stdout.String(), "of the adapters' improvement kept") {
		t.Fatalf("exit %d", code)
	}
	if left, _ := os.ReadDir(parent); len(left) != 0 {
		t.Errorf("a refused fuse left %v", left)
	}
	stdout.Reset()
	stderr.Reset()
	if code := fuseMain([]string{"--model", dir, "--adapter", adapter, "--out", out, "--data", data, "--dequantize"}, &stdout, &stderr); code != 0 ||
		!strings.Contains(stdout.String(), "100.0% of the adapters' improvement kept") {
		t.Fatalf("--dequantize: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	stdout.Reset()
	stderr.Reset()
	forced := filepath.Join(parent, "forced")
	if code := fuseMain([]string{"--model", dir, "--adapter", adapter, "--out", forced, "--data", data, "--force"}, &stdout, &stderr); code != 0 ||
		!strings.Contains(stderr.String(), "written with --force") {
		t.Fatalf("--force: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	if _, err := os.Stat(filepath.Join(forced, "config.json")); err != nil {
		t.Error(err)
	}
}

// yai export gguf --data checks the merged file as yai reads it back. On a model whose
// weights lie on Q4_0's grid (a Q4_0 export imported back as float), adapters trained with a
// small learning rate move no weight by half a Q4_0 step: the Q4_0 merge rounds them away
// and is refused with the remedy; F16 keeps them.
func TestExportGGUFChecksTheMerge(t *testing.T) {
	tiny := testmodel.Tiny(t, "micro")
	onGrid := filepath.Join(t.TempDir(), "q4_0-grid")
	base, err := ggufexport.Merged(tiny, "", filepath.Join(t.TempDir(), "base"), ggufexport.MergedOptions{Type: gguf.Q4_0})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ggufimport.Import(filepath.Join(base.Dir, base.Files[0]), onGrid, ggufimport.Options{Dtype: mlx.Float32}); err != nil {
		t.Fatal(err)
	}
	adapter := testtrain.TrainedAdapter(t, onGrid, 1e-5, 20)
	data := testtrain.QuickstartData(t)
	parent := t.TempDir()
	var stdout, stderr strings.Builder
	code := exportMain([]string{"gguf", "--model", onGrid, "--adapter", adapter, "--out", filepath.Join(parent, "q4"), "--type", "q4_0", "--data", data}, &stdout, &stderr)
	t.Logf("q4_0:\n%s%s", stdout.String(), stderr.String())
	if code != 1 || !strings.Contains(stderr.String(), "--type q8_0 or f16") || !strings.Contains(stderr.String(), "Nothing was written") {
		t.Fatalf("exit %d", code)
	}
	if left, _ := os.ReadDir(parent); len(left) != 0 {
		t.Errorf("a refused export left %v", left)
	}
	stdout.Reset()
	stderr.Reset()
	code = exportMain([]string{"gguf", "--model", onGrid, "--adapter", adapter, "--out", filepath.Join(parent, "f16"), "--type", "f16", "--data", data}, &stdout, &stderr)
	t.Logf("f16:\n%s%s", stdout.String(), stderr.String())
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// Without --data, yai fuse and yai export gguf given a run directory check on the run's own
// validation split, read as its recipe's data stage reads it (here rows truncated at 12
// tokens), wherever the recipe's relative data path points; without a run directory, or when
// the run recorded no recipe directory for a relative path, they say they did not check.
func TestFuseChecksOnTheRunsData(t *testing.T) {
	modelDir := testmodel.Tiny(t, "micro")
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := copyDir(testtrain.QuickstartData(t), data); err != nil {
		t.Fatal(err)
	}
	src := fmt.Sprintf(`version: 1
name: fusecheck
model: %s
data: data
steps: 12
seed: 3
memory: {limit: 2GB}
stages:
  - {id: load, kind: load-4bit}
  - {id: lora, kind: attach-lora, after: [load], with: {rank: 4, layers: 2, keys: [q_proj, v_proj]}}
  - {id: data, kind: data, after: [load], with: {format: text, batch_size: 4, max_seq_length: 12}}
  - {id: train, kind: step, with: {lr: 2e-3}}
  - {id: save, kind: save-adapter, on: teardown}
`, modelDir)
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := run(t, dir, "run", "r.yaml"); code != 0 {
		t.Fatalf("yai run: exit %d\n%s", code, stderr)
	}
	runDir := newRunDir(t, dir, nil)
	// The run is started from elsewhere: data: data resolves against the recipe's directory.
	t.Chdir(t.TempDir())

	fuseOut := func(args ...string) (string, string) {
		t.Helper()
		var stdout, stderr strings.Builder
		args = append([]string{"--model", modelDir, "--out", filepath.Join(t.TempDir(), "fused"), "--dequantize"}, args...)
		if code := fuseMain(args, &stdout, &stderr); code != 0 {
			t.Fatalf("yai fuse %v: exit %d\n%s%s", args, code, stdout.String(), stderr.String())
		}
		return stdout.String(), stderr.String()
	}
	report := func(stdout string) string {
		for _, line := range strings.Split(stdout, "\n") {
			if strings.HasPrefix(line, "validation loss on ") {
				return line
			}
		}
		return ""
	}
	got, stderr := fuseOut("--adapter", runDir)
	t.Logf("from the run:\n%s%s", got, stderr)
	valid := filepath.Join(data, "valid.jsonl")
	if r := report(got); !strings.Contains(r, "validation loss on "+valid) || !strings.Contains(r, "100.0% of the adapters' improvement kept") {
		t.Errorf("fuse of the run directory without --data: %q, want a check on %s keeping 100%%", r, valid)
	}
	if strings.Contains(stderr, "not checked") {
		t.Errorf("stderr %q", stderr)
	}
	// The same figures as --data with the recipe's max_seq_length; other figures without it.
	same, _ := fuseOut("--adapter", runDir, "--data", data, "--max-seq-length", "12")
	if report(same) != report(got) {
		t.Errorf("--data with the recipe's max_seq_length reports %q, the run's check %q", report(same), report(got))
	}
	full, _ := fuseOut("--adapter", filepath.Join(runDir, "adapters"), "--data", data)
	if report(full) == report(got) {
		t.Errorf("rows of 2048 tokens report what rows of 12 do: %q", report(full))
	}
	// The adapters directory inside the run directory finds the run too.
	if inner, _ := fuseOut("--adapter", filepath.Join(runDir, "adapters")); report(inner) != report(got) {
		t.Errorf("--adapter RUN/adapters reports %q", report(inner))
	}

	var stdout, errOut strings.Builder
	code := exportMain([]string{"gguf", "--model", modelDir, "--adapter", runDir, "--out", filepath.Join(t.TempDir(), "gguf"), "--type", "f16"}, &stdout, &errOut)
	t.Logf("export gguf:\n%s%s", stdout.String(), errOut.String())
	if r := report(stdout.String()); code != 0 || !strings.Contains(r, "validation loss on "+valid) || !strings.Contains(r, "% of the adapters' improvement kept") {
		t.Errorf("yai export gguf of the run directory without --data: exit %d, %q", code, r)
	}

	// --no-check skips it.
	if out, stderr := fuseOut("--adapter", runDir, "--no-check"); report(out) != "" || !strings.Contains(stderr, "not checked: --no-check") {
		t.Errorf("--no-check: %q %q", out, stderr)
	}

	// Not a run directory: not checked, and said so.
	plain := filepath.Join(t.TempDir(), "adapters")
	if err := copyDir(filepath.Join(runDir, "adapters"), plain); err != nil {
		t.Fatal(err)
	}
	out, stderr := fuseOut("--adapter", plain)
	if report(out) != "" || !strings.Contains(stderr, "not checked: give --data") {
		t.Errorf("a plain adapter directory: %q %q", out, stderr)
	}
	// A run without source.json (written before it existed) finds its recipe's directory in
	// its newest checkpoint; with no checkpoint either, data: data cannot be resolved: not
	// checked, with the reason.
	if err := os.Remove(filepath.Join(runDir, rundir.SourceFile)); err != nil {
		t.Fatal(err)
	}
	if fromCkpt, _ := fuseOut("--adapter", runDir); report(fromCkpt) != report(got) {
		t.Errorf("from the checkpoint's recipe directory: %q", report(fromCkpt))
	}
	if err := os.RemoveAll(filepath.Join(runDir, rundir.CheckpointsDir)); err != nil {
		t.Fatal(err)
	}
	out, stderr = fuseOut("--adapter", runDir)
	if report(out) != "" || !strings.Contains(stderr, "not checked: the run's recipe") || !strings.Contains(stderr, "did not record") {
		t.Errorf("a run without source.json: %q %q", out, stderr)
	}
}
