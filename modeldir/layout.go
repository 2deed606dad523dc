package modeldir

import (
	"fmt"
	"strings"
)

// A model family's tensors are described once, here: Layout lists its modules (mlx-lm's
// names and the shapes config.json gives them), Config.ModuleQuant decides how a module is
// stored, and BindModule names every tensor the module needs. The loader binds real arrays
// through them and the dry run's Check binds safetensors headers; each supplies a Tensors.

// ModuleKind is what a module is, which decides the tensors it holds.
type ModuleKind int

const (
	// EmbeddingModule is a token table: weight (Out = vocabulary, In = hidden), maybe packed.
	EmbeddingModule ModuleKind = iota
	// LinearModule is a projection: weight (Out, In), maybe packed, maybe with a bias (Out).
	LinearModule
	// NormModule is a norm's scale: weight (Out), never quantized.
	NormModule
)

// Module is one weight-holding module of the architecture.
type Module struct {
	Kind    ModuleKind
	Path    string // mlx-lm's name, "model.layers.0.self_attn.q_proj"; tensors add ".weight" etc.
	In, Out int
	Bias    bool
	Why     string // the config.json fields Out comes from, for diagnostics
}

// Layer is one transformer block's modules.
type Layer struct {
	Q, K, V, O, Gate, Up, Down Module
	InputNorm, PostAttnNorm    Module
}

// Layout is a model's modules, as config.json describes them.
type Layout struct {
	Embedding Module
	Layers    []Layer
	Norm      Module
	LMHead    *Module // nil when the head is the tied embedding
}

// Layout describes the modules of the model c configures (llama, mistral, qwen2).
func (c *Config) Layout() *Layout {
	h, q, kv, ff := c.HiddenSize, c.NumAttentionHeads*c.HeadDim, c.NumKeyValueHeads*c.HeadDim, c.IntermediateSize
	linear := func(path string, in, out int, bias bool, why string) Module {
		return Module{Kind: LinearModule, Path: path, In: in, Out: out, Bias: bias, Why: why}
	}
	norm := func(path string) Module { return Module{Kind: NormModule, Path: path, Out: h, Why: "hidden_size"} }
	l := &Layout{
		Embedding: Module{Kind: EmbeddingModule, Path: "model.embed_tokens", In: h, Out: c.VocabSize, Why: "vocab_size"},
		Norm:      norm("model.norm"),
	}
	for i := range c.NumHiddenLayers {
		p := fmt.Sprintf("model.layers.%d.", i)
		l.Layers = append(l.Layers, Layer{
			Q:            linear(p+"self_attn.q_proj", h, q, c.QKVBias(), "num_attention_heads × head_dim"),
			K:            linear(p+"self_attn.k_proj", h, kv, c.QKVBias(), "num_key_value_heads × head_dim"),
			V:            linear(p+"self_attn.v_proj", h, kv, c.QKVBias(), "num_key_value_heads × head_dim"),
			O:            linear(p+"self_attn.o_proj", q, h, c.OBias(), "hidden_size"),
			Gate:         linear(p+"mlp.gate_proj", h, ff, c.MLPBias, "intermediate_size"),
			Up:           linear(p+"mlp.up_proj", h, ff, c.MLPBias, "intermediate_size"),
			Down:         linear(p+"mlp.down_proj", ff, h, c.MLPBias, "hidden_size"),
			InputNorm:    norm(p + "input_layernorm"),
			PostAttnNorm: norm(p + "post_attention_layernorm"),
		})
	}
	if !c.TieWordEmbeddings {
		head := linear("lm_head", h, c.VocabSize, false, "vocab_size")
		l.LMHead = &head
	}
	return l
}

// Modules lists the layer's modules in the order the loader binds them.
func (l *Layer) Modules() []Module {
	return []Module{l.Q, l.K, l.V, l.O, l.Gate, l.Up, l.Down, l.InputNorm, l.PostAttnNorm}
}

// Modules lists every module in the order the loader binds them.
func (l *Layout) Modules() []Module {
	ms := []Module{l.Embedding}
	for i := range l.Layers {
		ms = append(ms, l.Layers[i].Modules()...)
	}
	ms = append(ms, l.Norm)
	if l.LMHead != nil {
		ms = append(ms, *l.LMHead)
	}
	return ms
}

