package ggufimport

import (
	"fmt"

	"github.com/yai-dev/yai/internal/gguf"
)

// architecture is what the importer knows of one GGUF general.architecture: the mlx-lm
// model_type it becomes, and what llama.cpp's converter (convert_hf_to_gguf.py) changed in
// the tensors that the importer undoes.
type architecture struct {
	modelType string
	hfClass   string
	// permutedQK: the converter interleaves the rotary halves of q and k rows (LlamaModel
	// only: llama, Mistral, Mixtral).
	permutedQK bool
	// normPlusOne: the model scales by 1 + weight, and the converter stored weight + 1 in
	// every *norm.weight (Gemma 2 and 3).
	normPlusOne bool
	// names maps the architecture's own block tensors, or renames shared ones.
	names map[string]string
}

var (
	qkNormNames = map[string]string{"attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm"}
	// Gemma's blocks have four norms; llama.cpp calls the pre-MLP one ffn_norm.
	gemmaNames = map[string]string{
		"post_attention_norm": "post_attention_layernorm", "ffn_norm": "pre_feedforward_layernorm",
		"post_ffw_norm": "post_feedforward_layernorm",
	}
)

var architectures = map[string]architecture{
	"llama": {modelType: "llama", hfClass: "LlamaForCausalLM", permutedQK: true},
	"qwen2": {modelType: "qwen2", hfClass: "Qwen2ForCausalLM"},
	"qwen3": {modelType: "qwen3", hfClass: "Qwen3ForCausalLM", names: qkNormNames},
	"qwen3moe": {modelType: "qwen3_moe", hfClass: "Qwen3MoeForCausalLM", names: merge(qkNormNames, map[string]string{
		"ffn_gate_inp": "mlp.gate", "ffn_gate_exps": "mlp.switch_mlp.gate_proj",
		"ffn_up_exps": "mlp.switch_mlp.up_proj", "ffn_down_exps": "mlp.switch_mlp.down_proj",
	})},
	"gemma2": {modelType: "gemma2", hfClass: "Gemma2ForCausalLM", normPlusOne: true, names: gemmaNames},
	"gemma3": {modelType: "gemma3_text", hfClass: "Gemma3ForCausalLM", normPlusOne: true, names: merge(gemmaNames, qkNormNames)},
	// Phi-3 keeps q, k, v fused, and gate and up (gate first) in ffn_up, as mlx-lm does.
	"phi3": {modelType: "phi3", hfClass: "Phi3ForCausalLM", names: map[string]string{
		"attn_qkv": "self_attn.qkv_proj", "ffn_up": "mlp.gate_up_proj",
	}},
}

// mixtral is architecture llama with experts: the converter writes Mixtral so.
var mixtral = architecture{modelType: "mixtral", hfClass: "MixtralForCausalLM", permutedQK: true, names: map[string]string{
	"ffn_gate_inp": "block_sparse_moe.gate", "ffn_gate_exps": "block_sparse_moe.switch_mlp.gate_proj",
	"ffn_up_exps": "block_sparse_moe.switch_mlp.up_proj", "ffn_down_exps": "block_sparse_moe.switch_mlp.down_proj",
}}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// moe reports whether the blocks route between experts.
func (h *hyper) moe() bool { return h.experts > 0 }

// readFamily reads the keys only some architectures have.
func (h *hyper) readFamily(g *gguf.File) error {
	md := g.Metadata
	optInt := func(key string, dst *int) error {
		if !md.Has(h.arch + "." + key) {
			return nil
		}
		v, err := md.Int(h.arch+"."+key, 1<<30)
		*dst = v
		return err
	}
	optFloat := func(key string, dst *float64) error {
		if !md.Has(h.arch + "." + key) {
			return nil
		}
		v, err := md.Float(h.arch + "." + key)
		*dst = v
		return err
	}
	for _, err := range []error{
		optInt("expert_count", &h.experts), optInt("expert_used_count", &h.expertsUsed),
		optInt("expert_feed_forward_length", &h.expertFF), optInt("attention.sliding_window", &h.slidingWindow),
		optInt("rope.dimension_count", &h.ropeDims), optInt("rope.scaling.original_context_length", &h.origContext),
		optFloat("attn_logit_softcapping", &h.attnSoftcap), optFloat("final_logit_softcapping", &h.finalSoftcap),
		optFloat("rope.freq_base_swa", &h.ropeThetaLocal),
	} {
		if err != nil {
			return err
		}
	}
	if h.arch == "llama" && h.experts > 0 {
		h.archInfo = mixtral
	}
	if h.moe() {
		if h.expertsUsed <= 0 || h.expertsUsed > h.experts {
			return fmt.Errorf("%s: metadata key %q: %d of %d experts", g.Path, h.arch+".expert_used_count", h.expertsUsed, h.experts)
		}
		if h.expertFF == 0 {
			h.expertFF = h.intermediate // Mixtral: the experts are the feed-forward
		}
	}
	return nil
}

// queryPreAttnScalar is Gemma's attention scale, which the GGUF does not store: llama.cpp
// uses head_dim, except for the 27B models (46 layers for Gemma 2, 62 for Gemma 3), which
// use hidden_size / heads.
func (h *hyper) queryPreAttnScalar() int {
	if (h.arch == "gemma2" && h.layers == 46) || (h.arch == "gemma3" && h.layers == 62) {
		return h.hidden / h.heads
	}
	return h.headDim
}

