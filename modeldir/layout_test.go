package modeldir_test

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/yai-dev/yai/modeldir"
)

func TestInferQuant(t *testing.T) {
	cases := []struct {
		weight, scales []int
		in             int
		u8             bool
		want           modeldir.Quant
		err            string
	}{
		{weight: []int{8, 8}, scales: []int{8, 1}, in: 64, want: modeldir.Quant{GroupSize: 64, Bits: 4, Mode: "affine"}},
		{weight: []int{8, 16}, scales: []int{8, 2}, in: 64, want: modeldir.Quant{GroupSize: 32, Bits: 8, Mode: "affine"}},
		{weight: []int{8, 8}, scales: []int{8, 4}, in: 64, u8: true, want: modeldir.Quant{GroupSize: 16, Bits: 4, Mode: "nvfp4"}},
		{weight: []int{8, 8}, scales: []int{8, 2}, in: 64, u8: true, want: modeldir.Quant{GroupSize: 32, Bits: 4, Mode: "mxfp4"}},
		{weight: []int{8, 16}, scales: []int{8, 2}, in: 64, u8: true, want: modeldir.Quant{GroupSize: 32, Bits: 8, Mode: "mxfp8"}},
		{weight: []int{8, 16}, scales: []int{8, 4}, in: 64, u8: true, want: modeldir.Quant{GroupSize: 16, Bits: 8, Mode: "affine"},
			err: "cannot infer the quantization mode of 8 bits with group size 16"},
		// Shapes that say nothing give the default; binding reports them.
		{weight: []int{8, 8}, scales: []int{8, 1, 1}, in: 64, want: modeldir.Quant{GroupSize: 64, Bits: 4, Mode: "affine"}},
		{weight: nil, scales: []int{8, 1}, in: 64, want: modeldir.Quant{GroupSize: 64, Bits: 4, Mode: "affine"}},
		{weight: []int{8, 8}, scales: []int{8, 0}, in: 64, want: modeldir.Quant{GroupSize: 64, Bits: 4, Mode: "affine"}},
		{weight: []int{8, 8}, scales: []int{8, 1}, in: 0, want: modeldir.Quant{GroupSize: 64, Bits: 4, Mode: "affine"}},
	}
	for _, c := range cases {
		got, err := modeldir.InferQuant(c.weight, c.scales, c.in, c.u8)
		if got != c.want || fmt.Sprint(err) != map[bool]string{true: "<nil>", false: c.err}[c.err == ""] {
			t.Errorf("InferQuant(%v, %v, %d, %v) = %v, %v; want %v, %q", c.weight, c.scales, c.in, c.u8, got, err, c.want, c.err)
		}
	}
}

// fakeTensors records what a walk asks of the stored tensors.
type fakeTensors struct {
	stored map[string]modeldir.Stored
	log    []string
}

func (f *fakeTensors) Stored(name string) (modeldir.Stored, bool) {
	s, ok := f.stored[name]
	return s, ok
}
func (f *fakeTensors) Bind(t modeldir.Tensor) {
	f.log = append(f.log, fmt.Sprintf("bind %s %v %s (%s)", t.Name, t.Shape, t.Class, t.Why))
}
func (f *fakeTensors) Fail(name, problem string) { f.log = append(f.log, "fail "+name+": "+problem) }
func (f *fakeTensors) Drop(name string)          { f.log = append(f.log, "drop "+name) }

func TestModuleQuant(t *testing.T) {
	const p = "model.layers.0.mlp.up_proj"
	packed := map[string]modeldir.Stored{p + ".weight": {Shape: []int{128, 8}, Uint32: true}, p + ".scales": {Shape: []int{128, 1}}}
	noScales := map[string]modeldir.Stored{p + ".weight": {Shape: []int{128, 8}, Uint32: true}}
	plain := map[string]modeldir.Stored{p + ".weight": {Shape: []int{128, 64}}}
	def := modeldir.Quant{GroupSize: 32, Bits: 4, Mode: "affine"}
	cases := map[string]struct {
		stored    map[string]modeldir.Stored
		layers    map[string]*modeldir.Quant
		want      modeldir.Quant
		quantized bool
		log       []string
	}{
		"inferred":   {stored: packed, want: modeldir.Quant{GroupSize: 64, Bits: 4, Mode: "affine"}, quantized: true},
		"plain":      {stored: plain},
		"overridden": {stored: packed, layers: map[string]*modeldir.Quant{p: {GroupSize: 32, Bits: 8, Mode: "affine"}}, want: modeldir.Quant{GroupSize: 32, Bits: 8, Mode: "affine"}, quantized: true},
		"true":       {stored: packed, layers: map[string]*modeldir.Quant{p: {}}, want: def, quantized: true},
		"marked off": {stored: plain, layers: map[string]*modeldir.Quant{p: nil}},
		"marked off but packed": {stored: packed, layers: map[string]*modeldir.Quant{p: nil},
			log: []string{"fail " + p + ".scales: config.json quantization marks " + p + " as not quantized", "drop " + p + ".scales", "drop " + p + ".biases"}},
		"packed without scales": {stored: noScales, quantized: true,
			log: []string{"fail " + p + ".scales: missing: " + p + ".weight is packed (U32) but has no scales", "drop " + p + ".weight", "drop " + p + ".biases"}},
	}
	m := modeldir.Module{Kind: modeldir.LinearModule, Path: p, In: 64, Out: 128}
	for name, c := range cases {
		cfg := &modeldir.Config{Quantization: &modeldir.Quantization{Default: def, Layers: c.layers}}
		f := &fakeTensors{stored: c.stored}
		q, quantized := cfg.ModuleQuant(f, m)
		if q != c.want || quantized != c.quantized || !cmp.Equal(f.log, c.log) {
			t.Errorf("%s: %v %v %q; want %v %v %q", name, q, quantized, f.log, c.want, c.quantized, c.log)
		}
	}
	if _, quantized := (&modeldir.Config{}).ModuleQuant(&fakeTensors{stored: packed}, modeldir.Module{Kind: modeldir.NormModule, Path: p}); quantized {
		t.Error("a norm is quantized")
	}
}

