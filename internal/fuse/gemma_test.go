package fuse

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/yai-dev/yai/internal/testenv"
	"github.com/yai-dev/yai/internal/testmodel"
)

// A multimodal Gemma 3 checkpoint keeps its text model under language_model.*: the fused
// model yai writes has exactly the tensors, by name, and the values mlx_lm.fuse writes (the
// adapters, saved under the same names, reach the same layers).
func TestFuseGemma3MatchesMLXLMFuse(t *testing.T) {
	root := testenv.ModuleRoot(t)
	dir := filepath.Join(t.TempDir(), "model")
	cfg, _ := json.Marshal(map[string]any{"model_type": "gemma3", "vocab_size": 1024, "text_config": map[string]any{
		"model_type": "gemma3_text", "hidden_size": 128, "num_hidden_layers": 2, "intermediate_size": 256,
		"num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 32, "sliding_window": 4, "sliding_window_pattern": 2}})
	python(t, filepath.Join(root, "internal", "model", "testdata", "mlxlm_reference.py"), "write", dir, string(cfg), "2",
		"--bits", "4", "--group-size", "64", "--dtype", "bfloat16", "--tie")
	for _, name := range []string{"tokenizer.json", "tokenizer_config.json"} {
		b, err := os.ReadFile(filepath.Join(root, "internal", "model", "tinytokenizer", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	adapter := testmodel.RandomAdapter(t, dir, 11, 0.3)
	out := filepath.Join(t.TempDir(), "fused")
	res, err := Fuse(dir, adapter, out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(res.Layers, "language_model.model.layers.1.self_attn.q_proj") {
		t.Fatalf("fused %v", res.Layers)
	}
	ref := filepath.Join(t.TempDir(), "mlxlm")
	python(t, "-m", "mlx_lm", "fuse", "--model", dir, "--adapter-path", adapter, "--save-path", ref)
	got, want, base := loadTensors(t, out), loadTensors(t, ref), loadTensors(t, dir)
	if g, w := slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)); !slices.Equal(g, w) {
		t.Fatalf("tensor names differ from mlx_lm.fuse's:\n yai    %v\n mlx_lm %v", g, w)
	}
	changed := 0
	for n, w := range want {
		if !sameArray(t, got[n], w) {
			t.Errorf("%s differs from mlx_lm.fuse's", n)
		}
		if !sameArray(t, got[n], base[n]) {
			changed++
		}
	}
	if changed == 0 {
		t.Errorf("the fuse changed nothing: the comparison proves nothing")
	}
}
