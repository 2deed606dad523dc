package model

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/yai-dev/yai/mlx"
	"github.com/yai-dev/yai/modeldir"
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

// binder builds the model's layers from the config's layout and binds each weight to its
// tensor, collecting every problem it finds. It is the layout's modeldir.Tensors over the
// checkpoint's arrays.
type binder struct {
	ts   *tensorSet
	only func(string) bool
	m    *Model
	errs []error
	dst  [4]**mlx.Array // where the module being bound keeps each modeldir.Role
}

func (b *binder) fail(name, problem string) {
	b.errs = append(b.errs, &TensorError{Tensor: name, File: b.ts.where(name), Problem: problem})
}

func (b *binder) build() {
	c := b.m.Config
	c.SettleHead(func(name string) bool { _, ok := b.ts.arrays[name]; return ok })
	for _, name := range b.ts.remaining() {
		if c.Unused(name) { // mlx-lm's sanitize
			b.ts.drop(name)
		}
	}
	layout := c.Layout()
	b.m.Embedding = b.embedding(layout.Embedding)
	for _, l := range layout.Layers {
		b.m.Layers = append(b.m.Layers, b.block(l))
	}
	b.norm(layout.Norm, &b.m.Norm)
	if layout.LMHead != nil {
		b.m.LMHead = b.linear(*layout.LMHead)
	}
	for _, name := range b.ts.remaining() {
		if modeldir.PerExpert(name) {
			b.fail(name, modeldir.PerExpertProblem)
			continue
		}
		b.fail(name, "unexpected tensor: the model has no such weight")
	}
}

// block builds one block from its layout, binding every module the family gives it.
func (b *binder) block(l modeldir.Layer) *Block {
	c := b.m.Config
	norm := Norm{Eps: float32(c.RMSNormEps), PlusOne: c.NormPlusOne}
	scale := attentionScale(c.HeadDim)
	if c.QueryScale > 0 {
		scale = float32(c.QueryScale)
	}
	blk := &Block{
		Attn: &Attention{
			Norm:       norm,
			NumHeads:   c.NumAttentionHeads,
			NumKVHeads: c.NumKeyValueHeads,
			HeadDim:    c.HeadDim,
			Scale:      scale,
			RoPE:       b.m.rope(l.Rope),
			Window:     l.Window,
			Softcap:    float32(c.AttnSoftcap),
		},
		Norm:         norm,
		ClipResidual: c.ClipResidual,
		Path:         l.Path,
		linears:      map[string]*Linear{},
	}
	a := blk.Attn
	mlp := &MLP{Activation: c.Activation}
	for _, p := range []struct {
		m   modeldir.Module
		dst *Linear
	}{{l.Q, &a.Q}, {l.K, &a.K}, {l.V, &a.V}, {l.QKV, &a.QKV}, {l.O, &a.O},
		{l.Gate, &mlp.Gate}, {l.Up, &mlp.Up}, {l.GateUp, &mlp.GateUp}, {l.Down, &mlp.Down}} {
		if p.m.Path != "" {
			*p.dst = b.linear(p.m)
			blk.linears[relative(l, p.m.Path)] = p.dst
		}
	}
	blk.FF = mlp
	if l.Router.Path != "" {
		blk.FF = b.moe(l, blk)
	}
	for _, p := range []struct {
		m   modeldir.Module
		dst **mlx.Array
	}{{l.QNorm, &a.QNorm}, {l.KNorm, &a.KNorm}, {l.InputNorm, &blk.InputNorm}, {l.PostAttnNorm, &blk.PostAttnNorm},
		{l.PreFFNorm, &blk.PreFFNorm}, {l.PostFFNorm, &blk.PostFFNorm}} {
		if p.m.Path != "" {
			b.norm(p.m, p.dst)
		}
	}
	return blk
}

// moe builds the block's mixture of experts, registering its router with the block's
// projections and its experts with the block's switch layers.
func (b *binder) moe(l modeldir.Layer, blk *Block) *MoE {
	c := b.m.Config
	m := &MoE{Experts: &SwitchGLU{Activation: c.Activation}, TopK: c.ExpertsPerToken, SoftmaxFirst: c.SoftmaxFirst, NormTopK: c.NormTopKProb}
	m.Router = b.linear(l.Router)
	blk.linears[relative(l, l.Router.Path)] = &m.Router
	blk.switches = map[string]*SwitchLinear{}
	for _, p := range []struct {
		m   modeldir.Module
		dst *SwitchLinear
	}{{l.ExpertGate, &m.Experts.Gate}, {l.ExpertUp, &m.Experts.Up}, {l.ExpertDown, &m.Experts.Down}} {
		*p.dst = b.switchLinear(p.m)
		blk.switches[relative(l, p.m.Path)] = p.dst
	}
	return m
}

