package ggufexport

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/yai-dev/yai/internal/gguf"
	"github.com/yai-dev/yai/internal/ggufimport"
	"github.com/yai-dev/yai/modeldir"
)

// The formats a family can be exported to.
const (
	FormatMerged  = "gguf"      // the merged model as one GGUF file
	FormatAdapter = "gguf-lora" // the adapters as a llama.cpp GGUF LoRA adapter
)

// arch is how one yai family is written in GGUF.
type arch struct {
	// name is general.architecture, llama.cpp's name for the family.
	name string
	// permuteQK: llama.cpp's converter interleaves the rotary halves of the q and k rows
	// for this architecture (its Llama rotary pairs neighbours, Hugging Face's halves).
	permuteQK bool
	formats   []string
	// names override blockNames for this architecture.
	names map[string]string
	// normPlusOne: the family computes its RMS norms with (1 + w) and llama.cpp's converter
	// stores 1 + w (Gemma).
	normPlusOne bool
	// windows: llama.cpp's architecture has Gemma 3's sliding-window layers, five of six.
	windows bool
}

// gemmaNames are Gemma's four norms per block in llama.cpp.
var gemmaNames = map[string]string{
	"post_attention_layernorm":   "post_attention_norm",
	"pre_feedforward_layernorm":  "ffn_norm",
	"post_feedforward_layernorm": "post_ffw_norm",
}

// archs maps a yai family (modeldir.Family.Name) onto llama.cpp's architecture. A family not
// listed, or a format not in its list, cannot be exported yet.
var archs = map[string]arch{
	"llama": {name: "llama", permuteQK: true, formats: []string{FormatMerged, FormatAdapter}}, // Llama 1–3, Mistral
	"qwen2": {name: "qwen2", formats: []string{FormatMerged, FormatAdapter}},
	"qwen3": {name: "qwen3", formats: []string{FormatMerged, FormatAdapter}},
	// Phi-3's fused projections are llama.cpp's attn_qkv and ffn_up (gate rows first, as
	// its SwiGLU splits them); rotary on the first rope.dimension_count of each head.
	"phi3": {name: "phi3", formats: []string{FormatMerged, FormatAdapter}},
	// Mixtral is llama.cpp's llama with experts: the router is ffn_gate_inp (always F32), the
	// stacked experts ffn_{gate,up,down}_exps (experts, out, in), mlx-lm's switch_mlp layout.
	"mixtral": {name: "llama", permuteQK: true, formats: []string{FormatMerged, FormatAdapter}},
	// Qwen3-MoE with experts in every block (llama.cpp's qwen3moe has no dense blocks and
	// always renormalizes the top-k weights).
	"qwen3_moe": {name: "qwen3moe", formats: []string{FormatMerged, FormatAdapter}},
	// Gemma 2 and 3 (the text model of a multimodal Gemma 3 too, as llama.cpp's converter
	// writes Gemma3ForConditionalGeneration's: gemma3, the vision tower left out): norms stored
	// as 1 + w, the √hidden embedding scale and the soft-caps computed by llama.cpp from the
	// metadata. On the tiny presets llama.cpp agrees with yai at ≥ 99% top-1 over 300 positions
	// and within 1e-4 nats of mean loss, but a position's log-probability differs by up to 6e-4
	// (Gemma 2) and 4e-3 to 1e-2 (Gemma 3), against 2e-4 for the other families. Both are
	// llama.cpp's half precision on the CPU: its GELU reads a float16 table (Gemma 2's gap
	// closes to 1.6e-4 with the MLP zeroed), and Gemma 3's query and key norms make attention
	// scores of order one, where the other families' random ones are near zero. Measured on a
	// six-block Gemma 3: with the MLP zeroed the gap is 3.7e-3 while the attention pattern moves
	// the log-probabilities by up to 1 nat (0.3%), and with the queries zeroed too (uniform
	// attention) it falls to 2.7e-4; a wrong rotary or norm would move them by tenths. Real
	// Gemma tokenizers are SentencePiece: llama.cpp's "llama" vocabulary without the space
	// prefix (spm.go).
	"gemma2":      {name: "gemma2", names: gemmaNames, normPlusOne: true, formats: []string{FormatMerged, FormatAdapter}},
	"gemma3_text": {name: "gemma3", names: gemmaNames, normPlusOne: true, windows: true, formats: []string{FormatMerged, FormatAdapter}},
	"gemma3":      {name: "gemma3", names: gemmaNames, normPlusOne: true, windows: true, formats: []string{FormatMerged, FormatAdapter}},
}

