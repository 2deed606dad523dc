package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yai-dev/yai/internal/testmodel"
)

// familyRecipe trains the family's tiny model with every memory stage of the seed document:
// the governor, a guard handing crossings to it, a selective reload, cache clearing, and
// checkpoints, adapting the family's own projections.
func familyRecipe(t *testing.T, f testmodel.Family, modelDir string) string {
	t.Helper()
	keys, _ := json.Marshal(f.Keys)
	src := fmt.Sprintf(`version: 1
name: %s
model: %s
data: %s
steps: 4
seed: 3
memory: {limit: 2GB}
stages:
  - {id: load, kind: load-4bit}
  - {id: lora, kind: attach-lora, after: [load], with: {rank: 4, layers: 2, keys: %s}}
  - {id: data, kind: data, after: [load], with: {format: text, batch_size: 2, max_seq_length: 48}}
  - {id: adapt, kind: adapt, with: {margin: 0.1}}
  - {id: guard, kind: guard, with: {watch: [mlx.peak], buffer: 0.2, action: adapt}}
  - {id: train, kind: step, with: {lr: 1e-3}}
  - {id: reload, kind: reload-selective, when: "step == 2", with: {tensors: [targets, head]}}
  - {id: clear, kind: clear-cache, every: 2}
  - {id: validate, kind: eval, every: 3, with: {batches: 1}}
  - {id: ckpt, kind: checkpoint, every: 2, with: {keep: 0}}
  - {id: save, kind: save-adapter, on: teardown}
`, f.Name, modelDir, quickstartData(), keys)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Every command works on every family: validate with its estimate, run with the governor
// and a selective reload, resume, eval, generate, chat and fuse (whose float fuse answers
// as the base model with the adapters does).
func TestEveryCommandOnEveryFamily(t *testing.T) {
	for _, f := range testmodel.Families {
		t.Run(f.Name, func(t *testing.T) {
			modelDir := testmodel.Tiny(t, f.Preset)
			dir := familyRecipe(t, f, modelDir)

			stdout, stderr, code := run(t, dir, "validate", "r.yaml")
			if code != 0 || !strings.Contains(stdout, "estimated peak") {
				t.Fatalf("validate: exit %d\n%s%s", code, stdout, stderr)
			}
			if _, stderr, code := run(t, dir, "run", "r.yaml"); code != 0 {
				t.Fatalf("run: exit %d\n%s", code, stderr)
			}
			first := runDirs(dir)[0]
			if got := readResult(t, first, 0); got.Steps != 4 {
				t.Fatalf("run: %+v", got)
			}
			if _, stderr, code := run(t, dir, "run", "--resume", first, "--set", "steps=6"); code != 0 {
				t.Fatalf("resume: exit %d\n%s", code, stderr)
			}
			resumed := newRunDir(t, dir, []string{first})
			if got := readResult(t, resumed, 0); got.Steps != 6 {
				t.Errorf("resume: %+v", got)
			}
			adapters := filepath.Join(resumed, "adapters")

			var out, errOut strings.Builder
			if code := evalMain([]string{"--model", modelDir, "--adapter", resumed, "--data", quickstartData(), "--split", "valid", "--batches", "2", "--json"}, &out, &errOut); code != 0 {
				t.Errorf("eval: exit %d\n%s", code, errOut.String())
			} else {
				var got struct{ Loss float64 }
				if err := json.Unmarshal([]byte(out.String()), &got); err != nil || !(got.Loss > 0 && got.Loss < 20) {
					t.Errorf("eval: %q (%v)", out.String(), err)
				}
			}

			args := []string{"--prompt", "The blue owl", "--max-tokens", "8"}
			adapted, errText, code := runCmd(t, generateCmd, "", append([]string{"--model", modelDir, "--adapter", adapters}, args...)...)
			if code != 0 || adapted == "" {
				t.Fatalf("generate: exit %d, %q\n%s", code, adapted, errText)
			}
			if reply, errText, code := runCmd(t, chatCmd, "Hello\nAnd then?\n", "--model", modelDir, "--adapter", adapters, "--max-tokens", "6"); code != 0 || reply == "" {
				t.Errorf("chat: exit %d, %q\n%s", code, reply, errText)
			}

			fused := filepath.Join(t.TempDir(), "fused")
			out.Reset()
			errOut.Reset()
			if code := fuseMain([]string{"--model", modelDir, "--adapter", resumed, "--out", fused, "--dequantize"}, &out, &errOut); code != 0 {
				t.Fatalf("fuse: exit %d\n%s", code, errOut.String())
			}
			if answer, _, _ := runCmd(t, generateCmd, "", append([]string{"--model", fused}, args...)...); answer != adapted {
				t.Errorf("the fused model answers %q, the base with the adapters %q", answer, adapted)
			}
		})
	}
}

// quickstartData is the shipped quickstart's text data.
func quickstartData() string {
	data, _ := filepath.Abs(filepath.Join("..", "..", "recipes", "data", "quickstart"))
	return data
}
