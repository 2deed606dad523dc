package model

import "testing"

// Qwen3 models written by mlx-lm's qwen3.py: per-head q/k norms, no biases, head_dim apart
// from hidden_size / heads, and rope_theta nested under rope_parameters (transformers ≥ 5).
func TestQwen3MatchesMLXLM(t *testing.T) {
	qwen3 := func(extra map[string]any) map[string]any {
		c := baseConfig(map[string]any{"model_type": "qwen3", "head_dim": 48})
		for k, v := range extra {
			c[k] = v
		}
		return c
	}
	nested := qwen3(map[string]any{"tie_word_embeddings": true, "rope_parameters": map[string]any{"rope_theta": 1000000.0, "rope_type": "default"}})
	delete(nested, "rope_theta")
	checkReferenceModels(t, []referenceModel{
		{name: "qwen3-4bit-bf16", config: qwen3(nil), flags: []string{"--bits", "4", "--group-size", "64", "--dtype", "bfloat16"},
			check: func(t *testing.T, m *Model) {
				if a := m.Layers[0].Attn; a.QNorm == nil || a.KNorm == nil || a.QNorm.Dim(0) != 48 {
					t.Errorf("want per-head q/k norms of head_dim 48")
				}
			}},
		{name: "qwen3-float32-tied-rope-parameters", config: nested, flags: []string{"--dtype", "float32"}},
	})
}
