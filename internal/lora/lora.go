// Package lora adds low-rank adapters to a model's linear layers, exactly as mlx-lm's
// LoRALinear does: y = base(x) + (scale · ((dropout(x) @ lora_a) @ lora_b)).astype(x.dtype),
// with lora_a (in, r) uniform in ±1/√in, lora_b (r, out) zeros, both float32, on the last
// num_layers blocks. A mixture of experts' stacked projections get one adapter per expert,
// as mlx-lm's LoRASwitchLinear: lora_a (experts, r, in), lora_b (experts, out, r), applied
// through the same gathers as the experts. Parameter names and the adapter files are
// mlx-lm's, so adapters move between yai and mlx_lm both ways.
//
// Ownership: Adapters owns its lora_a/lora_b arrays until Free (or Detach, which also puts
// the base layers back). The base layers stay owned by the model.
package lora

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/mlx"
)

// Config says where adapters go and how they are shaped. The zero value is mlx-lm's default
// (rank 8, scale 20, no dropout, 16 layers, every linear key).
type Config struct {
	// Keys are the block-relative module names to adapt, e.g. "self_attn.q_proj". Empty
	// means every linear layer of a block, as mlx-lm does when keys is absent.
	Keys []string `json:"keys,omitempty" yaml:"keys,omitempty"`
	// NumLayers counts blocks from the last one; -1 means every block, 0 means 16.
	NumLayers int     `json:"num_layers,omitempty" yaml:"num_layers,omitempty"`
	Rank      int     `json:"rank,omitempty" yaml:"rank,omitempty"`
	Scale     float64 `json:"scale,omitempty" yaml:"scale,omitempty"`
	// Alpha sets Scale = Alpha / Rank, the convention of other LoRA tools; give one or the other.
	Alpha   float64 `json:"alpha,omitempty" yaml:"alpha,omitempty"`
	Dropout float64 `json:"dropout,omitempty" yaml:"dropout,omitempty"`
	// Seed drives the lora_a initialisation.
	Seed uint64 `json:"seed,omitempty" yaml:"seed,omitempty"`
}

// llamaOrder is the order adapters of a Llama block are made in (and their random draws
// taken), with Phi-3's fused projections where its block declares them; other projections
// follow, sorted.
var llamaOrder = []string{
	"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.qkv_proj", "self_attn.o_proj",
	"mlp.gate_proj", "mlp.gate_up_proj", "mlp.down_proj", "mlp.up_proj",
}

// Keys lists the projections of blocks an adapter can wrap (of any of them: a family may
// mix dense blocks and mixtures of experts), by their names within a block: the linear
// layers, a mixture's router among them, and the experts' stacked projections. mlx-lm
// adapts all of these when no keys are given.
func Keys(blocks ...*model.Block) []string {
	var out, rest []string
	has := func(k string) bool {
		return slices.ContainsFunc(blocks, func(b *model.Block) bool { return slot(b, k) != (target{}) })
	}
	for _, k := range llamaOrder {
		if has(k) {
			out = append(out, k)
		}
	}
	for _, b := range blocks {
		for _, names := range [][]string{keysOf(b.Linears()), keysOf(b.Switches())} {
			for _, k := range names {
				if !slices.Contains(llamaOrder, k) && !slices.Contains(rest, k) {
					rest = append(rest, k)
				}
			}
		}
	}
	slices.Sort(rest)
	return append(out, rest...)
}

func keysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// resolveKeys qualifies bare module names by suffix against the blocks' projections (q_proj
// names self_attn.q_proj; gate_proj names every gate_proj, a dense block's and the
// experts'), and checks that each names one; no keys means all of them.
func resolveKeys(keys []string, blocks []*model.Block) ([]string, error) {
	all := Keys(blocks...)
	if len(keys) == 0 {
		return all, nil
	}
	var out []string
	for _, k := range keys {
		var matched []string
		if slices.Contains(all, k) {
			matched = []string{k}
		} else {
			for _, full := range all {
				if strings.HasSuffix(full, "."+k) {
					matched = append(matched, full)
				}
			}
		}
		if len(matched) == 0 {
			return nil, fmt.Errorf("lora: key %q names no projection of the block (it has %s)", k, strings.Join(all, ", "))
		}
		for _, m := range matched {
			if !slices.Contains(out, m) {
				out = append(out, m)
			}
		}
	}
	return out, nil
}

