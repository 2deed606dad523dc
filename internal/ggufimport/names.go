package ggufimport

import (
	"fmt"
	"strconv"
	"strings"
)

// blockNames maps the per-block GGUF tensor names onto the mlx-lm (Hugging Face) ones.
var blockNames = map[string]string{
	"attn_q":      "self_attn.q_proj",
	"attn_k":      "self_attn.k_proj",
	"attn_v":      "self_attn.v_proj",
	"attn_output": "self_attn.o_proj",
	"ffn_gate":    "mlp.gate_proj",
	"ffn_up":      "mlp.up_proj",
	"ffn_down":    "mlp.down_proj",
	"attn_norm":   "input_layernorm",
	"ffn_norm":    "post_attention_layernorm",
}

var globalNames = map[string]string{
	"token_embd":  "model.embed_tokens",
	"output_norm": "model.norm",
	"output":      "lm_head",
}

// hfName translates a GGUF tensor name ("blk.3.attn_q.weight") into the checkpoint name
// mlx-lm loads ("model.layers.3.self_attn.q_proj.weight"), with the layer count for range
// checks and the architecture's own block names. ok is false for a name the importer does
// not know.
func hfName(name string, layers int, archNames map[string]string) (string, bool) {
	base, suffix, found := cutLast(name, ".")
	if !found || (suffix != "weight" && suffix != "bias") {
		return "", false
	}
	if mapped, ok := globalNames[base]; ok {
		return mapped + "." + suffix, true
	}
	rest, ok := strings.CutPrefix(base, "blk.")
	if !ok {
		return "", false
	}
	idx, part, found := strings.Cut(rest, ".")
	if !found {
		return "", false
	}
	i, err := strconv.Atoi(idx)
	if err != nil || i < 0 || i >= layers || strconv.Itoa(i) != idx {
		return "", false
	}
	mapped, ok := archNames[part]
	if !ok {
		mapped, ok = blockNames[part]
	}
	if !ok {
		return "", false
	}
	return fmt.Sprintf("model.layers.%d.%s.%s", i, mapped, suffix), true
}

func cutLast(s, sep string) (before, after string, found bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// isNorm reports whether an mlx-lm name is a norm weight (never quantized).
func isNorm(name string) bool { return strings.HasSuffix(name, "norm.weight") }

// isRouter reports whether an mlx-lm name is an MoE router, kept float as mlx-lm's
// conversions keep it precise.
func isRouter(name string) bool {
	return strings.HasSuffix(name, "mlp.gate.weight") || strings.HasSuffix(name, "block_sparse_moe.gate.weight")
}
