package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yai-dev/yai/internal/gguf"
	"github.com/yai-dev/yai/internal/ggufexport"
	"github.com/yai-dev/yai/internal/ggufimport"
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