// Resolve fills defaults and checks c against a model with numBlocks blocks. The result has
// Scale set, Alpha cleared and explicit NumLayers; Attach resolves the keys against the
// blocks.
func (c Config) Resolve(numBlocks int) (Config, error) {
	if c.Rank == 0 {
		c.Rank = 8
	}
	if c.Rank < 0 {
		return c, fmt.Errorf("lora: rank must be positive, got %d", c.Rank)
	}
	switch {
	case c.Scale != 0 && c.Alpha != 0:
		return c, fmt.Errorf("lora: give scale or alpha, not both (scale = alpha/rank)")
	case c.Alpha != 0:
		c.Scale, c.Alpha = c.Alpha/float64(c.Rank), 0
	case c.Scale == 0:
		c.Scale = 20
	}
	if c.Dropout < 0 || c.Dropout >= 1 {
		return c, fmt.Errorf("lora: dropout must be in [0, 1), got %v", c.Dropout)
	}
	switch {
	case c.NumLayers == 0:
		c.NumLayers = min(16, numBlocks)
	case c.NumLayers < 0:
		c.NumLayers = numBlocks
	case c.NumLayers > numBlocks:
		return c, fmt.Errorf("lora: requested to train %d layers but the model only has %d", c.NumLayers, numBlocks)
	}
	return c, nil
}

// Linear is a base linear layer plus a low-rank update. It satisfies model.Linear, and
// model.SwitchLinear when it adapts a stack of experts (Switch set instead of Base).
type Linear struct {
	Base model.Linear
	// Switch is the experts' stacked projection an adapter of mlx-lm's LoRASwitchLinear
	// wraps: A is then lora_a (experts, r, in), B lora_b (experts, out, r).
	Switch  model.SwitchLinear
	A, B    *mlx.Array // lora_a (in, r), lora_b (r, out), float32
	Scale   float64
	Dropout float64
	// dropoutKey is set only while training; without it dropout is off, as in eval mode.
	dropoutKey *mlx.Array
}

// Wrapped is the adapted layer.
func (l *Linear) Wrapped() model.Linear { return l.Base }

// base is the adapted layer, whichever kind.
func (l *Linear) base() interface {
	InFeatures() int
	OutFeatures() int
	Arrays() map[string]*mlx.Array
} {
	if l.Switch != nil {
		return l.Switch
	}
	return l.Base
}

func (l *Linear) InFeatures() int  { return l.base().InFeatures() }
func (l *Linear) OutFeatures() int { return l.base().OutFeatures() }

// NumExperts is the experts of an adapted stack, 0 for a linear layer.
func (l *Linear) NumExperts() int {
	if l.Switch == nil {
		return 0
	}
	return l.Switch.NumExperts()
}

// Arrays are the base layer's arrays plus lora_a and lora_b.
func (l *Linear) Arrays() map[string]*mlx.Array {
	m := map[string]*mlx.Array{}
	for k, v := range l.base().Arrays() {
		m["linear."+k] = v
	}
	m["lora_a"], m["lora_b"] = l.A, l.B
	return m
}

// Forward is mlx-lm's LoRALinear.__call__. Intermediates are freed as soon as they are
// used so they do not outlive the evaluation that needs them.
func (l *Linear) Forward(x *mlx.Array) *mlx.Array {
	y := l.Base.Forward(x)
	in := l.dropout(x)
	xa := mlx.Matmul(in, l.A)
	z := mlx.Matmul(xa, l.B)
	mlx.Free(xa)
	if in != x {
		in.Free()
	}
	return l.update(x, y, z)
}

// ForwardExperts is mlx-lm's LoRASwitchLinear.__call__: the experts' product, plus the
// update through each expert's own lora_a and lora_b, gathered as the experts are.
func (l *Linear) ForwardExperts(x, indices *mlx.Array, sorted bool) *mlx.Array {
	y := l.Switch.ForwardExperts(x, indices, sorted)
	in := l.dropout(x)
	at := mlx.SwapAxes(l.A, -1, -2)
	xa := mlx.GatherMM(in, at, nil, indices, sorted)
	bt := mlx.SwapAxes(l.B, -1, -2)
	z := mlx.GatherMM(xa, bt, nil, indices, sorted)
	mlx.Free(at, xa, bt)
	if in != x {
		in.Free()
	}
	return l.update(x, y, z)
}

