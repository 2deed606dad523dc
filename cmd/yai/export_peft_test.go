package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yai-dev/yai/internal/testmodel"
)

// yai export peft writes the PEFT files from a run directory, and yai import-peft turns them
// back into adapters that generate the same answer.
func TestExportPeftAndImportPeftCommands(t *testing.T) {
	dir := testmodel.Tiny(t, "tiny")
	adapter := testmodel.RandomAdapter(t, dir, 11, 0.3)
	runDir := t.TempDir()
	if err := copyDir(adapter, filepath.Join(runDir, "adapters")); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "peft")
	var stdout, stderr strings.Builder
	if code := exportMain([]string{"peft", "--model", dir, "--adapter", runDir, "--out", out, "--base", "org/base"}, &stdout, &stderr); code != 0 {
		t.Fatalf("yai export peft: exit %d\n%s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "wrote 6 adapted modules (r 4, lora_alpha 16)") {
		t.Errorf("stdout %q", stdout.String())
	}
	for _, f := range []string{"adapter_model.safetensors", "adapter_config.json"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("export lacks %s", f)
		}
	}
	back := filepath.Join(t.TempDir(), "back")
	stdout.Reset()
	if code := importPeftMain([]string{out, "--model", dir, "--out", back}, &stdout, &stderr); code != 0 {
		t.Fatalf("yai import-peft: exit %d\n%s", code, stderr.String())
	}
	args := []string{"--model", dir, "--prompt", "The blue owl", "--max-tokens", "16"}
	want, _, _ := runCmd(t, generateCmd, "", append(args, "--adapter", adapter)...)
	got, _, _ := runCmd(t, generateCmd, "", append(args, "--adapter", back)...)
	if got != want {
		t.Errorf("imported adapters answer %q, the originals %q", got, want)
	}
	stderr.Reset()
	if code := importPeftMain([]string{out, "--model", dir, "--out", back}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "already exists") {
		t.Errorf("second import into %s: exit %d, %q", back, code, stderr.String())
	}
}
