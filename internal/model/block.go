package model

import "github.com/yai-dev/yai/mlx"

// Block is one transformer layer: attention and a feed-forward, each with a residual and
// the norms its family places around them (see modeldir.Layer). A nil norm is one the
// family does not have.
type Block struct {
	Attn *Attention
	FF   FeedForward
	// InputNorm and PreFFNorm normalize what attention and the feed-forward read;
	// PostAttnNorm and PostFFNorm (Gemma) normalize what they return.
	InputNorm, PostAttnNorm, PreFFNorm, PostFFNorm *mlx.Array
	Norm                                           Norm
	// ClipResidual clips float16 residual sums to float16's range (Gemma 3).
	ClipResidual bool
	// FFChunk, when nonzero, is how many rows of a longer sequence the feed-forward takes at
	// a time (see SetSequenceChunks); ffCheckpoint is its checkpointed forward.
	FFChunk      int
	ffCheckpoint *mlx.Closure
	// Path is mlx-lm's name of the block, "model.layers.3" (see modeldir.Layer.Path); empty
	// for blocks built by hand.
	Path string
	// linears are the block's projections by mlx-lm's name relative to the block
	// ("self_attn.q_proj"), pointing at the fields that hold them: what LoRA wraps.
	linears map[string]*Linear
	// switches are the experts' stacked projections of a mixture of experts, by name
	// ("mlp.switch_mlp.up_proj"), as linears: what LoRA wraps.
	switches map[string]*SwitchLinear
}

// FeedForward is a block's MLP: dense (MLP) or a mixture of experts.
type FeedForward interface {
	Forward(x *mlx.Array) *mlx.Array
}

// Forward computes h + attn(norm(h)), then that + ff(norm(that)), with the post-norms where
// the family has them. The cache and the packing are optional, as in Attention.Forward.
func (b *Block) Forward(h *mlx.Array, cache Cache, p *Packing) *mlx.Array {
	n := b.Norm.Apply(h, b.InputNorm)
	r := b.Attn.Forward(n, cache, p)
	n.Free()
	r = b.Norm.after(r, b.PostAttnNorm)
	h2 := b.residual(h, r)
	r.Free()
	defer h2.Free()
	n = b.Norm.Apply(h2, b.PreFFNorm)
	r = b.feedForward(n)
	n.Free()
	r = b.Norm.after(r, b.PostFFNorm)
	defer r.Free()
	return b.residual(h2, r)
}

// residual is x + y, clipped to float16's range for float16 under ClipResidual, as Gemma 3's
// clip_residual computes it (in float32).
func (b *Block) residual(x, y *mlx.Array) *mlx.Array {
	if !b.ClipResidual || x.Dtype() != mlx.Float16 {
		return mlx.Add(x, y)
	}
	x32, y32 := mlx.AsType(x, mlx.Float32), mlx.AsType(y, mlx.Float32)
	sum := mlx.Add(x32, y32)
	mlx.Free(x32, y32)
	const f16Max = 65504
	lo, hi := mlx.Scalar(-f16Max, mlx.Float32), mlx.Scalar(f16Max, mlx.Float32)
	clipped := mlx.Clip(sum, lo, hi)
	mlx.Free(sum, lo, hi)
	defer clipped.Free()
	return mlx.AsType(clipped, mlx.Float16)
}

// NewBlock assembles a block of attention a and MLP m with the projections' mlx-lm names,
// for blocks built by hand rather than loaded.
func NewBlock(a *Attention, m *MLP) *Block {
	b := &Block{Attn: a, FF: m, linears: map[string]*Linear{}}
	for name, l := range map[string]*Linear{"self_attn.q_proj": &a.Q, "self_attn.k_proj": &a.K, "self_attn.v_proj": &a.V,
		"self_attn.qkv_proj": &a.QKV, "self_attn.o_proj": &a.O, "mlp.gate_proj": &m.Gate, "mlp.up_proj": &m.Up,
		"mlp.gate_up_proj": &m.GateUp, "mlp.down_proj": &m.Down} {
		if *l != nil {
			b.linears[name] = l
		}
	}
	return b
}

// Linears are the block's projections by mlx-lm's name relative to the block, each a
// pointer to the field that holds it: replacing *Linears()[name] replaces the layer.
func (b *Block) Linears() map[string]*Linear { return b.linears }

// Switches are the block's stacked expert projections (none without a mixture of experts)
// by mlx-lm's name relative to the block, each a pointer to the field that holds it.
func (b *Block) Switches() map[string]*SwitchLinear { return b.switches }

// Norm is how a family's RMS norms scale: by weight, or by 1 + weight (Gemma).
type Norm struct {
	Eps     float32
	PlusOne bool
}

// Apply normalizes x with the scale w, as mlx.fast.rms_norm(x, w) or, PlusOne,
// rms_norm(x, 1.0 + w).
func (n Norm) Apply(x, w *mlx.Array) *mlx.Array {
	if !n.PlusOne {
		return mlx.RMSNorm(x, w, n.Eps)
	}
	w1 := mlx.AddScalar(w, 1)
	defer w1.Free()
	return mlx.RMSNorm(x, w1, n.Eps)
}

// after applies the post-norm w to x when there is one, freeing x; else returns x.
func (n Norm) after(x, w *mlx.Array) *mlx.Array {
	if w == nil {
		return x
	}
	defer x.Free()
	return n.Apply(x, w)
}
