package modeldir

import (
	"fmt"
	"regexp"
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

// Module is one weight-holding module of the architecture. The zero Module (no Path) is a
// module the family does not have.
type Module struct {
	Kind    ModuleKind
	Path    string // mlx-lm's name, "model.layers.0.self_attn.q_proj"; tensors add ".weight" etc.
	In, Out int
	Bias    bool
	Why     string // the config.json fields Out comes from, for diagnostics
	// Experts, when nonzero, stacks that many (Out, In) matrices: a mixture of experts'
	// SwitchLinear, whose weight is (Experts, Out, In).
	Experts int
}

// Rope is how a layer rotates positions: mlx-lm's initialize_rope arguments.
type Rope struct {
	Dims        int // rotated features of each head (head_dim, or fewer with a partial factor)
	Base        float64
	Traditional bool
	Scaling     *RopeScaling // nil: none
	// MaxPositions is max_position_embeddings, which some scalings read.
	MaxPositions int
	// OriginalMaxPositions is the pretrained context su/longrope scaling reads.
	OriginalMaxPositions int
}

// Layer is one transformer block: its modules (the zero Module where the family has none),
// its attention window and its rotary positions.
//
// The norms are named for where they apply: InputNorm before attention, PostAttnNorm on
// attention's output (Gemma), PreFFNorm before the feed-forward (llama's
// post_attention_layernorm), PostFFNorm on its output (Gemma).
type Layer struct {
	Q, K, V, O   Module
	QKV          Module // a fused q, k, v projection (Phi-3); Q, K and V are then absent
	QNorm, KNorm Module // per-head RMS norms of queries and keys (Qwen3, Gemma 3)
	Gate, Up     Module
	GateUp       Module // a fused gate and up projection (Phi-3); Gate and Up are then absent
	Down         Module
	// A mixture of experts replaces Gate, Up and Down: Router scores the experts (Out of
	// them), each token runs through ExpertsPerToken of ExpertGate/Up/Down.
	Router                           Module
	ExpertGate, ExpertUp, ExpertDown Module
	InputNorm, PostAttnNorm          Module
	PreFFNorm, PostFFNorm            Module
	// Path is mlx-lm's name of the block, "model.layers.3": its modules' names start with it.
	Path string
	// Window, when nonzero, lets each position attend only to the Window positions up to
	// it (a sliding-window layer).
	Window int
	Rope   Rope
}

// Layout is a model's modules, as config.json describes them.
type Layout struct {
	Embedding Module
	Layers    []Layer
	Norm      Module
	LMHead    *Module // nil when the head is the tied embedding
}

// Layout describes the modules of the model c configures, as its family lays them out.
func (c *Config) Layout() *Layout {
	h := c.HiddenSize
	l := &Layout{
		Embedding: Module{Kind: EmbeddingModule, Path: c.Prefix + "model.embed_tokens", In: h, Out: c.VocabSize, Why: "vocab_size"},
		Norm:      c.Norm(c.Prefix+"model.norm", h),
	}
	layer := LlamaLayer
	if c.Family != nil && c.Family.Layer != nil {
		layer = c.Family.Layer
	}
	for i := range c.NumHiddenLayers {
		l.Layers = append(l.Layers, layer(c, i))
	}
	if !c.TieWordEmbeddings {
		head := c.Linear(c.Prefix+"lm_head", h, c.VocabSize, false, "vocab_size")
		l.LMHead = &head
	}
	return l
}

// Experts is a stack of n projections of in to out features, as mlx-lm's SwitchLinear holds
// them: weight (n, out, in).
func (c *Config) Experts(path string, n, in, out int, why string) Module {
	return Module{Kind: LinearModule, Path: path, In: in, Out: out, Why: why, Experts: n}
}

// Linear is a projection module.
func (c *Config) Linear(path string, in, out int, bias bool, why string) Module {
	return Module{Kind: LinearModule, Path: path, In: in, Out: out, Bias: bias, Why: why}
}

// Norm is an RMS norm's scale of size n.
func (c *Config) Norm(path string, n int) Module {
	why := "hidden_size"
	if n != c.HiddenSize {
		why = "head_dim"
	}
	return Module{Kind: NormModule, Path: path, Out: n, Why: why}
}

// DefaultRope is the rotary embedding of a layer with the config's own settings.
func (c *Config) DefaultRope() Rope {
	dims := c.HeadDim
	if c.RotaryDims > 0 {
		dims = c.RotaryDims
	}
	return Rope{Dims: dims, Base: c.RopeTheta, Traditional: c.RopeTraditional, Scaling: c.RopeScaling,
		MaxPositions: c.MaxPositionEmbeddings, OriginalMaxPositions: c.OriginalMaxPositionEmbeddings}
}

// LlamaLayer is mlx-lm's llama block i: q, k, v, o projections (biases as attention_bias
// says), a SwiGLU MLP, and pre-norms before each.
func LlamaLayer(c *Config, i int) Layer {
	h, q, kv, ff := c.HiddenSize, c.NumAttentionHeads*c.HeadDim, c.NumKeyValueHeads*c.HeadDim, c.IntermediateSize
	p := c.LayerPath(i) + "."
	return Layer{
		Path:      c.LayerPath(i),
		Q:         c.Linear(p+"self_attn.q_proj", h, q, c.AttentionBias, "num_attention_heads × head_dim"),
		K:         c.Linear(p+"self_attn.k_proj", h, kv, c.AttentionBias, "num_key_value_heads × head_dim"),
		V:         c.Linear(p+"self_attn.v_proj", h, kv, c.AttentionBias, "num_key_value_heads × head_dim"),
		O:         c.Linear(p+"self_attn.o_proj", q, h, c.AttentionBias, "hidden_size"),
		Gate:      c.Linear(p+"mlp.gate_proj", h, ff, c.MLPBias, "intermediate_size"),
		Up:        c.Linear(p+"mlp.up_proj", h, ff, c.MLPBias, "intermediate_size"),
		Down:      c.Linear(p+"mlp.down_proj", ff, h, c.MLPBias, "hidden_size"),
		InputNorm: c.Norm(p+"input_layernorm", h),
		PreFFNorm: c.Norm(p+"post_attention_layernorm", h),
		Window:    c.Window(i),
		Rope:      c.DefaultRope(),
	}
}

// Modules lists the layer's modules in the order the loader binds them.
func (l *Layer) Modules() []Module {
	var out []Module
	for _, m := range []Module{l.Q, l.K, l.V, l.QKV, l.O, l.QNorm, l.KNorm, l.Gate, l.Up, l.GateUp, l.Down,
		l.Router, l.ExpertGate, l.ExpertUp, l.ExpertDown, l.InputNorm, l.PostAttnNorm, l.PreFFNorm, l.PostFFNorm} {
		if m.Path != "" {
			out = append(out, m)
		}
	}
	return out
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
// frequencies, a tied model's lm_head, and what the family drops.
func (c *Config) Unused(name string) bool {
	if strings.Contains(name, "self_attn.rotary_emb.inv_freq") || (c.TieWordEmbeddings && name == c.Prefix+"lm_head.weight") {
		return true
	}
	if c.Family != nil {
		for _, p := range c.Family.Drops {
			if strings.HasPrefix(name, p) {
				return true
			}
		}
	}
	return false
}

// PerExpert reports whether a tensor belongs to one expert of the Hugging Face layout
// ("….experts.3.w1.weight", "….mlp.experts.0.up_proj.weight"), which mlx-lm's sanitize
// stacks into switch_mlp at load. yai reads only the stacked layout mlx_lm.convert writes.
func PerExpert(name string) bool { return perExpert.MatchString(name) }

var perExpert = regexp.MustCompile(`\.experts\.[0-9]+\.`)

// PerExpertProblem explains a tensor PerExpert reports.
const PerExpertProblem = "one expert of the Hugging Face per-expert layout: yai reads experts stacked as mlx_lm.convert writes them " +
	"(switch_mlp.gate_proj, up_proj, down_proj); convert the checkpoint with mlx_lm.convert first"

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

// InferQuant infers a packed matrix's (or stack of matrices') quantization from its stored shapes, as mlx-lm's
// infer_quant_config does: the group size from the scales' columns, the bits from the packed
// weight's, and for U8 scales the microscaling mode (nvfp4, mxfp4, mxfp8). Shapes it cannot
// read give the default (64, 4, affine); their shapes are reported when bound. An error says
// U8 scales fit no microscaling mode; q is then affine.
func InferQuant(weight, scales []int, in int, scalesUint8 bool) (q Quant, err error) {
	// A stack of experts (Experts, Out, In) packs each matrix the same way: read the last axes.
	n := len(weight)
	if n < 2 || len(scales) != n || scales[n-1] == 0 || in == 0 {
		return Quant{GroupSize: 64, Bits: 4, Mode: "affine"}, nil
	}
	q = Quant{GroupSize: in / scales[n-1], Bits: weight[n-1] * 32 / in, Mode: "affine"}
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
		ts.Bind(Tensor{path + ".weight", WeightRole, m.stacked(out, in), FloatDtypes, m.experts() + m.Why + " by its inputs"})
	}
	if m.Bias {
		ts.Bind(Tensor{path + ".bias", BiasRole, m.stacked(out), FloatDtypes, m.experts() + m.Why})
	}
}

// stacked is the shape of one of the module's tensors: dims, after the experts' axis for a
// stack of experts.
func (m Module) stacked(dims ...int) []int {
	if m.Experts == 0 {
		return dims
	}
	return append([]int{m.Experts}, dims...)
}

// experts prefixes a stack's shape explanation with where its first axis comes from.
func (m Module) experts() string {
	if m.Experts == 0 {
		return ""
	}
	return "experts by "
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
	ts.Bind(Tensor{path + ".weight", WeightRole, m.stacked(out, in*q.Bits/32), PackedDtypes, m.experts() + m.Why + ", packed " + fmt.Sprint(q.Bits) + "-bit"})
	ts.Bind(Tensor{path + ".scales", ScalesRole, m.stacked(out, in/q.GroupSize), ScaleDtypes, m.experts() + groups})
	if q.Mode == "" || q.Mode == "affine" {
		ts.Bind(Tensor{path + ".biases", BiasesRole, m.stacked(out, in/q.GroupSize), ScaleDtypes, m.experts() + groups})
	}
}
