package testenv

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/yai-dev/yai/modeldir"
)

// WriteHeaderModel writes a model directory holding config.json, the project's tiny
// tokenizer and a safetensors file in the mlx-community 4-bit layout (every linear quantized:
// uint32 weight, scales, biases; norms not) whose data region is a hole: the file has its
// full size, as the dry run checks, but takes no disk space and holds zeros.
func WriteHeaderModel(t testing.TB, dir string, c modeldir.Config) {
	t.Helper()
	cfg := map[string]any{"model_type": c.ModelType, "num_hidden_layers": c.NumHiddenLayers, "hidden_size": c.HiddenSize,
		"intermediate_size": c.IntermediateSize, "num_attention_heads": c.NumAttentionHeads,
		"num_key_value_heads": c.NumKeyValueHeads, "vocab_size": c.VocabSize, "rms_norm_eps": 1e-5,
		"tie_word_embeddings": c.TieWordEmbeddings}
	WriteHeaderFiles(t, dir, cfg, func(quant func(path string, out, in int), norm func(name string, n int)) {
		h, kv := c.HiddenSize, c.HiddenSize/c.NumAttentionHeads*c.NumKeyValueHeads
		quant("model.embed_tokens", c.VocabSize, h)
		if !c.TieWordEmbeddings {
			quant("lm_head", c.VocabSize, h)
		}
		norm("model.norm.weight", h)
		for i := range c.NumHiddenLayers {
			p := fmt.Sprintf("model.layers.%d.", i)
			quant(p+"self_attn.q_proj", h, h)
			quant(p+"self_attn.k_proj", kv, h)
			quant(p+"self_attn.v_proj", kv, h)
			quant(p+"self_attn.o_proj", h, h)
			quant(p+"mlp.gate_proj", c.IntermediateSize, h)
			quant(p+"mlp.up_proj", c.IntermediateSize, h)
			quant(p+"mlp.down_proj", h, c.IntermediateSize)
			norm(p+"input_layernorm.weight", h)
			norm(p+"post_attention_layernorm.weight", h)
		}
	})
}

// WriteHeaderFiles writes config.json (cfg, with the 4-bit quantization added), the tiny
// tokenizer and a header-only safetensors file (see WriteHeaderModel) holding the tensors
// tensors names: quant adds a 4-bit module's weight, scales and biases, norm a BF16 vector.
func WriteHeaderFiles(t testing.TB, dir string, cfg map[string]any, tensors func(quant func(path string, out, in int), norm func(name string, n int))) {
	t.Helper()
	const bits, group = 4, 64
	cfg["quantization"] = map[string]int{"group_size": group, "bits": bits}
	js, _ := json.Marshal(cfg)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), js, 0o644); err != nil {
		t.Fatal(err)
	}
	infos := map[string]modeldir.TensorInfo{}
	off := int64(0)
	add := func(name, dtype string, shape ...int64) {
		n := int64(1)
		for _, s := range shape {
			n *= s
		}
		size := map[string]int64{"U32": 4, "F16": 2, "BF16": 2}[dtype] * n
		infos[name] = modeldir.TensorInfo{Dtype: dtype, Shape: shape, DataOffsets: [2]int64{off, off + size}}
		off += size
	}
	quant := func(p string, out, in int) {
		add(p+".weight", "U32", int64(out), int64(in*bits/32))
		add(p+".scales", "BF16", int64(out), int64(in/group))
		add(p+".biases", "BF16", int64(out), int64(in/group))
	}
	tensors(quant, func(name string, n int) { add(name, "BF16", int64(n)) })
	path := filepath.Join(dir, "model.safetensors")
	if err := modeldir.WriteSafetensorsHeader(path, infos); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, st.Size()+off); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tokenizer.json", "tokenizer_config.json"} {
		b, err := os.ReadFile(filepath.Join(ModuleRoot(t), "internal", "model", "tinytokenizer", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