// Support lists, for every family yai knows, the export formats it supports (none for a
// family not exported yet), sorted by family.
func Support() map[string][]string {
	out := map[string][]string{}
	for _, t := range modeldir.SupportedTypes() {
		f, _ := modeldir.FamilyOf(t)
		out[f.Name] = archs[f.Name].formats
	}
	return out
}

// Families lists the families that export as format, sorted.
func Families(format string) []string {
	var out []string
	for fam, a := range archs {
		if slices.Contains(a.formats, format) {
			out = append(out, fam)
		}
	}
	sort.Strings(out)
	return out
}

// archFor checks that the model's family can be exported as format.
func archFor(c *modeldir.Config, format string) (arch, error) {
	a, ok := archs[c.Family.Name]
	if !ok || !slices.Contains(a.formats, format) {
		can := Families(format)
		return a, fmt.Errorf("model_type %s (family %s) cannot be exported as %s yet (families that can: %s)",
			c.ModelType, c.Family.Name, format, strings.Join(can, ", "))
	}
	if c.Windows != nil && !a.windows {
		return a, fmt.Errorf("model_type %s: sliding-window layers cannot be exported as %s yet", c.ModelType, format)
	}
	return a, nil
}

// blockNames maps mlx-lm's module names within a block onto llama.cpp's.
var blockNames = map[string]string{
	"self_attn.q_proj":                      "attn_q",
	"self_attn.k_proj":                      "attn_k",
	"self_attn.v_proj":                      "attn_v",
	"self_attn.o_proj":                      "attn_output",
	"self_attn.q_norm":                      "attn_q_norm",
	"self_attn.k_norm":                      "attn_k_norm",
	"self_attn.qkv_proj":                    "attn_qkv",
	"block_sparse_moe.gate":                 "ffn_gate_inp",
	"block_sparse_moe.switch_mlp.gate_proj": "ffn_gate_exps",
	"block_sparse_moe.switch_mlp.up_proj":   "ffn_up_exps",
	"block_sparse_moe.switch_mlp.down_proj": "ffn_down_exps",
	"mlp.gate":                              "ffn_gate_inp",
	"mlp.switch_mlp.gate_proj":              "ffn_gate_exps",
	"mlp.switch_mlp.up_proj":                "ffn_up_exps",
	"mlp.switch_mlp.down_proj":              "ffn_down_exps",
	"mlp.gate_up_proj":                      "ffn_up",
	"mlp.gate_proj":                         "ffn_gate",
	"mlp.up_proj":                           "ffn_up",
	"mlp.down_proj":                         "ffn_down",
	"input_layernorm":                       "attn_norm",
	"post_attention_layernorm":              "ffn_norm",
}

var globalNames = map[string]string{
	"model.embed_tokens": "token_embd",
	"model.norm":         "output_norm",
	"lm_head":            "output",
}

// ggufName maps a module path ("model.layers.3.self_attn.q_proj", under the model's prefix
// such as language_model.) onto llama.cpp's ("blk.3.attn_q"), with the block index (-1 for a
// global tensor).
func (a arch) ggufName(c *modeldir.Config, module string) (string, int, error) {
	inner := strings.TrimPrefix(module, c.Prefix)
	if g, ok := globalNames[inner]; ok {
		return g, -1, nil
	}
	if rest, ok := strings.CutPrefix(inner, "model.layers."); ok {
		idx, part, _ := strings.Cut(rest, ".")
		i, err := strconv.Atoi(idx)
		g, ok := a.names[part]
		if !ok {
			g, ok = blockNames[part]
		}
		if ok && err == nil {
			return fmt.Sprintf("blk.%d.%s", i, g), i, nil
		}
	}
	return "", 0, fmt.Errorf("tensor %s has no llama.cpp name", module)
}

// permuteRows gives q or k rows llama.cpp's order: within each head of headDim rows, row
// h·D + 2i + j holds row h·D + j·D/2 + i (ggufimport's import undoes it).
func permuteRows(w []float32, rows, cols, heads int) []float32 {
	return ggufimport.PermuteRows(w, rows, cols, heads, false)
}

// qkHeads is the head count whose rows permuteRows interleaves for a module, 0 when the
// module is not permuted.
func (a arch) qkHeads(c *modeldir.Config, module string) int {
	if !a.permuteQK {
		return 0
	}
	switch {
	case strings.HasSuffix(module, ".self_attn.q_proj"):
		return c.NumAttentionHeads
	case strings.HasSuffix(module, ".self_attn.k_proj"):
		return c.NumKeyValueHeads
	}
	return 0
}

