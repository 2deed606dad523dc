package modeldir

import (
	"encoding/json"
	"fmt"
)

// Qwen3: the Llama block without biases, with an RMS norm over each head of the queries and
// of the keys before the rotary embedding (mlx-lm's qwen3.py).
func init() {
	Register(&Family{Name: "qwen3", Types: []string{"qwen3"}, Configure: configureQwen3, Layer: qwen3Layer})
}

// configureQwen3 applies qwen3.py's arguments: head_dim, max_position_embeddings and
// tie_word_embeddings are required; rope_theta too, unless transformers ≥ 5 nested it (with
// the scaling) under rope_parameters.
func configureQwen3(c *Config, raw Raw) error {
	for _, k := range []string{"head_dim", "max_position_embeddings", "tie_word_embeddings", "num_key_value_heads"} {
		if !raw.Has(k) {
			return fmt.Errorf("%s is missing (qwen3 requires it)", k)
		}
	}
	if !raw.Has("rope_theta") {
		var params map[string]json.RawMessage
		if err := raw.Get("rope_parameters", &params); err != nil {
			return err
		}
		nested := Raw(params)
		if !nested.Has("rope_theta") {
			return fmt.Errorf("rope_theta is missing from the model config")
		}
		if err := nested.Get("rope_theta", &c.RopeTheta); err != nil {
			return fmt.Errorf("rope_parameters.%w", err)
		}
		if c.RopeScaling == nil {
			var s RopeScaling
			if err := raw.Get("rope_parameters", &s); err != nil {
				return err
			}
			if s.Kind() != "default" {
				c.RopeScaling = &s
			}
		}
	}
	return nil
}

func qwen3Layer(c *Config, i int) Layer {
	l := LlamaLayer(c, i)
	for _, m := range []*Module{&l.Q, &l.K, &l.V, &l.O, &l.Gate, &l.Up, &l.Down} {
		m.Bias = false // qwen3.py has none, whatever attention_bias says
	}
	p := l.Path + ".self_attn."
	l.QNorm, l.KNorm = c.Norm(p+"q_norm", c.HeadDim), c.Norm(p+"k_norm", c.HeadDim)
	return l
}
