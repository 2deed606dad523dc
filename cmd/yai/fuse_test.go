package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yai-dev/yai/internal/testmodel"
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
