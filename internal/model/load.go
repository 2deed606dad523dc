package model

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/yai-dev/yai/mlx"
)

// LoadOptions tune Load.
type LoadOptions struct {
	// Only, when set, loads just the tensors it accepts; the others are checked against
	// the files' headers but left unloaded (nil) until Reload.
	Only func(name string) bool
	// ComputeDtype, when a floating type, is what every floating tensor (quantization scales
	// and biases, norms, plain weights) is converted to once, here, and again by Reload: MLX's
	// CPU quantized matmul is ~70× slower on half-precision scales than on float32 ones. Any
	// other value (the zero value, Bool) keeps the checkpoint's dtypes.
	ComputeDtype mlx.Dtype
}

// Load reads the model in dir. Every tensor is checked against the config (presence, shape,
// dtype) before any data is read; problems are reported as *TensorError naming tensor and
// file, all of them at once. The weights it keeps are evaluated, so the model holds no
// graph.
func Load(dir string, opts LoadOptions) (*Model, error) {
	cfg, err := ReadConfig(dir)
	if err != nil {
		return nil, err
	}
	ts, err := openTensors(dir)
	if err != nil {
		return nil, err
	}
	defer ts.free()
	m := &Model{Config: cfg, slots: map[string]*slot{}}
	err = mlx.Do(func() error {
		if opts.ComputeDtype.IsFloat() {
			m.compute = opts.ComputeDtype
		}
		b := &binder{ts: ts, only: opts.Only, m: m}
		b.build()
		if len(b.errs) > 0 {
			m.Free()
			return errors.Join(b.errs...)
		}
		m.evalLoaded()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Reload replaces the named weights with fresh copies read from the files in dir (the same
// checkpoint, or one with identical shapes and dtypes), freeing the old ones. Tensors not
// named are left untouched. On error nothing is changed.
func (m *Model) Reload(dir string, only func(name string) bool) error {
	ts, err := openTensors(dir)
	if err != nil {
		return err
	}
	defer ts.free()
	return mlx.Do(func() error {
		fresh := map[string]*mlx.Array{}
		var errs []error
		for _, name := range m.TensorNames() {
			if !only(name) {
				continue
			}
			s := m.slots[name]
			a, ok := ts.arrays[name]
			switch {
			case !ok:
				errs = append(errs, &TensorError{Tensor: name, File: ts.where(name), Problem: "missing"})
			case !slices.Equal(a.Shape(), s.shape):
				errs = append(errs, &TensorError{Tensor: name, File: ts.where(name), Problem: fmt.Sprintf("shape %v, the model has %v", a.Shape(), s.shape)})
			case a.Dtype() != s.dtype:
				errs = append(errs, &TensorError{Tensor: name, File: ts.where(name), Problem: fmt.Sprintf("dtype %s, the model has %s", a.Dtype(), s.dtype)})
			default:
				fresh[name] = m.converted(ts.take(name))
			}
		}
		if len(errs) > 0 {
			for _, a := range fresh {
				a.Free()
			}
			return errors.Join(errs...)
		}
		arrays := make([]*mlx.Array, 0, len(fresh))
		for name, a := range fresh {
			s := m.slots[name]
			(*s.ptr).Free()
			*s.ptr = a
			arrays = append(arrays, a)
		}
		mlx.Eval(arrays...)
		return nil
	})
}

// evalLoaded reads the loaded weights from disk now, so none stays lazy.
func (m *Model) evalLoaded() {
	params := m.Parameters()
	arrays := make([]*mlx.Array, 0, len(params))
	for _, a := range params {
		arrays = append(arrays, a)
	}
	mlx.Eval(arrays...)
}

// dtype classes a tensor may belong to.
type dtypeClass int

const (
	floatTensor  dtypeClass = iota // float16, bfloat16, float32
	packedTensor                   // uint32 packed quantized weights
	scaleTensor                    // float, or uint8 for the microscaling modes
)

func (c dtypeClass) accepts(dt mlx.Dtype) bool {
	switch c {
	case floatTensor:
		return dt == mlx.Float16 || dt == mlx.BFloat16 || dt == mlx.Float32
	case packedTensor:
		return dt == mlx.Uint32
	default:
		return dt == mlx.Float16 || dt == mlx.BFloat16 || dt == mlx.Float32 || dt == mlx.Uint8
	}
}

func (c dtypeClass) String() string {
	return [...]string{"float16, bfloat16 or float32", "uint32", "float16, bfloat16, float32 or uint8"}[c]
}

// binder builds the model's layers from the config and binds each weight to its tensor,
// collecting every problem it finds.
type binder struct {
	ts   *tensorSet
	only func(string) bool
	m    *Model
	errs []error
}

func (b *binder) fail(name, problem string) {
	b.errs = append(b.errs, &TensorError{Tensor: name, File: b.ts.where(name), Problem: problem})
}

func (b *binder) build() {
	c := b.m.Config
	// mlx-lm's sanitize: precomputed rotary frequencies are unused, and a tied model
	// ignores a stored lm_head.
	for _, name := range b.ts.remaining() {
		if strings.Contains(name, "self_attn.rotary_emb.inv_freq") || (c.TieWordEmbeddings && name == "lm_head.weight") {
			b.ts.drop(name)
		}
	}
	rope, freqs := newRoPE(c)
	b.m.ropeFreqs = freqs
	b.m.Embedding = b.embedding("model.embed_tokens", c.VocabSize, c.HiddenSize)
	q, kv := c.NumAttentionHeads*c.HeadDim, c.NumKeyValueHeads*c.HeadDim
	for i := 0; i < c.NumHiddenLayers; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		blk := &Block{
			Attn: &Attention{
				Q:          b.linear(p+"self_attn.q_proj", c.HiddenSize, q, c.QKVBias()),
				K:          b.linear(p+"self_attn.k_proj", c.HiddenSize, kv, c.QKVBias()),
				V:          b.linear(p+"self_attn.v_proj", c.HiddenSize, kv, c.QKVBias()),
				O:          b.linear(p+"self_attn.o_proj", q, c.HiddenSize, c.OBias()),
				NumHeads:   c.NumAttentionHeads,
				NumKVHeads: c.NumKeyValueHeads,
				HeadDim:    c.HeadDim,
				Scale:      attentionScale(c.HeadDim),
				RoPE:       rope,
			},
			MLP: &MLP{
				Gate: b.linear(p+"mlp.gate_proj", c.HiddenSize, c.IntermediateSize, c.MLPBias),
				Up:   b.linear(p+"mlp.up_proj", c.HiddenSize, c.IntermediateSize, c.MLPBias),
				Down: b.linear(p+"mlp.down_proj", c.IntermediateSize, c.HiddenSize, c.MLPBias),
			},
			NormEps: float32(c.RMSNormEps),
		}
		b.bind(p+"input_layernorm.weight", &blk.InputNorm, []int{c.HiddenSize}, floatTensor)
		b.bind(p+"post_attention_layernorm.weight", &blk.PostAttnNorm, []int{c.HiddenSize}, floatTensor)
		b.m.Layers = append(b.m.Layers, blk)
	}
	b.bind("model.norm.weight", &b.m.Norm, []int{c.HiddenSize}, floatTensor)
	if !c.TieWordEmbeddings {
		b.m.LMHead = b.linear("lm_head", c.HiddenSize, c.VocabSize, false)
	}
	for _, name := range b.ts.remaining() {
		b.fail(name, "unexpected tensor: the model has no such weight")
	}
}

// bind checks the tensor called name and, when selected, stores it in *dst. The slot is
// recorded either way so Reload can fill it later.
func (b *binder) bind(name string, dst **mlx.Array, shape []int, class dtypeClass) {
	a, ok := b.ts.arrays[name]
	if !ok {
		b.fail(name, "missing")
		return
	}
	if got := a.Shape(); !slices.Equal(got, shape) {
		b.fail(name, fmt.Sprintf("shape %v, expected %v", got, shape))
		b.ts.drop(name)
		return
	}
	if !class.accepts(a.Dtype()) {
		b.fail(name, fmt.Sprintf("dtype %s, expected %s", a.Dtype(), class))
		b.ts.drop(name)
		return
	}
	b.m.slots[name] = &slot{ptr: dst, shape: shape, dtype: a.Dtype()}
	if b.only != nil && !b.only(name) {
		b.ts.drop(name)
		return
	}
	*dst = b.m.converted(b.ts.take(name))
}

// converted returns a in the model's compute dtype (freeing a) when a is a floating tensor
// of another dtype; packed weights and microscaling scales are never converted.
func (m *Model) converted(a *mlx.Array) *mlx.Array {
	if !m.compute.IsFloat() || !a.Dtype().IsFloat() || a.Dtype() == m.compute {
		return a
	}
	c := mlx.AsType(a, m.compute)
	// Converted one at a time, so the checkpoint's copy of only one tensor is alive beside
	// the converted ones.
	mlx.Eval(c)
	a.Free()
	return c
}

// quantization decides whether the layer at path is quantized and how: a per-layer entry
// of config.json wins, else the packing is inferred from the stored shapes as mlx-lm's
// infer_quant_config does. A layer is quantized iff path.scales exists.
func (b *binder) quantization(path string, in int) (q mlx.Quantization, quantized bool) {
	scales, hasScales := b.ts.arrays[path+".scales"]
	override, overridden := b.m.Config.Quantization.For(path)
	if overridden && override == nil {
		if hasScales {
			b.fail(path+".scales", "config.json quantization marks "+path+" as not quantized")
		}
		return q, false
	}
	if !hasScales {
		return q, false
	}
	weight, hasWeight := b.ts.arrays[path+".weight"]
	if overridden && override.GroupSize > 0 {
		return quant(*override), true
	}
	if overridden { // `true`: the defaults
		return quant(b.m.Config.Quantization.Default), true
	}
	if !hasWeight || scales.Ndim() != 2 || weight.Ndim() != 2 || scales.Dim(1) == 0 {
		return mlx.Quantization{GroupSize: 64, Bits: 4, Mode: "affine"}, true // shapes are reported by bind
	}
	q = mlx.Quantization{GroupSize: in / scales.Dim(1), Bits: weight.Dim(1) * 32 / in, Mode: "affine"}
	if scales.Dtype() == mlx.Uint8 {
		switch {
		case q.Bits == 4 && q.GroupSize == 16:
			q.Mode = "nvfp4"
		case q.Bits == 4 && q.GroupSize == 32:
			q.Mode = "mxfp4"
		case q.Bits == 8 && q.GroupSize == 32:
			q.Mode = "mxfp8"
		default:
			b.fail(path+".scales", fmt.Sprintf("cannot infer the quantization mode of %d bits with group size %d", q.Bits, q.GroupSize))
		}
	}
	return q, true
}

// packed binds the weight, scales and (affine) biases of a quantized layer.
func (b *binder) packed(path string, in, out int, q mlx.Quantization, w, s, bs **mlx.Array) {
	if q.Bits <= 0 || q.GroupSize <= 0 || in*q.Bits%32 != 0 || in%q.GroupSize != 0 {
		b.fail(path+".weight", fmt.Sprintf("cannot be packed with %d bits in groups of %d (%d inputs)", q.Bits, q.GroupSize, in))
		for _, suffix := range []string{".weight", ".scales", ".biases"} {
			if _, ok := b.ts.arrays[path+suffix]; ok {
				b.ts.drop(path + suffix)
			}
		}
		return
	}
	b.bind(path+".weight", w, []int{out, in * q.Bits / 32}, packedTensor)
	b.bind(path+".scales", s, []int{out, in / q.GroupSize}, scaleTensor)
	if q.Mode == "" || q.Mode == "affine" {
		b.bind(path+".biases", bs, []int{out, in / q.GroupSize}, scaleTensor)
	}
}

func (b *binder) linear(path string, in, out int, bias bool) Linear {
	var l Linear
	var biasSlot **mlx.Array
	if q, ok := b.quantization(path, in); ok {
		ql := &QuantizedLinear{Quant: q}
		b.packed(path, in, out, q, &ql.Weight, &ql.Scales, &ql.Biases)
		l, biasSlot = ql, &ql.Bias
	} else {
		dl := &DenseLinear{}
		b.bind(path+".weight", &dl.Weight, []int{out, in}, floatTensor)
		l, biasSlot = dl, &dl.Bias
	}
	if bias {
		b.bind(path+".bias", biasSlot, []int{out}, floatTensor)
	}
	return l
}

func (b *binder) embedding(path string, vocab, hidden int) *Embedding {
	e := &Embedding{}
	if q, ok := b.quantization(path, hidden); ok {
		e.Quant, e.Packed = q, true
		b.packed(path, hidden, vocab, q, &e.Weight, &e.Scales, &e.Biases)
		return e
	}
	b.bind(path+".weight", &e.Weight, []int{vocab, hidden}, floatTensor)
	return e
}