// familyConfig adds the config.json fields of the architecture's mlx-lm model.
func (h *hyper) familyConfig(c map[string]any) {
	switch h.arch {
	case "gemma2", "gemma3":
		c["hidden_act"] = "gelu_pytorch_tanh"
		c["hidden_activation"] = "gelu_pytorch_tanh"
		c["query_pre_attn_scalar"] = h.queryPreAttnScalar()
		c["tie_word_embeddings"] = true // Gemma has no output.weight; llama.cpp ties
		// llama.cpp's sliding layers: every other one from the first (Gemma 2), five of every
		// six (Gemma 3).
		pattern := map[string]int{"gemma2": 2, "gemma3": 6}[h.arch]
		if h.slidingWindow > 0 {
			c["sliding_window"] = h.slidingWindow
			c["sliding_window_pattern"] = pattern
			types := make([]string, h.layers)
			for i := range types {
				types[i] = "sliding_attention"
				if i%pattern == pattern-1 {
					types[i] = "full_attention"
				}
			}
			c["layer_types"] = types
		}
		if h.arch == "gemma2" {
			c["attn_logit_softcapping"] = h.attnSoftcap
			c["final_logit_softcapping"] = h.finalSoftcap
		} else {
			c["final_logit_softcapping"] = nil
			if h.finalSoftcap > 0 {
				c["final_logit_softcapping"] = h.finalSoftcap
			}
			c["rope_local_base_freq"] = 10000.0 // llama.cpp's default for the sliding layers
			if h.ropeThetaLocal > 0 {
				c["rope_local_base_freq"] = h.ropeThetaLocal
			}
		}
	case "phi3":
		c["partial_rotary_factor"] = 1.0
		if h.ropeDims > 0 {
			c["partial_rotary_factor"] = float64(h.ropeDims) / float64(h.headDim)
		}
		if h.origContext > 0 {
			c["original_max_position_embeddings"] = h.origContext
		}
		if h.slidingWindow > 0 {
			c["sliding_window"] = h.slidingWindow
		}
	case "qwen3moe":
		c["num_experts"] = h.experts
		c["num_experts_per_tok"] = h.expertsUsed
		c["moe_intermediate_size"] = h.expertFF
		c["decoder_sparse_step"] = 1
		c["mlp_only_layers"] = []int{}
		c["norm_topk_prob"] = true // llama.cpp's qwen3moe always renormalizes the top k
	}
	if h.archInfo.modelType == "mixtral" {
		c["num_local_experts"] = h.experts
		c["num_experts_per_tok"] = h.expertsUsed
	}
}

// blockShapes lists the tensors of block i (mlx-lm names without the layer prefix).
func (h *hyper) blockShapes() map[string][]int {
	q, kv := h.heads*h.headDim, h.kvHeads*h.headDim
	m := map[string][]int{
		"self_attn.o_proj.weight": {h.hidden, q}, "input_layernorm.weight": {h.hidden},
		"post_attention_layernorm.weight": {h.hidden},
	}
	if h.arch == "phi3" {
		m["self_attn.qkv_proj.weight"] = []int{q + 2*kv, h.hidden}
		m["mlp.gate_up_proj.weight"] = []int{2 * h.intermediate, h.hidden}
		m["mlp.down_proj.weight"] = []int{h.hidden, h.intermediate}
		return m
	}
	for name, shape := range map[string][]int{"q_proj": {q, h.hidden}, "k_proj": {kv, h.hidden}, "v_proj": {kv, h.hidden}} {
		m["self_attn."+name+".weight"] = shape
		if h.arch == "qwen2" || h.arch == "llama" {
			m["self_attn."+name+".bias"] = shape[:1]
		}
	}
	if h.arch == "qwen2" || h.arch == "llama" {
		m["self_attn.o_proj.bias"] = []int{h.hidden}
	}
	if _, ok := h.archInfo.names["attn_q_norm"]; ok {
		m["self_attn.q_norm.weight"] = []int{h.headDim}
		m["self_attn.k_norm.weight"] = []int{h.headDim}
	}
	if h.archInfo.normPlusOne {
		m["pre_feedforward_layernorm.weight"] = []int{h.hidden}
		m["post_feedforward_layernorm.weight"] = []int{h.hidden}
	}
	if h.moe() {
		gate := h.archInfo.names["ffn_gate_inp"]
		experts := gate[:len(gate)-len("gate")] + "switch_mlp."
		m[gate+".weight"] = []int{h.experts, h.hidden}
		m[experts+"gate_proj.weight"] = []int{h.experts, h.expertFF, h.hidden}
		m[experts+"up_proj.weight"] = []int{h.experts, h.expertFF, h.hidden}
		m[experts+"down_proj.weight"] = []int{h.experts, h.hidden, h.expertFF}
		return m
	}
	m["mlp.gate_proj.weight"] = []int{h.intermediate, h.hidden}
	m["mlp.up_proj.weight"] = []int{h.intermediate, h.hidden}
	m["mlp.down_proj.weight"] = []int{h.hidden, h.intermediate}
	return m
}
