package modeldir

import (
	"encoding/json"
	"fmt"
	"math"
)

// Gemma 2 and Gemma 3 as mlx-lm 0.32 writes them (gemma2.py, gemma3_text.py, gemma3.py): RMS
// norms scaling by 1 + weight, before and after attention and the MLP, a GeGLU MLP, the
// embedding scaled by √hidden_size, and attention scaled by query_pre_attn_scalar^-0.5.
//
//   - gemma2: attention scores and the logits capped with tanh; the head is always the tied
//     embedding. mlx-lm's gemma2 has no sliding-window layers (Hugging Face's alternates
//     them): every layer attends to the whole sequence here too.
//   - gemma3_text: per-head q/k norms, float16 residuals clipped; every layer but each
//     sliding_window_pattern-th attends to a sliding window, with rope_local_base_freq
//     and no rope_scaling; the head is tied unless lm_head is stored.
//   - gemma3: a multimodal checkpoint whose text model (text_config) is gemma3_text under
//     language_model.*; mlx-lm drops the vision tower and projector.
func init() {
	Register(&Family{Name: "gemma2", Types: []string{"gemma2"}, Configure: configureGemma2, Layer: gemma2Layer})
	Register(&Family{Name: "gemma3_text", Types: []string{"gemma3_text"}, Configure: configureGemma3, Layer: gemma3Layer,
		Defaults: gemma3Defaults})
	Register(&Family{Name: "gemma3", Types: []string{"gemma3"}, Configure: configureGemma3Wrapped, Layer: gemma3Layer,
		Defaults: gemma3Defaults, Unwrap: unwrapGemma3, Drops: []string{"vision_tower.", "multi_modal_projector."}})
}

// gemma3Defaults are gemma3_text.ModelArgs' defaults of the fields every family reads.
var gemma3Defaults = map[string]any{
	"hidden_size": 1152, "num_hidden_layers": 26, "intermediate_size": 6912, "num_attention_heads": 4,
	"head_dim": 256, "rms_norm_eps": 1.0e-6, "vocab_size": 262144, "num_key_value_heads": 1,
	"rope_theta": 1_000_000.0, "max_position_embeddings": 32768,
}

// gemmaCommon sets what both generations share.
func gemmaCommon(c *Config) {
	c.NormPlusOne, c.Activation = true, "gelu_approx"
	c.AttentionBias, c.MLPBias = false, false // neither module has biases
}

func configureGemma2(c *Config, raw Raw) error {
	for _, k := range []string{"head_dim", "num_key_value_heads"} {
		if !raw.Has(k) {
			return fmt.Errorf("%s is missing (gemma2 requires it)", k)
		}
	}
	gemmaCommon(c)
	attnCap, finalCap, scalar := 50.0, 30.0, 144.0
	if err := raw.GetAll(map[string]any{"attn_logit_softcapping": &attnCap, "final_logit_softcapping": &finalCap,
		"query_pre_attn_scalar": &scalar}); err != nil {
		return err
	}
	if attnCap <= 0 || finalCap <= 0 {
		return fmt.Errorf("gemma2 needs positive attn_logit_softcapping and final_logit_softcapping")
	}
	c.AttnSoftcap, c.FinalSoftcap = attnCap, finalCap
	c.QueryScale = 1.0 / math.Pow(scalar, 0.5)
	c.EmbedScale = math.Pow(float64(c.HiddenSize), 0.5) // a Python float: rounded to the activations' dtype
	c.TieWordEmbeddings = true                          // gemma2.py always projects with the embedding
	c.RopeScaling = nil                                 // and reads no rope_scaling
	return nil
}

