package modeldir_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/yai-dev/yai/modeldir"
)

// phi3 parses a Phi-4-mini-like config.json with edit applied to its fields.
func phi3(t *testing.T, edit func(map[string]any)) (*modeldir.Config, error) {
	t.Helper()
	factors := make([]float64, 12) // 32 × 0.75 / 2 rotated frequencies
	for i := range factors {
		factors[i] = 1
	}
	c := map[string]any{"model_type": "phi3", "hidden_size": 128, "num_hidden_layers": 2, "intermediate_size": 256,
		"num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 320, "rms_norm_eps": 1e-5,
		"head_dim": 7, "partial_rotary_factor": 0.75,
		"rope_scaling": map[string]any{"type": "longrope", "short_factor": factors, "long_factor": factors}}
	edit(c)
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return modeldir.ParseConfig(data)
}

// phi3.py's defaults and fused modules; rope_scaling as its __post_init__ reads it.
func TestPhi3Config(t *testing.T) {
	c, err := phi3(t, func(map[string]any) {})
	if err != nil {
		t.Fatal(err)
	}
	if c.HeadDim != 32 || c.RotaryDims != 24 || c.MaxPositionEmbeddings != 131072 || c.OriginalMaxPositionEmbeddings != 4096 || c.TieWordEmbeddings {
		t.Errorf("head_dim %d, rotary %d, positions %d of %d, tied %v: want phi3.py's 32, 24, 131072 of 4096, untied",
			c.HeadDim, c.RotaryDims, c.MaxPositionEmbeddings, c.OriginalMaxPositionEmbeddings, c.TieWordEmbeddings)
	}
	l := c.Layout().Layers[1]
	var paths []string
	for _, m := range l.Modules() {
		paths = append(paths, strings.TrimPrefix(m.Path, "model.layers.1."))
	}
	if got := strings.Join(paths, " "); got != "self_attn.qkv_proj self_attn.o_proj mlp.gate_up_proj mlp.down_proj input_layernorm post_attention_layernorm" {
		t.Errorf("modules %s", got)
	}
	if l.QKV.Out != 128+2*64 || l.GateUp.Out != 512 || l.QKV.Bias || l.Rope.Dims != 24 || l.Rope.OriginalMaxPositions != 4096 {
		t.Errorf("layer %+v", l)
	}
	if got := strings.Join(c.LoRAKeys(), ","); got != "self_attn.qkv_proj" {
		t.Errorf("default LoRA keys %s", got)
	}

	// A scaling type phi3.py does not read is dropped, with a warning there.
	c, err = phi3(t, func(m map[string]any) { m["rope_scaling"] = map[string]any{"type": "llama3", "long_factor": 1.0} })
	if err != nil || c.RopeScaling != nil {
		t.Errorf("unread scaling type: %v, scaling %+v", err, c.RopeScaling)
	}
	// A single number scales every frequency.
	c, err = phi3(t, func(m map[string]any) {
		m["rope_scaling"] = map[string]any{"type": "su", "short_factor": 1.0, "long_factor": 2.0}
	})
	if err != nil || len(c.RopeScaling.LongFactor) != 1 || c.RopeScaling.LongFactor[0] != 2 {
		t.Errorf("scalar factors: %v, scaling %+v", err, c.RopeScaling)
	}

	for name, tc := range map[string]struct {
		edit func(map[string]any)
		want string
	}{
		"no long_factor": {func(m map[string]any) { m["rope_scaling"] = map[string]any{"type": "longrope", "short_factor": 1.0} },
			"rope_scaling: phi3 requires long_factor and type"},
		"no short_factor": {func(m map[string]any) { m["rope_scaling"] = map[string]any{"type": "su", "long_factor": 1.0} },
			"rope_scaling: su requires short_factor"},
		"factors for full rotation": {func(m map[string]any) { m["partial_rotary_factor"] = 1.0 },
			"rope_scaling: long_factor has 12 entries, want 16 (one per rotated frequency)"},
		"no original context": {func(m map[string]any) { m["original_max_position_embeddings"] = 0 },
			"original_max_position_embeddings must be more than 1, got 0"},
	} {
		if _, err := phi3(t, tc.edit); err == nil || err.Error() != tc.want {
			t.Errorf("%s: error %v, want %q", name, err, tc.want)
		}
	}

	// Llama reads no su scaling.
	_, err = modeldir.ParseConfig([]byte(`{"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 1,
		"intermediate_size": 128, "num_attention_heads": 4, "vocab_size": 100, "rms_norm_eps": 1e-6,
		"rope_scaling": {"type": "su", "long_factor": 1.0, "short_factor": 1.0}}`))
	if want := `unsupported rope_scaling type "su" (supported: default, linear, llama3)`; err == nil || err.Error() != want {
		t.Errorf("llama with su scaling: %v, want %q", err, want)
	}
}
