package model

import (
	"math"

	"github.com/yai-dev/yai/mlx"
)

// Attention is grouped-query self-attention with rotary positions: mlx-lm's llama
// Attention and the variations families make of it. The projections are exported so LoRA
// can wrap them.
type Attention struct {
	Q, K, V, O Linear
	// QKV, set instead of Q, K and V, projects queries, keys and values at once (Phi-3).
	QKV Linear
	// QNorm and KNorm, when set, normalize each head's queries and keys before the rotary
	// embedding (Qwen3, Gemma 3).
	QNorm, KNorm *mlx.Array
	Norm         Norm
	NumHeads     int
	NumKVHeads   int
	HeadDim      int
	Scale        float32
	RoPE         RoPE
	// Window, when nonzero, limits each position to the Window positions up to it.
	Window int
	// Softcap, when nonzero, caps the scores at ±Softcap with tanh (Gemma 2).
	Softcap float32
}

// Forward runs attention over x (B, L, H). It is the one attention of training, evaluation,
// prefill and decoding; cache and p are both optional:
//   - cache, when set, holds the keys and values of earlier positions: x's positions follow
//     them, attend to them, and are appended to them (prefill and decoding);
//   - p, when set, packs several examples per row (see Packing; training on packed rows).
//
// Without either, x's positions start at 0 and attend causally (training, evaluation).
func (a *Attention) Forward(x *mlx.Array, cache Cache, p *Packing) *mlx.Array {
	b, l := x.Dim(0), x.Dim(1)
	qp, kp, vp := a.project(x)
	q := a.headNorm(splitHeads(qp, b, l, a.NumHeads), a.QNorm)
	k := a.headNorm(splitHeads(kp, b, l, a.NumKVHeads), a.KNorm)
	v := splitHeads(vp, b, l, a.NumKVHeads)
	out := a.attend(q, k, v, cache, p)
	merged := mergeHeads(out)
	defer merged.Free()
	return a.O.Forward(merged)
}

// project computes the queries, keys and values (B, L, heads·D), from one fused projection
// or three.
func (a *Attention) project(x *mlx.Array) (q, k, v *mlx.Array) {
	if a.QKV == nil {
		return a.Q.Forward(x), a.K.Forward(x), a.V.Forward(x)
	}
	qkv := a.QKV.Forward(x)
	defer qkv.Free()
	qd, kvd := a.NumHeads*a.HeadDim, a.NumKVHeads*a.HeadDim
	parts := mlx.SplitAt(qkv, []int{qd, qd + kvd}, -1)
	return parts[0], parts[1], parts[2]
}

// headNorm normalizes each head of x (B, heads, L, D) with w when set, freeing x.
func (a *Attention) headNorm(x, w *mlx.Array) *mlx.Array {
	if w == nil {
		return x
	}
	defer x.Free()
	return a.Norm.Apply(x, w)
}

// attend is the part of attention every family shares, mlx-lm's rope-then-cache-then-
// scaled_dot_product_attention: it rotates queries and keys (B, heads, L, D) to their
// positions (from the cache's offset, or the packing's), appends keys and values to the
// cache, and attends with the mask those positions call for. It frees q, k and v and
// returns (B, heads, L, D).
func (a *Attention) attend(q, k, v *mlx.Array, cache Cache, p *Packing) *mlx.Array {
	rope, scale := a.RoPE, a.Scale
	var qr, kr, maskArray *mlx.Array
	mask := MaskFor(q.Dim(2))
	switch {
	case p != nil && cache != nil:
		panic("model: attention over packed rows takes no cache")
	case p != nil:
		qr, kr, mask, maskArray = p.rope(rope, q), p.rope(rope, k), "array", p.Mask
	default:
		offset := 0
		if cache != nil {
			offset = cache.Offset()
		}
		qr, kr = rope.Apply(q, offset), rope.Apply(k, offset)
	}
	mlx.Free(q, k)
	keys, values := kr, v
	if cache != nil {
		keys, values = cache.Update(kr, v)
		mlx.Free(kr, v)
	}
	out := mlx.ScaledDotProductAttention(qr, keys, values, scale, mask, maskArray)
	mlx.Free(qr, keys, values)
	return out
}

// MaskFor is the attention mask mlx-lm uses for l new positions: causal, or none for a
// single token (which may attend to everything cached before it).
func MaskFor(l int) string {
	if l == 1 {
		return mlx.NoMask
	}
	return mlx.CausalMask
}

// splitHeads splits a projection (B, L, n·D) into (B, n, L, D), freeing its input.
func splitHeads(p *mlx.Array, b, l, n int) *mlx.Array {
	r := mlx.Reshape(p, b, l, n, -1)
	p.Free()
	defer r.Free()
	return mlx.Transpose(r, 0, 2, 1, 3)
}

// mergeHeads is splitHeads' inverse, (B, n, L, D) → (B, L, n·D), freeing its input.
func mergeHeads(x *mlx.Array) *mlx.Array {
	b, l := x.Dim(0), x.Dim(2)
	t := mlx.Transpose(x, 0, 2, 1, 3)
	x.Free()
	defer t.Free()
	return mlx.Reshape(t, b, l, -1)
}

func attentionScale(headDim int) float32 { return float32(math.Pow(float64(headDim), -0.5)) }
