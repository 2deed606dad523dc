package modeldir

import (
	"encoding/json"
	"fmt"
)

// Phi-3 (Phi-3, Phi-3.5-mini, Phi-4-mini), as mlx-lm's phi3.py: the Llama block without
// biases, with q, k and v fused into self_attn.qkv_proj and gate and up into
// mlp.gate_up_proj, rotary positions on the first partial_rotary_factor of each head, and
// su/longrope scaling (rope_utils.SuScaledRoPE).
func init() {
	Register(&Family{Name: "phi3", Types: []string{"phi3"}, Configure: configurePhi3, Layer: phi3Layer,
		RopeKinds: map[string]func(*Config) error{"su": checkSuScaled, "longrope": checkSuScaled},
		LoRAKeys:  []string{"self_attn.qkv_proj"}})
}

// configurePhi3 applies phi3.py's ModelArgs: its defaults, head_dim always derived, the
// rotary dimensions, and rope_scaling as its __post_init__ reads it.
func configurePhi3(c *Config, raw Raw) error {
	c.MaxPositionEmbeddings, c.OriginalMaxPositionEmbeddings, c.TieWordEmbeddings = 131072, 4096, false
	partial := 1.0
	if err := raw.GetAll(map[string]any{"max_position_embeddings": &c.MaxPositionEmbeddings,
		"original_max_position_embeddings": &c.OriginalMaxPositionEmbeddings,
		"tie_word_embeddings":              &c.TieWordEmbeddings, "partial_rotary_factor": &partial}); err != nil {
		return err
	}
	c.HeadDim = c.HiddenSize / c.NumAttentionHeads // phi3.py ignores head_dim
	c.RotaryDims = int(float64(c.HeadDim) * partial)
	if c.RotaryDims <= 0 || c.RotaryDims > c.HeadDim {
		return fmt.Errorf("partial_rotary_factor %v leaves %d rotary dimensions of head_dim %d", partial, c.RotaryDims, c.HeadDim)
	}
	var scaling map[string]json.RawMessage
	if err := raw.Get("rope_scaling", &scaling); err != nil {
		return err
	}
	if len(scaling) == 0 { // phi3.py tests the dict's truth: {} is no scaling
		c.RopeScaling = nil
		return nil
	}
	for _, k := range []string{"long_factor", "type"} {
		if _, ok := scaling[k]; !ok {
			return fmt.Errorf("rope_scaling: phi3 requires long_factor and type")
		}
	}
	switch c.RopeScaling.Type {
	case "su", "longrope":
		if _, ok := scaling["short_factor"]; !ok {
			return fmt.Errorf("rope_scaling: %s requires short_factor", c.RopeScaling.Type)
		}
	case "linear":
	default:
		c.RopeScaling = nil // phi3.py warns and runs without scaling
	}
	return nil
}

// checkSuScaled checks what SuScaledRoPE computes with: one long factor per rotated
// frequency (or one for all of them), and a pretrained context to scale from. mlx-lm
// reads short_factor but never uses it.
func checkSuScaled(c *Config) error {
	n := (c.RotaryDims + 1) / 2 // mx.arange(0, dims, 2)
	if l := len(c.RopeScaling.LongFactor); l != 1 && l != n {
		return fmt.Errorf("rope_scaling: long_factor has %d entries, want %d (one per rotated frequency)", l, n)
	}
	if c.OriginalMaxPositionEmbeddings <= 1 {
		return fmt.Errorf("original_max_position_embeddings must be more than 1, got %d", c.OriginalMaxPositionEmbeddings)
	}
	return nil
}

func phi3Layer(c *Config, i int) Layer {
	h, q, kv, ff := c.HiddenSize, c.NumAttentionHeads*c.HeadDim, c.NumKeyValueHeads*c.HeadDim, c.IntermediateSize
	p := c.LayerPath(i) + "."
	rope := c.DefaultRope()
	if k := c.RopeScaling.Kind(); k == "su" || k == "longrope" {
		rope.Traditional = false // SuScaledRoPE ignores rope_traditional
	}
	return Layer{
		Path:      c.LayerPath(i),
		QKV:       c.Linear(p+"self_attn.qkv_proj", h, q+2*kv, false, "(num_attention_heads + 2 × num_key_value_heads) × head_dim"),
		O:         c.Linear(p+"self_attn.o_proj", q, h, false, "hidden_size"),
		GateUp:    c.Linear(p+"mlp.gate_up_proj", h, 2*ff, false, "2 × intermediate_size"),
		Down:      c.Linear(p+"mlp.down_proj", ff, h, false, "hidden_size"),
		InputNorm: c.Norm(p+"input_layernorm", h),
		PreFFNorm: c.Norm(p+"post_attention_layernorm", h),
		Rope:      rope,
	}
}