// hyperKeys are the {arch}.* metadata keys of the model's shape, as llama.cpp's converter
// writes them, and the rotary tensors it writes beside them by name (rope_freqs for Llama 3
// rotary scaling, rope_factors_long and _short for Phi-3's LongRoPE).
func hyperKeys(a arch, c *modeldir.Config) ([]gguf.KV, map[string][]float32, error) {
	p := a.name + "."
	kvs := []gguf.KV{
		{Key: p + "block_count", Value: uint32(c.NumHiddenLayers)},
		{Key: p + "context_length", Value: uint32(c.MaxPositionEmbeddings)},
		{Key: p + "embedding_length", Value: uint32(c.HiddenSize)},
		{Key: p + "feed_forward_length", Value: uint32(c.IntermediateSize)},
		{Key: p + "attention.head_count", Value: uint32(c.NumAttentionHeads)},
		{Key: p + "attention.head_count_kv", Value: uint32(c.NumKeyValueHeads)},
		{Key: p + "rope.freq_base", Value: float32(c.RopeTheta)},
		{Key: p + "attention.layer_norm_rms_epsilon", Value: float32(c.RMSNormEps)},
	}
	if err := gemmaKeys(a, c, &kvs); err != nil {
		return nil, nil, err
	}
	if c.HeadDim != c.HiddenSize/c.NumAttentionHeads || a.name == "qwen3" || a.name == "qwen3moe" || a.normPlusOne {
		kvs = append(kvs, gguf.KV{Key: p + "attention.key_length", Value: uint32(c.HeadDim)},
			gguf.KV{Key: p + "attention.value_length", Value: uint32(c.HeadDim)})
	}
	if a.name == "llama" {
		kvs = append(kvs, gguf.KV{Key: p + "vocab_size", Value: uint32(c.VocabSize)},
			gguf.KV{Key: p + "rope.dimension_count", Value: uint32(c.HeadDim)})
	}
	if c.NumExperts > 0 {
		kvs = append(kvs, gguf.KV{Key: p + "expert_count", Value: uint32(c.NumExperts)},
			gguf.KV{Key: p + "expert_used_count", Value: uint32(c.ExpertsPerToken)})
	}
	if a.name == "qwen3moe" {
		if c.NumExperts == 0 || slices.Contains(c.Sparse, false) {
			return nil, nil, fmt.Errorf("qwen3_moe with dense blocks (mlp_only_layers, decoder_sparse_step > 1 or no experts) cannot be exported to GGUF: llama.cpp's qwen3moe has experts in every block")
		}
		if !c.NormTopKProb {
			return nil, nil, fmt.Errorf("qwen3_moe with norm_topk_prob false cannot be exported to GGUF: llama.cpp's qwen3moe always renormalizes the experts' weights")
		}
		kvs = append(kvs, gguf.KV{Key: p + "expert_feed_forward_length", Value: uint32(c.ExpertSize)})
	}
	if a.name == "phi3" {
		// No sliding window: yai (as mlx-lm's phi3.py) attends to the whole context.
		kvs = append(kvs, gguf.KV{Key: p + "rope.dimension_count", Value: uint32(c.RotaryDims)},
			gguf.KV{Key: p + "rope.scaling.original_context_length", Value: uint32(c.OriginalMaxPositionEmbeddings)},
			gguf.KV{Key: p + "attention.sliding_window", Value: uint32(0)})
	} else if c.RotaryDims != 0 && c.RotaryDims != c.HeadDim {
		return nil, nil, fmt.Errorf("partial rotary dimensions cannot be exported to GGUF for %s yet", a.name)
	}
	if c.RopeTraditional {
		return nil, nil, fmt.Errorf("rope_traditional models cannot be exported to GGUF yet")
	}
	s := c.RopeScaling
	switch k := s.Kind(); {
	case k == "default":
	case k == "linear":
		kvs = append(kvs, gguf.KV{Key: p + "rope.scaling.type", Value: "linear"},
			gguf.KV{Key: p + "rope.scaling.factor", Value: float32(s.Factor)})
	case k == "llama3" && a.name == "llama":
		return kvs, map[string][]float32{"rope_freqs.weight": llama3Factors(c.RopeTheta, c.HeadDim, s.Factor, s.LowFreqFactor, s.HighFreqFactor, float64(s.OriginalMaxPositionEmbeddings))}, nil
	case (k == "su" || k == "longrope") && a.name == "phi3":
		// convert_hf_to_gguf.py's Phi3MiniModel: both factor lists and the attention factor
		// SuScaledRoPE scales the rotated dimensions by.
		n := c.RotaryDims / 2
		scale := float64(c.MaxPositionEmbeddings) / float64(c.OriginalMaxPositionEmbeddings)
		attn := 1.0
		if scale > 1 {
			attn = math.Sqrt(1 + math.Log(scale)/math.Log(float64(c.OriginalMaxPositionEmbeddings)))
		}
		kvs = append(kvs, gguf.KV{Key: p + "rope.scaling.attn_factor", Value: float32(attn)})
		// llama.cpp scales by the short factors when its context is within the original one,
		// by the long ones beyond; yai (as mlx-lm's SuScaledRoPE) always by the long ones, and
		// trained so: both tensors hold the long factors, so llama.cpp computes what yai does
		// at every context size.
		long := factors(s.LongFactor, n)
		if long == nil {
			return nil, nil, fmt.Errorf("rope_scaling: %s factors must have %d entries to be exported to GGUF", k, n)
		}
		return kvs, map[string][]float32{"rope_factors_long.weight": long, "rope_factors_short.weight": long}, nil
	default:
		return nil, nil, fmt.Errorf("rope scaling %q cannot be exported to GGUF for %s yet", k, a.name)
	}
	return kvs, nil, nil
}