// Unused reports whether a stored tensor is one mlx-lm's sanitize drops: precomputed rotary
// frequencies, and a tied model's lm_head.
func (c *Config) Unused(name string) bool {
	return strings.Contains(name, "self_attn.rotary_emb.inv_freq") || (c.TieWordEmbeddings && name == "lm_head.weight")
}

// DtypeClass is a set of dtypes a tensor may have.
type DtypeClass int

const (
	FloatDtypes  DtypeClass = iota // F16, BF16, F32
	PackedDtypes                   // U32 packed quantized weights
	ScaleDtypes                    // float, or U8 for the microscaling modes
)

// Dtypes are the class's dtypes, as safetensors names them.
func (k DtypeClass) Dtypes() []string {
	return [...][]string{{"F16", "BF16", "F32"}, {"U32"}, {"F16", "BF16", "F32", "U8"}}[k]
}

// Accepts reports whether the safetensors dtype is in the class.
func (k DtypeClass) Accepts(dtype string) bool {
	for _, d := range k.Dtypes() {
		if d == dtype {
			return true
		}
	}
	return false
}

// Format lists the class's dtypes, each named by name: "F16, BF16 or F32".
func (k DtypeClass) Format(name func(string) string) string {
	ds := k.Dtypes()
	names := make([]string, len(ds))
	for i, d := range ds {
		names[i] = name(d)
	}
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

func (k DtypeClass) String() string { return k.Format(func(d string) string { return d }) }

// Role is what a tensor is to its module.
type Role int

const (
	WeightRole Role = iota // .weight: plain or packed
	ScalesRole             // .scales of a quantized module
	BiasesRole             // .biases of an affine quantized module
	BiasRole               // .bias
)

// Tensor is one tensor a module needs.
type Tensor struct {
	Name  string
	Role  Role
	Shape []int
	Class DtypeClass
	Why   string // the config.json fields the shape comes from
}

// Stored is what the files hold under a tensor's name, as far as the layout asks.
type Stored struct {
	Shape  []int
	Uint32 bool // dtype U32: a packed quantized weight
	Uint8  bool // dtype U8: microscaling scales
}

// Tensors is what a module's tensors are bound through: the stored tensors, and what to do
// with each one the module needs.
type Tensors interface {
	// Stored reports what the files hold under name.
	Stored(name string) (Stored, bool)
	// Bind checks the tensor's presence, shape and dtype and claims it.
	Bind(t Tensor)
	// Fail reports a problem with the tensor called name.
	Fail(name, problem string)
	// Drop claims the tensor called name, if stored, without binding it: it has been
	// reported, and is not also unexpected.
	Drop(name string)
}

// ModuleQuant decides, as mlx-lm does, whether module m is quantized and how: a per-layer
// entry of config.json wins, else the packing is inferred from the stored shapes (see
// InferQuant). A module is quantized iff its .scales exists; a packed (U32) weight without
// scales is reported and claimed. Norms are never quantized.
func (c *Config) ModuleQuant(ts Tensors, m Module) (q Quant, quantized bool) {
	if m.Kind == NormModule {
		return q, false
	}
	path := m.Path
	scales, hasScales := ts.Stored(path + ".scales")
	weight, hasWeight := ts.Stored(path + ".weight")
	override, overridden := c.Quantization.For(path)
	if overridden && override == nil {
		if hasScales {
			ts.Fail(path+".scales", fmt.Sprintf("config.json quantization marks %s as not quantized", path))
			ts.Drop(path + ".scales")
			ts.Drop(path + ".biases")
		}
		return q, false
	}
	if !hasScales {
		if hasWeight && weight.Uint32 {
			ts.Fail(path+".scales", fmt.Sprintf("missing: %s.weight is packed (U32) but has no scales", path))
			ts.Drop(path + ".weight")
			ts.Drop(path + ".biases")
			return q, true
		}
		return q, false
	}
	if overridden && override.GroupSize > 0 {
		return *override, true
	}
	if overridden { // `true`: the defaults
		return c.Quantization.Default, true
	}
	if !hasWeight {
		return Quant{GroupSize: 64, Bits: 4, Mode: "affine"}, true // reported by BindModule
	}
	q, err := InferQuant(weight.Shape, scales.Shape, m.In, scales.Uint8)
	if err != nil {
		ts.Fail(path+".scales", err.Error())
	}
	return q, true
}

// InferQuant infers a packed matrix's quantization from its stored shapes, as mlx-lm's
// infer_quant_config does: the group size from the scales' columns, the bits from the packed
// weight's, and for U8 scales the microscaling mode (nvfp4, mxfp4, mxfp8). Shapes it cannot
// read give the default (64, 4, affine); their shapes are reported when bound. An error says
// U8 scales fit no microscaling mode; q is then affine.
func InferQuant(weight, scales []int, in int, scalesUint8 bool) (q Quant, err error) {
	if len(scales) != 2 || len(weight) != 2 || scales[1] == 0 || in == 0 {
		return Quant{GroupSize: 64, Bits: 4, Mode: "affine"}, nil
	}
	q = Quant{GroupSize: in / scales[1], Bits: weight[1] * 32 / in, Mode: "affine"}
	if !scalesUint8 {
		return q, nil
	}
	switch {
	case q.Bits == 4 && q.GroupSize == 16:
		q.Mode = "nvfp4"
	case q.Bits == 4 && q.GroupSize == 32:
		q.Mode = "mxfp4"
	case q.Bits == 8 && q.GroupSize == 32:
		q.Mode = "mxfp8"
	default:
		return q, fmt.Errorf("cannot infer the quantization mode of %d bits with group size %d", q.Bits, q.GroupSize)
	}
	return q, nil
}

// BindModule binds through ts every tensor module m needs, stored as ModuleQuant decided:
// the packed weight, scales and (affine) biases of a quantized module, else the plain
// weight; then the bias.
func BindModule(ts Tensors, m Module, q Quant, quantized bool) {
	path, in, out := m.Path, m.In, m.Out
	switch {
	case quantized:
		bindPacked(ts, m, q)
	case m.Kind == NormModule:
		ts.Bind(Tensor{path + ".weight", WeightRole, []int{out}, FloatDtypes, m.Why})
	case m.Kind == EmbeddingModule:
		ts.Bind(Tensor{path + ".weight", WeightRole, []int{out, in}, FloatDtypes, m.Why + " by hidden_size"})
	default:
		ts.Bind(Tensor{path + ".weight", WeightRole, []int{out, in}, FloatDtypes, m.Why + " by its inputs"})
	}
	if m.Bias {
		ts.Bind(Tensor{path + ".bias", BiasRole, []int{out}, FloatDtypes, m.Why})
	}
}

// bindPacked binds the packed weight, scales and (affine) biases of a quantized module.
func bindPacked(ts Tensors, m Module, q Quant) {
	path, in, out := m.Path, m.In, m.Out
	if _, ok := ts.Stored(path + ".scales"); !ok {
		return // reported by ModuleQuant
	}
	if q.Bits <= 0 || q.GroupSize <= 0 || in*q.Bits%32 != 0 || in%q.GroupSize != 0 {
		ts.Fail(path+".weight", fmt.Sprintf("cannot be packed with %d bits in groups of %d (%d inputs)", q.Bits, q.GroupSize, in))
		for _, suffix := range []string{".weight", ".scales", ".biases"} {
			ts.Drop(path + suffix)
		}
		return
	}
	groups := m.Why + ", groups of " + fmt.Sprint(q.GroupSize)
	ts.Bind(Tensor{path + ".weight", WeightRole, []int{out, in * q.Bits / 32}, PackedDtypes, m.Why + ", packed " + fmt.Sprint(q.Bits) + "-bit"})
	ts.Bind(Tensor{path + ".scales", ScalesRole, []int{out, in / q.GroupSize}, ScaleDtypes, groups})
	if q.Mode == "" || q.Mode == "affine" {
		ts.Bind(Tensor{path + ".biases", BiasesRole, []int{out, in / q.GroupSize}, ScaleDtypes, groups})
	}
}
