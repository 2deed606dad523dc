package ggufimport

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/yai-dev/yai/internal/gguf"
)

// hyper are the hyperparameters read from the metadata, under the architecture's prefix.
type hyper struct {
	arch         string
	archInfo     architecture
	hidden       int
	layers       int
	intermediate int
	heads        int
	kvHeads      int
	headDim      int
	vocab        int
	contextLen   int
	normEps      float64
	ropeTheta    float64
	ropeScaling  map[string]any
	tied         bool

	// Read where the architecture has them (families.go).
	experts, expertsUsed, expertFF int
	slidingWindow                  int
	ropeDims, origContext          int
	attnSoftcap, finalSoftcap      float64
	ropeThetaLocal                 float64
}

// readHyper reads the model's shape from the metadata and checks it against the tensors.
func readHyper(g *gguf.File) (*hyper, error) {
	md := g.Metadata
	arch, err := md.String("general.architecture")
	if err != nil {
		return nil, err
	}
	info, ok := architectures[arch]
	if !ok {
		return nil, fmt.Errorf("%s: metadata key \"general.architecture\": %q is not supported (supported: llama - which llama.cpp also writes for Mistral and Mixtral -, qwen2, qwen3, qwen3moe, gemma2, gemma3, phi3)", g.Path, arch)
	}
	h := &hyper{arch: arch, archInfo: info}
	const maxDim = 1 << 24
	ints := []struct {
		key string
		dst *int
	}{
		{"embedding_length", &h.hidden}, {"block_count", &h.layers}, {"feed_forward_length", &h.intermediate},
		{"attention.head_count", &h.heads},
	}
	for _, it := range ints {
		if *it.dst, err = md.Int(arch+"."+it.key, maxDim); err != nil {
			return nil, err
		}
		if *it.dst == 0 {
			return nil, fmt.Errorf("%s: metadata key %q: must be positive", g.Path, arch+"."+it.key)
		}
	}
	h.kvHeads = h.heads
	if md.Has(arch + ".attention.head_count_kv") {
		if h.kvHeads, err = md.Int(arch+".attention.head_count_kv", maxDim); err != nil {
			return nil, err
		}
	}
	if h.kvHeads == 0 || h.heads%h.kvHeads != 0 {
		return nil, fmt.Errorf("%s: metadata key %q: %d does not divide the %d attention heads", g.Path, arch+".attention.head_count_kv", h.kvHeads, h.heads)
	}
	h.headDim = h.hidden / h.heads
	if md.Has(arch + ".attention.key_length") {
		if h.headDim, err = md.Int(arch+".attention.key_length", maxDim); err != nil {
			return nil, err
		}
	}
	if h.normEps, err = md.Float(arch + ".attention.layer_norm_rms_epsilon"); err != nil {
		return nil, err
	}
	h.ropeTheta = 10000
	if info.modelType == "qwen2" {
		h.ropeTheta = 1000000
	}
	if md.Has(arch + ".rope.freq_base") {
		if h.ropeTheta, err = md.Float(arch + ".rope.freq_base"); err != nil {
			return nil, err
		}
	}
	if md.Has(arch + ".context_length") {
		if h.contextLen, err = md.Int(arch+".context_length", 1<<30); err != nil {
			return nil, err
		}
	}
	if err := h.readFamily(g); err != nil {
		return nil, err
	}
	if err := h.readRopeScaling(g); err != nil {
		return nil, err
	}
	emb, ok := g.Tensor("token_embd.weight")
	if !ok {
		return nil, &gguf.TensorError{File: g.Path, Tensor: "token_embd.weight", Problem: "missing"}
	}
	if len(emb.Dims) != 2 || int(emb.Dims[0]) != h.hidden {
		return nil, &gguf.TensorError{File: g.Path, Tensor: emb.Name, Problem: fmt.Sprintf("shape %v does not match %s.embedding_length %d", emb.Shape(), arch, h.hidden)}
	}
	h.vocab = int(emb.Dims[1])
	if md.Has(arch + ".vocab_size") {
		v, err := md.Int(arch+".vocab_size", 1<<30)
		if err != nil {
			return nil, err
		}
		if v != h.vocab {
			return nil, fmt.Errorf("%s: metadata key %q: %d, but token_embd.weight has %d rows", g.Path, arch+".vocab_size", v, h.vocab)
		}
	}
	_, hasOutput := g.Tensor("output.weight")
	h.tied = !hasOutput
	return h, nil
}

// readRopeScaling maps llama.cpp's rope scaling keys onto config.json's rope_scaling.
func (h *hyper) readRopeScaling(g *gguf.File) error {
	md := g.Metadata
	if t, ok := g.Tensor(ropeFreqsTensor); ok {
		return h.readLlama3Scaling(g, t)
	}
	key := h.arch + ".rope.scaling.type"
	if !md.Has(key) {
		return nil
	}
	kind, err := md.String(key)
	if err != nil {
		return err
	}
	switch kind {
	case "none":
		return nil
	case "linear":
		factor, err := md.Float(h.arch + ".rope.scaling.factor")
		if err != nil {
			return err
		}
		h.ropeScaling = map[string]any{"type": "linear", "factor": factor}
		return nil
	}
	return fmt.Errorf("%s: metadata key %q: rope scaling %q is not supported (none, linear)", g.Path, key, kind)
}

// configJSON is config.json for the model, as mlx-lm and transformers read it.
func (h *hyper) configJSON(tok *tokenizerSpec, quant *quantSpec) map[string]any {
	c := map[string]any{
		"architectures":       []string{h.archInfo.hfClass},
		"model_type":          h.archInfo.modelType,
		"hidden_size":         h.hidden,
		"intermediate_size":   h.intermediate,
		"num_hidden_layers":   h.layers,
		"num_attention_heads": h.heads,
		"num_key_value_heads": h.kvHeads,
		"head_dim":            h.headDim,
		"vocab_size":          h.vocab,
		"rms_norm_eps":        h.normEps,
		"rope_theta":          h.ropeTheta,
		"tie_word_embeddings": h.tied,
		"hidden_act":          "silu",
	}
	if h.contextLen > 0 {
		c["max_position_embeddings"] = h.contextLen
	}
	if h.ropeScaling != nil {
		c["rope_scaling"] = h.ropeScaling
	}
	h.familyConfig(c)
	if tok != nil {
		if tok.bos >= 0 {
			c["bos_token_id"] = tok.bos
		}
		if tok.eos >= 0 {
			c["eos_token_id"] = tok.eos
		}
	}
	if quant != nil {
		q := map[string]any{"group_size": quant.groupSize, "bits": quant.bits, "mode": "affine"}
		for _, layer := range quant.plain {
			q[layer] = false
		}
		c["quantization"] = q
		c["quantization_config"] = q
	}
	return markFloats(c).(map[string]any)
}

// jsonFloat is a float that JSON shows as one (30.0, not 30): transformers 5 validates
// config.json's types and refuses an integer where a float is declared.
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	s := strconv.FormatFloat(float64(f), 'g', -1, 64)
	if !strings.ContainsAny(s, ".eEnN") {
		s += ".0"
	}
	return []byte(s), nil
}

// markFloats makes every float64 of a config value a jsonFloat.
func markFloats(v any) any {
	switch v := v.(type) {
	case float64:
		return jsonFloat(v)
	case map[string]any:
		for k, x := range v {
			v[k] = markFloats(x)
		}
	case []any:
		for i, x := range v {
			v[i] = markFloats(x)
		}
	}
	return v
}
