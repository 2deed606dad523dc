package modeldir

import "fmt"

// Llama, and the families mlx-lm runs as Llama with other defaults: Mistral (model_type
// mistral is llama to mlx-lm) and Qwen2 (biases on q, k and v; head_dim always derived).
func init() {
	Register(&Family{Name: "llama", Types: []string{"llama", "mistral"}, Configure: configureLlama})
	Register(&Family{Name: "qwen2", Types: []string{"qwen2"}, Configure: configureQwen2, Layer: qwen2Layer})
}

// configureLlama reads layer_types: full_attention, or sliding_attention with
// sliding_window.
func configureLlama(c *Config, raw Raw) error {
	var layerTypes []string
	if err := raw.GetAll(map[string]any{"layer_types": &layerTypes, "sliding_window": &c.SlidingWindow}); err != nil {
		return err
	}
	if len(layerTypes) > 0 && len(layerTypes) != c.NumHiddenLayers {
		return fmt.Errorf("layer_types: %d entries for %d layers", len(layerTypes), c.NumHiddenLayers)
	}
	for i, t := range layerTypes {
		switch t {
		case "full_attention":
		case "sliding_attention":
			if c.SlidingWindow <= 0 {
				return fmt.Errorf("layer_types[%d]: sliding_attention needs a positive sliding_window", i)
			}
			if c.Windows == nil {
				c.Windows = make([]int, c.NumHiddenLayers)
			}
			c.Windows[i] = c.SlidingWindow
		default:
			return fmt.Errorf("layer_types[%d]: unsupported layer type %q (supported: full_attention, sliding_attention)", i, t)
		}
	}
	return nil
}

func configureQwen2(c *Config, raw Raw) error {
	c.RopeTheta, c.MaxPositionEmbeddings = 1000000, 32768
	if err := raw.GetAll(map[string]any{"rope_theta": &c.RopeTheta, "max_position_embeddings": &c.MaxPositionEmbeddings}); err != nil {
		return err
	}
	c.HeadDim = c.HiddenSize / c.NumAttentionHeads // mlx-lm's qwen2 ignores head_dim
	return nil
}

func qwen2Layer(c *Config, i int) Layer {
	l := LlamaLayer(c, i)
	l.Q.Bias, l.K.Bias, l.V.Bias = true, true, true
	return l
}
