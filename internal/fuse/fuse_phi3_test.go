package fuse

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yai-dev/yai/internal/testenv"
	"github.com/yai-dev/yai/internal/testmodel"
)

// Adapters on Phi-3's fused projections (self_attn.qkv_proj, mlp.gate_up_proj) fuse as
// mlx_lm.fuse fuses them, on a 4-bit Phi-3 written by mlx-lm's phi3.py.
func TestFusedPhi3MatchesMLXLMFuse(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "phi3")
	factors := strings.Repeat("1.5, ", 11) + "2.0" // 32 × 0.75 / 2 rotated frequencies
	config := `{"model_type": "phi3", "hidden_size": 128, "num_hidden_layers": 2, "intermediate_size": 256,
		"num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 320, "rms_norm_eps": 1e-5,
		"max_position_embeddings": 1024, "original_max_position_embeddings": 8, "partial_rotary_factor": 0.75,
		"tie_word_embeddings": true, "rope_scaling": {"type": "longrope", "short_factor": [` + factors + `], "long_factor": [` + factors + `]}}`
	script := filepath.Join(testenv.ModuleRoot(t), "internal", "model", "testdata", "mlxlm_reference.py")
	python(t, script, "write", dir, config, "4", "--bits", "4", "--group-size", "64", "--dtype", "bfloat16")
	// mlx_lm.fuse loads a tokenizer: the tiny preset's serves.
	tiny := testmodel.Tiny(t, "tiny")
	for _, f := range []string{"tokenizer.json", "tokenizer_config.json"} {
		data, err := os.ReadFile(filepath.Join(tiny, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	keys := []string{"self_attn.qkv_proj", "mlp.gate_up_proj", "mlp.down_proj"}
	adapter := testmodel.RandomAdapterOn(t, dir, keys, 12, 0.3)
	checkFusedTensors(t, dir, adapter)
}