// dropout is x with mlx-lm's nn.Dropout applied while training, else x itself.
func (l *Linear) dropout(x *mlx.Array) *mlx.Array {
	if l.Dropout <= 0 || l.dropoutKey == nil {
		return x
	}
	keep := 1 - l.Dropout
	mask := mlx.Bernoulli(l.dropoutKey, keep, x.Shape())
	kept := mlx.Multiply(mask, x)
	mask.Free()
	defer kept.Free()
	return mlx.MulScalar(kept, 1/keep)
}

// update is y + (scale · z).astype(x.dtype), freeing y and z.
func (l *Linear) update(x, y, z *mlx.Array) *mlx.Array {
	scaled := mlx.MulScalar(z, l.Scale)
	z.Free()
	cast := mlx.AsType(scaled, x.Dtype())
	scaled.Free()
	defer mlx.Free(y, cast)
	return mlx.Add(y, cast)
}

// Adapters are the LoRA layers attached to a model, in a fixed order: by block, then by key
// in Config.Keys order.
type Adapters struct {
	Config Config // resolved
	Layers []*Linear
	Names  []string // module paths, e.g. "model.layers.3.self_attn.q_proj"
	Blocks []int    // the block of each layer
	slots  []target
}

// target is the field of a block that holds an adapted layer: a linear layer or a stack of
// experts.
type target struct {
	linear  *model.Linear
	experts *model.SwitchLinear
}

// slot is the field of block b that holds the projection named key (mlx-lm's name within
// the block, "self_attn.q_proj"), the zero target when the block has none.
func slot(b *model.Block, key string) target {
	if s := b.Switches()[key]; s != nil {
		return target{experts: s}
	}
	if l := b.Linears()[key]; l != nil {
		return target{linear: l}
	}
	return target{}
}

// adapted reports whether the target already holds an adapter.
func (t target) adapted() bool {
	if t.experts != nil {
		_, ok := (*t.experts).(*Linear)
		return ok
	}
	_, ok := (*t.linear).(*Linear)
	return ok
}

// holds reports whether the target holds l itself.
func (t target) holds(l *Linear) bool {
	if t.experts != nil {
		got, ok := (*t.experts).(*Linear)
		return ok && got == l
	}
	got, ok := (*t.linear).(*Linear)
	return ok && got == l
}

// set puts l into the target, or, restoring, the layer l adapts.
func (t target) set(l *Linear, restore bool) {
	switch {
	case t.experts != nil && restore:
		*t.experts = l.Switch
	case t.experts != nil:
		*t.experts = l
	case restore:
		*t.linear = l.Base
	default:
		*t.linear = l
	}
}

// Attach wraps the chosen linear layers of the last blocks with fresh adapters: lora_a
// uniform in ±1/√in from Config.Seed, lora_b zeros. Run it on the MLX thread or not; it
// takes care of that.
func Attach(blocks []*model.Block, cfg Config) (*Adapters, error) {
	cfg, err := cfg.Resolve(len(blocks))
	if err != nil {
		return nil, err
	}
	first := len(blocks) - cfg.NumLayers
	if cfg.NumLayers > 0 {
		if cfg.Keys, err = resolveKeys(cfg.Keys, blocks); err != nil {
			return nil, err
		}
	}
	a := &Adapters{Config: cfg}
	for i := first; i < len(blocks); i++ {
		// mlx-lm names an adapter by its module's path from the model's root.
		path := blocks[i].Path
		if path == "" {
			path = fmt.Sprintf("model.layers.%d", i)
		}
		for _, key := range cfg.Keys {
			// As mlx-lm, a block without the module (a dense block among mixtures of
			// experts) is left as it is.
			s := slot(blocks[i], key)
			if s == (target{}) {
				continue
			}
			if s.adapted() {
				return nil, fmt.Errorf("lora: %s.%s already has an adapter", path, key)
			}
			a.slots = append(a.slots, s)
			a.Names = append(a.Names, path+"."+key)
			a.Blocks = append(a.Blocks, i)
		}
	}
	err = mlx.Do(func() error {
		root := mlx.RandomKey(cfg.Seed)
		defer root.Free()
		keys := mlx.RandomSplit(root, max(len(a.slots), 2))
		defer keys.Free()
		for i, s := range a.slots {
			l := &Linear{Scale: cfg.Scale, Dropout: cfg.Dropout}
			aShape := func(in, out int) ([]int, []int) { return []int{in, cfg.Rank}, []int{cfg.Rank, out} }
			if s.experts != nil {
				l.Switch = *s.experts
				e := l.Switch.NumExperts()
				aShape = func(in, out int) ([]int, []int) { return []int{e, cfg.Rank, in}, []int{e, out, cfg.Rank} }
			} else {
				l.Base = *s.linear
			}
			in, out := l.InFeatures(), l.OutFeatures()
			bound := 1 / math.Sqrt(float64(in))
			k := mlx.SliceAxis(keys, 0, i, i+1)
			k2 := mlx.Squeeze(k, 0)
			k.Free()
			sa, sb := aShape(in, out)
			l.A, l.B = mlx.Uniform(k2, -bound, bound, sa, mlx.Float32), mlx.Zeros(sb, mlx.Float32)
			k2.Free()
			mlx.Eval(l.A, l.B)
			a.Layers = append(a.Layers, l)
		}
		return nil
	})
	if err != nil {
		a.free()
		return nil, err
	}
	for i, s := range a.slots {
		s.set(a.Layers[i], false)
	}
	return a, nil
}