// The layout names every tensor of a family, with its shape and dtype class, as mlx-lm does.
func TestLayoutTensors(t *testing.T) {
	cfg, err := modeldir.ParseConfig([]byte(`{"model_type": "qwen2", "hidden_size": 64, "num_hidden_layers": 1,
		"intermediate_size": 128, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 1000,
		"rms_norm_eps": 1e-6, "tie_word_embeddings": false}`))
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeTensors{stored: map[string]modeldir.Stored{
		"model.embed_tokens.scales":              {Shape: []int{1000, 2}},
		"model.embed_tokens.weight":              {Shape: []int{1000, 8}, Uint32: true},
		"model.layers.0.self_attn.q_proj.scales": {Shape: []int{64, 2}, Uint8: true},
		"model.layers.0.self_attn.q_proj.weight": {Shape: []int{64, 8}, Uint32: true},
	}}
	for _, m := range cfg.Layout().Modules() {
		q, quantized := cfg.ModuleQuant(f, m)
		modeldir.BindModule(f, m, q, quantized)
	}
	want := []string{
		"bind model.embed_tokens.weight [1000 8] U32 (vocab_size, packed 4-bit)",
		"bind model.embed_tokens.scales [1000 2] F16, BF16, F32 or U8 (vocab_size, groups of 32)",
		"bind model.embed_tokens.biases [1000 2] F16, BF16, F32 or U8 (vocab_size, groups of 32)",
		"bind model.layers.0.self_attn.q_proj.weight [64 8] U32 (num_attention_heads × head_dim, packed 4-bit)",
		"bind model.layers.0.self_attn.q_proj.scales [64 2] F16, BF16, F32 or U8 (num_attention_heads × head_dim, groups of 32)",
		"bind model.layers.0.self_attn.q_proj.bias [64] F16, BF16 or F32 (num_attention_heads × head_dim)",
		"bind model.layers.0.self_attn.k_proj.weight [32 64] F16, BF16 or F32 (num_key_value_heads × head_dim by its inputs)",
		"bind model.layers.0.self_attn.k_proj.bias [32] F16, BF16 or F32 (num_key_value_heads × head_dim)",
		"bind model.layers.0.self_attn.v_proj.weight [32 64] F16, BF16 or F32 (num_key_value_heads × head_dim by its inputs)",
		"bind model.layers.0.self_attn.v_proj.bias [32] F16, BF16 or F32 (num_key_value_heads × head_dim)",
		"bind model.layers.0.self_attn.o_proj.weight [64 64] F16, BF16 or F32 (hidden_size by its inputs)",
		"bind model.layers.0.mlp.gate_proj.weight [128 64] F16, BF16 or F32 (intermediate_size by its inputs)",
		"bind model.layers.0.mlp.up_proj.weight [128 64] F16, BF16 or F32 (intermediate_size by its inputs)",
		"bind model.layers.0.mlp.down_proj.weight [64 128] F16, BF16 or F32 (hidden_size by its inputs)",
		"bind model.layers.0.input_layernorm.weight [64] F16, BF16 or F32 (hidden_size)",
		"bind model.layers.0.post_attention_layernorm.weight [64] F16, BF16 or F32 (hidden_size)",
		"bind model.norm.weight [64] F16, BF16 or F32 (hidden_size)",
		"bind lm_head.weight [1000 64] F16, BF16 or F32 (vocab_size by its inputs)",
	}
	if diff := cmp.Diff(want, f.log); diff != "" {
		t.Errorf("tensors (-want +got):\n%s", diff)
	}
}
