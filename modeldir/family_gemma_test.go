package modeldir

import (
	"math"
	"strings"
	"testing"
)

// Gemma configs take mlx-lm's ModelArgs defaults: gemma3_text's for every field it has one
// for, gemma3.py's outer vocab_size and head counts for a multimodal config.
func TestGemmaConfigDefaults(t *testing.T) {
	c, err := ParseConfig([]byte(`{"model_type": "gemma3_text"}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.HiddenSize != 1152 || c.NumHiddenLayers != 26 || c.HeadDim != 256 || c.NumKeyValueHeads != 1 || c.VocabSize != 262144 ||
		c.RopeTheta != 1e6 || c.LocalRopeTheta != 1e4 || c.RMSNormEps != 1e-6 || c.MaxPositionEmbeddings != 32768 {
		t.Errorf("gemma3_text defaults: %+v", c)
	}
	if c.QueryScale != math.Pow(256, -0.5) || c.EmbedScale != 34 || !c.ClipResidual || !c.NormPlusOne || c.Activation != "gelu_approx" {
		t.Errorf("gemma3_text block: query scale %v, embed scale %v (√1152 = 33.94 in bfloat16 is 34)", c.QueryScale, c.EmbedScale)
	}
	for i, w := range c.Windows {
		if want := map[bool]int{true: 0, false: 512}[(i+1)%6 == 0]; w != want {
			t.Errorf("layer %d: window %d, want %d", i, w, want)
		}
	}
	l := c.Layout()
	if l.Layers[0].Rope.Base != 1e4 || l.Layers[5].Rope.Base != 1e6 || l.Layers[0].QNorm.Path != "model.layers.0.self_attn.q_norm" {
		t.Errorf("layers: %+v", l.Layers[0])
	}

	c, err = ParseConfig([]byte(`{"model_type": "gemma3", "text_config": {"model_type": "gemma3_text", "vocab_size": 5},
		"quantization": {"group_size": 64, "bits": 4}}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.ModelType != "gemma3" || c.VocabSize != 262208 || c.NumAttentionHeads != 8 || c.NumKeyValueHeads != 4 || c.Prefix != "language_model." ||
		c.Quantization == nil || c.Quantization.Default.Bits != 4 {
		t.Errorf("gemma3: %+v", c)
	}
	l = c.Layout()
	if l.Embedding.Path != "language_model.model.embed_tokens" || l.Layers[2].Gate.Path != "language_model.model.layers.2.mlp.gate_proj" {
		t.Errorf("gemma3 names: %s, %s", l.Embedding.Path, l.Layers[2].Gate.Path)
	}
	if !c.Unused("vision_tower.encoder.layers.0.weight") || !c.Unused("multi_modal_projector.mm_input_projection_weight") || c.Unused("language_model.model.norm.weight") {
		t.Errorf("gemma3 drops the vision tower and projector only")
	}
	c.SettleHead(func(name string) bool { return name == "language_model.lm_head.weight" })
	if c.TieWordEmbeddings || c.Layout().LMHead.Path != "language_model.lm_head" {
		t.Errorf("a stored lm_head unties the head")
	}

	c, err = ParseConfig([]byte(`{"model_type": "gemma2", "hidden_size": 64, "num_hidden_layers": 2, "intermediate_size": 128,
		"num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 100, "rms_norm_eps": 1e-6,
		"tie_word_embeddings": false, "sliding_window": 4, "rope_scaling": {"type": "linear", "factor": 2.0}}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.AttnSoftcap != 50 || c.FinalSoftcap != 30 || c.QueryScale != 1/12.0 || c.EmbedScale != 8 || !c.TieWordEmbeddings ||
		c.Windows != nil || c.RopeScaling != nil || c.ClipResidual {
		t.Errorf("gemma2: %+v", c)
	}
	if l := c.Layout(); l.LMHead != nil || l.Layers[1].PostFFNorm.Path != "model.layers.1.post_feedforward_layernorm" || l.Layers[1].PreFFNorm.Path != "model.layers.1.pre_feedforward_layernorm" {
		t.Errorf("gemma2 layout: %+v", l.Layers[1])
	}
}

func TestGemmaConfigErrors(t *testing.T) {
	for cfg, want := range map[string]string{
		`{"model_type": "gemma2", "hidden_size": 64, "num_hidden_layers": 2, "intermediate_size": 128, "num_attention_heads": 4, "vocab_size": 10, "rms_norm_eps": 1e-6, "num_key_value_heads": 2}`: "head_dim is missing",
		`{"model_type": "gemma3"}`:                              "text_config is missing",
		`{"model_type": "gemma3_text", "num_hidden_layers": 4}`: "sliding_window_pattern 6 must be between 1 and num_hidden_layers 4",
	} {
		if _, err := ParseConfig([]byte(cfg)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", cfg, err, want)
		}
	}
}

func TestRoundBFloat16(t *testing.T) {
	for x, want := range map[float64]float64{math.Sqrt(1152): 34, math.Sqrt(2304): 48, math.Sqrt(3840): 62, math.Sqrt(5376): 73.5, 1 + 1.0/256: 1, 1 + 3.0/256: 1 + 4.0/256} {
		if got := roundBFloat16(x); got != want {
			t.Errorf("roundBFloat16(%v) = %v, want %v", x, got, want)
		}
	}
}