// FirstBlock is the index of the lowest block with an adapter.
func (a *Adapters) FirstBlock(numBlocks int) int { return numBlocks - a.Config.NumLayers }

// ParamNames are the trainable parameters' names in Params order.
func (a *Adapters) ParamNames() []string {
	names := make([]string, 0, 2*len(a.Names))
	for _, n := range a.Names {
		names = append(names, n+".lora_a", n+".lora_b")
	}
	return names
}

// Params are the trainable arrays: lora_a, lora_b of each layer in order.
func (a *Adapters) Params() []*mlx.Array {
	ps := make([]*mlx.Array, 0, 2*len(a.Layers))
	for _, l := range a.Layers {
		ps = append(ps, l.A, l.B)
	}
	return ps
}

// Swap installs ps (in Params order) without freeing anything and returns what was there.
// The training step uses it to run the model on traced inputs, then swaps back.
func (a *Adapters) Swap(ps []*mlx.Array) (previous []*mlx.Array) {
	previous = a.Params()
	for i, l := range a.Layers {
		l.A, l.B = ps[2*i], ps[2*i+1]
	}
	return previous
}

// Replace installs ps, which the adapters now own, and frees the arrays they replace.
func (a *Adapters) Replace(ps []*mlx.Array) {
	old := a.Swap(ps)
	for i, o := range old {
		if o != ps[i] {
			o.Free()
		}
	}
}

// SetDropoutKeys gives each layer its dropout key for the next forward pass (nil turns
// dropout off). Keys stay owned by the caller.
func (a *Adapters) SetDropoutKeys(keys []*mlx.Array) {
	for i, l := range a.Layers {
		if keys == nil {
			l.dropoutKey = nil
		} else {
			l.dropoutKey = keys[i]
		}
	}
}

// HasDropout reports whether any layer applies dropout while training.
func (a *Adapters) HasDropout() bool { return a.Config.Dropout > 0 }

// Detach puts the base layers back into the model (where these adapters are plugged in) and
// frees the adapters.
func (a *Adapters) Detach() {
	a.Unplug()
	a.free()
}

// Unplug puts the base layers back into the model and keeps the adapter arrays, so Plug can
// put the adapters in again without reading their files: a server keeps several adapters
// loaded over one base model and plugs in the one each request names. Call it between
// forward passes (nothing may be running on the model).
func (a *Adapters) Unplug() {
	for i, s := range a.slots {
		if s.holds(a.Layers[i]) {
			s.set(a.Layers[i], true)
		}
	}
}

// Plug puts unplugged adapters back into the model. Another adapter in any of their slots is
// an error, and then nothing changes; adapters already in place stay.
func (a *Adapters) Plug() error {
	for i, s := range a.slots {
		if s.adapted() && !s.holds(a.Layers[i]) {
			return fmt.Errorf("lora: %s already has another adapter: unplug it first", a.Names[i])
		}
	}
	for i, s := range a.slots {
		s.set(a.Layers[i], false)
	}
	return nil
}

// Plugged reports whether the adapters are in the model.
func (a *Adapters) Plugged() bool {
	return len(a.slots) > 0 && a.slots[0].holds(a.Layers[0])
}

// Free releases the adapter arrays. The wrapped layers stay in the model, so call it only
// when the model is done too; Detach is the way to keep using the model.
func (a *Adapters) Free() { a.free() }

func (a *Adapters) free() {
	for _, l := range a.Layers {
		mlx.Free(l.A, l.B)
	}
}
