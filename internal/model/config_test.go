package model

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/yai-dev/yai/modeldir"
)

func TestParseConfigAppliesMLXLMDefaults(t *testing.T) {
	c, err := ParseConfig([]byte(`{"model_type": "mistral", "hidden_size": 64, "num_hidden_layers": 1,
		"intermediate_size": 128, "num_attention_heads": 4, "vocab_size": 10, "rms_norm_eps": 1e-6,
		"quantization": {"group_size": 64, "bits": 4, "mode": "affine",
			"lm_head": false, "model.layers.0.mlp.down_proj": {"group_size": 32, "bits": 8}}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{ModelType: "mistral", HiddenSize: 64, NumHiddenLayers: 1, IntermediateSize: 128,
		NumAttentionHeads: 4, NumKeyValueHeads: 4, VocabSize: 10, HeadDim: 16, RMSNormEps: 1e-6,
		RopeTheta: 10000, TieWordEmbeddings: true, Activation: "silu",
		Quantization: &Quantization{Default: modeldir.Quant{GroupSize: 64, Bits: 4, Mode: "affine"},
			Layers: map[string]*modeldir.Quant{"lm_head": nil, "model.layers.0.mlp.down_proj": {GroupSize: 32, Bits: 8, Mode: "affine"}}}}
	if c.Family == nil || c.Family.Name != "llama" {
		t.Errorf("family %+v, want llama's", c.Family)
	}
	c.Family = nil
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
}

func TestParseConfigRejectsBadShapes(t *testing.T) {
	for name, src := range map[string]string{
		"heads not a multiple": `{"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 1, "intermediate_size": 128, "num_attention_heads": 4, "num_key_value_heads": 3, "vocab_size": 10, "rms_norm_eps": 1e-6}`,
		"no eps":               `{"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 1, "intermediate_size": 128, "num_attention_heads": 4, "vocab_size": 10}`,
		"zero vocab":           `{"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 1, "intermediate_size": 128, "num_attention_heads": 4, "vocab_size": 0, "rms_norm_eps": 1e-6}`,
		"sliding, no window":   `{"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 1, "intermediate_size": 128, "num_attention_heads": 4, "vocab_size": 10, "rms_norm_eps": 1e-6, "layer_types": ["sliding_attention"]}`,
		"unknown layer type":   `{"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 1, "intermediate_size": 128, "num_attention_heads": 4, "vocab_size": 10, "rms_norm_eps": 1e-6, "layer_types": ["linear_attention"]}`,
	} {
		if _, err := ParseConfig([]byte(src)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestWriteTinyIsDeterministic(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	for _, dir := range []string{a, b} {
		if err := WriteTiny(dir, TinyPresets["micro"]); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} {
		x, err1 := os.ReadFile(filepath.Join(a, name))
		y, err2 := os.ReadFile(filepath.Join(b, name))
		if err1 != nil || err2 != nil || !bytes.Equal(x, y) {
			t.Errorf("%s differs between two runs with the same seed (%v, %v)", name, err1, err2)
		}
	}
	other := TinyPresets["micro"]
	other.Seed = 2
	c := t.TempDir()
	if err := WriteTiny(c, other); err != nil {
		t.Fatal(err)
	}
	x, _ := os.ReadFile(filepath.Join(a, "model.safetensors"))
	y, _ := os.ReadFile(filepath.Join(c, "model.safetensors"))
	if bytes.Equal(x, y) {
		t.Error("another seed wrote the same weights")
	}
}
