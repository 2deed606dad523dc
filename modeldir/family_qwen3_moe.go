package modeldir

import (
	"fmt"
	"slices"
)

// Qwen3-MoE: Qwen3's attention (per-head q/k norms, no biases) and, in the blocks
// decoder_sparse_step and mlp_only_layers pick, a mixture of experts in place of the MLP
// (mlx-lm's qwen3_moe.py). Its router turns every expert's logit into a probability and
// keeps the num_experts_per_tok highest, renormalized when norm_topk_prob.
func init() {
	Register(&Family{Name: "qwen3_moe", Types: []string{"qwen3_moe"}, Configure: configureQwen3MoE, Layer: qwen3MoELayer})
}

// configureQwen3MoE applies qwen3_moe.py's ModelArgs, whose fields have no defaults: every
// one must be present. Its attention builds a plain nn.RoPE: no scaling, never traditional.
func configureQwen3MoE(c *Config, raw Raw) error {
	for _, k := range []string{"num_experts", "num_experts_per_tok", "decoder_sparse_step", "mlp_only_layers",
		"moe_intermediate_size", "num_key_value_heads", "head_dim", "rope_theta", "tie_word_embeddings",
		"max_position_embeddings", "norm_topk_prob"} {
		if !raw.Has(k) {
			return fmt.Errorf("%s is missing (qwen3_moe requires it)", k)
		}
	}
	var step int
	var mlpOnly []int
	if err := raw.GetAll(map[string]any{"num_experts": &c.NumExperts, "num_experts_per_tok": &c.ExpertsPerToken,
		"decoder_sparse_step": &step, "mlp_only_layers": &mlpOnly, "moe_intermediate_size": &c.ExpertSize,
		"norm_topk_prob": &c.NormTopKProb}); err != nil {
		return err
	}
	c.SoftmaxFirst = true
	c.RopeScaling, c.RopeTraditional = nil, false
	c.Sparse = make([]bool, c.NumHiddenLayers)
	if c.NumExperts == 0 {
		return nil // every block dense, as qwen3_moe.py builds it
	}
	if step <= 0 {
		return fmt.Errorf("decoder_sparse_step must be positive, got %d", step)
	}
	for i := range c.Sparse {
		c.Sparse[i] = !slices.Contains(mlpOnly, i) && (i+1)%step == 0
	}
	return checkExperts(c, "num_experts")
}

func qwen3MoELayer(c *Config, i int) Layer {
	l := qwen3Layer(c, i)
	if c.Sparse[i] {
		moe(c, &l, fmt.Sprintf("model.layers.%d.mlp.", i), "num_experts", "moe_intermediate_size")
	}
	return l
}
