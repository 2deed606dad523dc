package modeldir

import "fmt"

// Mixtral: the Llama block whose MLP is a sparse mixture of experts (mlx-lm's mixtral.py).
// A router scores num_local_experts SwiGLU experts; each token runs through the
// num_experts_per_tok best, weighted by a softmax over their scores.
func init() {
	Register(&Family{Name: "mixtral", Types: []string{"mixtral"}, Configure: configureMixtral, Layer: mixtralLayer})
}

// configureMixtral applies mixtral.py's ModelArgs: 8 experts, 2 per token, rope_theta 1e6,
// untied embeddings and num_key_value_heads 8 unless given; head_dim always hidden_size /
// heads; no biases and no rope scaling (its attention builds a plain nn.RoPE).
func configureMixtral(c *Config, raw Raw) error {
	c.NumExperts, c.ExpertsPerToken, c.RopeTheta, c.TieWordEmbeddings = 8, 2, 1e6, false
	if !raw.Has("num_key_value_heads") {
		c.NumKeyValueHeads = 8
	}
	if err := raw.GetAll(map[string]any{"num_local_experts": &c.NumExperts, "num_experts_per_tok": &c.ExpertsPerToken,
		"rope_theta": &c.RopeTheta, "tie_word_embeddings": &c.TieWordEmbeddings}); err != nil {
		return err
	}
	c.HeadDim = c.HiddenSize / c.NumAttentionHeads
	c.ExpertSize = c.IntermediateSize
	c.RopeScaling, c.AttentionBias, c.MLPBias = nil, false, false
	if c.NumAttentionHeads%c.NumKeyValueHeads != 0 {
		return fmt.Errorf("num_attention_heads %d is not a multiple of num_key_value_heads %d", c.NumAttentionHeads, c.NumKeyValueHeads)
	}
	return checkExperts(c, "num_local_experts")
}

// checkExperts checks the mixture's sizes; field names the number of experts.
func checkExperts(c *Config, field string) error {
	if c.NumExperts <= 0 {
		return fmt.Errorf("%s must be positive, got %d", field, c.NumExperts)
	}
	if c.ExpertsPerToken <= 0 || c.ExpertsPerToken > c.NumExperts {
		return fmt.Errorf("num_experts_per_tok must be in 1..%s (%d), got %d", field, c.NumExperts, c.ExpertsPerToken)
	}
	if c.ExpertSize <= 0 {
		return fmt.Errorf("the experts' intermediate size must be positive, got %d", c.ExpertSize)
	}
	return nil
}

func mixtralLayer(c *Config, i int) Layer {
	l := LlamaLayer(c, i)
	moe(c, &l, fmt.Sprintf("model.layers.%d.block_sparse_moe.", i), "num_local_experts", "intermediate_size")
	return l
}

// moe replaces l's MLP by a mixture of experts under prefix p: the router p+"gate" and the
// stacked experts p+"switch_mlp.*", as mlx-lm's sanitize names them.
func moe(c *Config, l *Layer, p, expertsWhy, sizeWhy string) {
	h, n, f := c.HiddenSize, c.NumExperts, c.ExpertSize
	l.Gate, l.Up, l.Down = Module{}, Module{}, Module{}
	l.Router = c.Linear(p+"gate", h, n, false, expertsWhy)
	l.ExpertGate = c.Experts(p+"switch_mlp.gate_proj", n, h, f, sizeWhy)
	l.ExpertUp = c.Experts(p+"switch_mlp.up_proj", n, h, f, sizeWhy)
	l.ExpertDown = c.Experts(p+"switch_mlp.down_proj", n, f, h, "hidden_size")
}