func (b *binder) switchLinear(m modeldir.Module) SwitchLinear {
	if q, ok := b.m.Config.ModuleQuant(b, m); ok {
		l := &QuantizedSwitchLinear{Quant: quant(q)}
		b.module(m, q, true, &l.Weight, &l.Scales, &l.Biases, &l.Bias)
		return l
	}
	l := &DenseSwitchLinear{}
	b.module(m, modeldir.Quant{}, false, &l.Weight, nil, nil, &l.Bias)
	return l
}

// relative is a block module's name within layer l: "self_attn.q_proj" for
// "model.layers.3.self_attn.q_proj".
func relative(l modeldir.Layer, path string) string {
	return strings.TrimPrefix(path, l.Path+".")
}

// module binds m's tensors into weight, scales, biases and bias (by modeldir.Role).
func (b *binder) module(m modeldir.Module, q modeldir.Quant, quantized bool, weight, scales, biases, bias **mlx.Array) {
	b.dst = [4]**mlx.Array{modeldir.WeightRole: weight, modeldir.ScalesRole: scales, modeldir.BiasesRole: biases, modeldir.BiasRole: bias}
	modeldir.BindModule(b, m, q, quantized)
	b.dst = [4]**mlx.Array{}
}

func (b *binder) linear(m modeldir.Module) Linear {
	if q, ok := b.m.Config.ModuleQuant(b, m); ok {
		l := &QuantizedLinear{Quant: quant(q)}
		b.module(m, q, true, &l.Weight, &l.Scales, &l.Biases, &l.Bias)
		return l
	}
	l := &DenseLinear{}
	b.module(m, modeldir.Quant{}, false, &l.Weight, nil, nil, &l.Bias)
	return l
}

func (b *binder) embedding(m modeldir.Module) *Embedding {
	e := &Embedding{}
	q, ok := b.m.Config.ModuleQuant(b, m)
	if ok {
		e.Quant, e.Packed = quant(q), true
	}
	b.module(m, q, ok, &e.Weight, &e.Scales, &e.Biases, nil)
	return e
}

func (b *binder) norm(m modeldir.Module, dst **mlx.Array) {
	b.module(m, modeldir.Quant{}, false, dst, nil, nil, nil)
}

// Stored implements modeldir.Tensors over the checkpoint's arrays.
func (b *binder) Stored(name string) (modeldir.Stored, bool) {
	a, ok := b.ts.arrays[name]
	if !ok {
		return modeldir.Stored{}, false
	}
	return modeldir.Stored{Shape: a.Shape(), Uint32: a.Dtype() == mlx.Uint32, Uint8: a.Dtype() == mlx.Uint8}, true
}

// Fail implements modeldir.Tensors.
func (b *binder) Fail(name, problem string) { b.fail(name, problem) }

// Drop implements modeldir.Tensors.
func (b *binder) Drop(name string) {
	if _, ok := b.ts.arrays[name]; ok {
		b.ts.drop(name)
	}
}

// accepts reports whether dt is one of the class's dtypes.
func accepts(class modeldir.DtypeClass, dt mlx.Dtype) bool {
	return slices.ContainsFunc(class.Dtypes(), func(name string) bool {
		d, err := mlx.ParseDtype(name)
		return err == nil && d == dt
	})
}

// dtypeNames lists the class's dtypes by MLX's names: "float16, bfloat16 or float32".
func dtypeNames(class modeldir.DtypeClass) string {
	return class.Format(func(name string) string {
		d, _ := mlx.ParseDtype(name)
		return d.String()
	})
}

// Bind checks the tensor t names and, when selected, stores it where the module being bound
// keeps its role. The slot is recorded either way so Reload can fill it later.
func (b *binder) Bind(t modeldir.Tensor) {
	name, dst, shape := t.Name, b.dst[t.Role], t.Shape
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
	if !accepts(t.Class, a.Dtype()) {
		b.fail(name, fmt.Sprintf("dtype %s, expected %s", a.Dtype(), dtypeNames(t.Class)))
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