// factors is f with n entries (one entry scales every frequency), nil when it has neither.
func factors(f modeldir.Factors, n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		switch len(f) {
		case 1:
			out[i] = float32(f[0])
		case n:
			out[i] = float32(f[i])
		default:
			return nil
		}
	}
	return out
}

// llama3Factors is convert_hf_to_gguf.py's rope_freqs for rope_type llama3, as stored.
func llama3Factors(base float64, dim int, factor, low, high, orig float64) []float32 {
	fs := ggufimport.Llama3Factors(base, dim, factor, low, high, orig)
	out := make([]float32, len(fs))
	for i, f := range fs {
		out[i] = float32(f)
	}
	return out
}

// gemmaKeys adds Gemma's metadata, after checking that llama.cpp computes what yai does: it
// takes the attention scale from the head size (from hidden / heads for the 27B models, which
// it knows by their block count), and for Gemma 3 makes five layers of six sliding-window
// layers with a rotary base of 10000.
func gemmaKeys(a arch, c *modeldir.Config, kvs *[]gguf.KV) error {
	if !a.normPlusOne {
		return nil
	}
	p := a.name + "."
	dim := c.HeadDim
	if a.name == "gemma2" && c.NumHiddenLayers == 46 || a.name == "gemma3" && c.NumHiddenLayers == 62 {
		dim = c.HiddenSize / c.NumAttentionHeads // llama.cpp's LLM_TYPE_27B
	}
	if want := 1 / math.Sqrt(float64(dim)); math.Abs(c.QueryScale-want) > 1e-6*want {
		return fmt.Errorf("query_pre_attn_scalar %g cannot be exported to GGUF: llama.cpp scales %s attention by 1/√%d for %d blocks",
			1/(c.QueryScale*c.QueryScale), a.name, dim, c.NumHiddenLayers)
	}
	if c.FinalSoftcap > 0 {
		*kvs = append(*kvs, gguf.KV{Key: p + "final_logit_softcapping", Value: float32(c.FinalSoftcap)})
	}
	switch a.name {
	case "gemma2":
		// yai, as mlx-lm's gemma2.py, attends to the whole context in every layer: the
		// window llama.cpp needs is the whole context.
		*kvs = append(*kvs, gguf.KV{Key: p + "attn_logit_softcapping", Value: float32(c.AttnSoftcap)},
			gguf.KV{Key: p + "attention.sliding_window", Value: uint32(c.MaxPositionEmbeddings)})
	case "gemma3":
		if c.AttnSoftcap > 0 {
			return fmt.Errorf("gemma3 with attn_logit_softcapping cannot be exported to GGUF: llama.cpp's gemma3 has none")
		}
		if c.LocalRopeTheta != 10000 {
			return fmt.Errorf("rope_local_base_freq %g cannot be exported to GGUF: llama.cpp's gemma3 uses 10000", c.LocalRopeTheta)
		}
		for i := range c.NumHiddenLayers {
			if sliding := c.Window(i) > 0; sliding != ((i+1)%6 != 0) {
				return fmt.Errorf("sliding_window_pattern other than 6 cannot be exported to GGUF: llama.cpp's gemma3 makes five layers of six sliding")
			}
		}
		*kvs = append(*kvs, gguf.KV{Key: p + "attention.sliding_window", Value: uint32(c.SlidingWindow)})
	}
	return nil
}