func configureGemma3(c *Config, raw Raw) error {
	gemmaCommon(c)
	local, scalar, window, pattern := 10000.0, 256.0, 512, 6
	if err := raw.GetAll(map[string]any{"rope_local_base_freq": &local, "query_pre_attn_scalar": &scalar,
		"sliding_window": &window, "sliding_window_pattern": &pattern}); err != nil {
		return err
	}
	if pattern < 1 || pattern > c.NumHiddenLayers {
		// mlx-lm reads the cache of layer sliding_window_pattern − 1 for the global mask.
		return fmt.Errorf("sliding_window_pattern %d must be between 1 and num_hidden_layers %d", pattern, c.NumHiddenLayers)
	}
	c.RopeTraditional = false // gemma3_text.py ignores rope_traditional
	c.LocalRopeTheta = local
	c.QueryScale = math.Pow(scalar, -0.5)
	// mx.array(hidden_size**0.5, mx.bfloat16): the scale is rounded to bfloat16 first.
	c.EmbedScale = roundBFloat16(math.Pow(float64(c.HiddenSize), 0.5))
	c.ClipResidual = true
	c.HeadFromWeights = true
	c.SlidingWindow = window
	c.Windows = make([]int, c.NumHiddenLayers)
	for i := range c.Windows {
		if (i+1)%pattern != 0 {
			if window <= 0 {
				return fmt.Errorf("sliding_window must be positive, got %d", window)
			}
			c.Windows[i] = window
		}
	}
	return nil
}

// configureGemma3Wrapped is gemma3_text under gemma3.py's language_model.
func configureGemma3Wrapped(c *Config, raw Raw) error {
	c.Prefix = "language_model."
	return configureGemma3(c, raw)
}

// unwrapGemma3 is gemma3.py's ModelArgs: the text model's config is text_config, whose
// vocab_size is the outer one (262208 by default) and whose head counts default to 8 and 4.
// The quantization mlx-lm writes stays at the top.
func unwrapGemma3(raw Raw) (Raw, error) {
	var text Raw
	if err := raw.Get("text_config", &text); err != nil {
		return nil, err
	}
	if text == nil {
		return nil, fmt.Errorf("text_config is missing (gemma3 requires it)")
	}
	vocab := json.RawMessage("262208")
	if raw.Has("vocab_size") {
		vocab = raw["vocab_size"]
	}
	text["vocab_size"] = vocab
	for k, v := range map[string]string{"num_attention_heads": "8", "num_key_value_heads": "4"} {
		if _, ok := text[k]; !ok {
			text[k] = json.RawMessage(v)
		}
	}
	delete(text, "quantization")
	if raw.Has("quantization") {
		text["quantization"] = raw["quantization"]
	}
	return text, nil
}

// roundBFloat16 rounds x to the nearest bfloat16 (ties to even) through float32, as MLX
// converts a Python float.
func roundBFloat16(x float64) float64 {
	b := math.Float32bits(float32(x))
	b += 0x7fff + (b>>16)&1
	return float64(math.Float32frombits(b &^ 0xffff))
}

// gemmaLayer is the llama block with Gemma's four norms and no biases.
func gemmaLayer(c *Config, i int) Layer {
	l := LlamaLayer(c, i)
	p := l.Path + "."
	l.PostAttnNorm = c.Norm(p+"post_attention_layernorm", c.HiddenSize)
	l.PreFFNorm = c.Norm(p+"pre_feedforward_layernorm", c.HiddenSize)
	l.PostFFNorm = c.Norm(p+"post_feedforward_layernorm", c.HiddenSize)
	return l
}

func gemma2Layer(c *Config, i int) Layer {
	l := gemmaLayer(c, i)
	l.Rope.Scaling = nil
	return l
}

func gemma3Layer(c *Config, i int) Layer {
	l := gemmaLayer(c, i)
	p := l.Path + ".self_attn."
	l.QNorm, l.KNorm = c.Norm(p+"q_norm", c.HeadDim), c.Norm(p+"k_norm", c.HeadDim)
	if l.Window > 0 {
		l.Rope = Rope{Dims: c.HeadDim, Base: c.LocalRopeTheta} // initialize_rope without scaling
	}
	return l
}
