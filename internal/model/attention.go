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
	// Chunk, when nonzero, is how many queries of a longer row attend at a time without a
	// cache (see SetSequenceChunks).
	Chunk int
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
	rope := a.RoPE
	var qr, kr *mlx.Array
	offset := 0
	switch {
	case p != nil && cache != nil:
		panic("model: attention over packed rows takes no cache")
	case p != nil:
		qr, kr = p.rope(rope, q), p.rope(rope, k)
	default:
		if cache != nil {
			offset = cache.Offset()
		}
		qr, kr = rope.Apply(q, offset), rope.Apply(k, offset)
	}
	mlx.Free(q, k)
	if cache == nil && a.Chunk > 0 && qr.Dim(2) > a.Chunk {
		defer mlx.Free(qr, kr, v)
		return a.chunkedAttend(qr, kr, v, p)
	}
	// mlx-lm makes the mask before the cache takes the new positions.
	mode, maskArray := a.mask(qr.Dim(2), offset, cache, p)
	defer maskArray.Free()
	keys, values := kr, v
	if cache != nil {
		keys, values = cache.Update(kr, v)
		mlx.Free(kr, v)
	}
	var out *mlx.Array
	if a.Softcap > 0 {
		out = a.softcapped(qr, keys, values, maskArray)
	} else {
		out = mlx.ScaledDotProductAttention(qr, keys, values, a.Scale, mode, maskArray)
	}
	mlx.Free(qr, keys, values)
	return out
}

// mask is the mask of l new positions from offset on, as mlx-lm's create_attention_mask
// and the caches' make_mask choose it: "causal" (or none for one position) where that is
// exact, else a boolean array (owned by the caller) for a window that cuts into the keys,
// for packed rows, and for the softcapped scores, which take an array.
func (a *Attention) mask(l, offset int, cache Cache, p *Packing) (mode string, array *mlx.Array) {
	w := a.Window
	switch {
	case p != nil:
		if w == 0 {
			return "array", p.Mask.Clone()
		}
		win := causalMask(l, 0, w)
		defer win.Free()
		return "array", mlx.LogicalAnd(p.Mask, win)
	case w > 0:
		if rc, ok := cache.(*RotatingKVCache); ok {
			// RotatingKVCache.make_mask: the cache holds at most MaxSize−1 earlier
			// positions when several arrive; one position sees exactly the window
			// (NewCaches makes MaxSize the window, as mlx-lm's make_cache does).
			if l == 1 {
				return a.arrayIfCapped(mlx.NoMask, l, 0)
			}
			offset = min(rc.MaxSize-1, offset)
		}
		if offset+l > w {
			return "array", causalMask(l, offset, w)
		}
	}
	return a.arrayIfCapped(MaskFor(l), l, offset)
}

// arrayIfCapped turns a causal mode into its array for the softcapped scores (gemma2.py
// asks create_attention_mask for an array).
func (a *Attention) arrayIfCapped(mode string, l, offset int) (string, *mlx.Array) {
	if a.Softcap > 0 && mode == mlx.CausalMask {
		return "array", causalMask(l, offset, 0)
	}
	return mode, nil
}

// causalMask is mlx-lm's create_causal_mask: (l, offset+l) bool, query offset+i seeing key
// j ≤ offset+i, and with a window only the window positions up to it.
func causalMask(l, offset, window int) *mlx.Array {
	r := mlx.Arange(0, float64(offset+l), 1, mlx.Int32)
	q := mlx.Arange(float64(offset), float64(offset+l), 1, mlx.Int32)
	rows, cols := mlx.Reshape(q, l, 1), mlx.Reshape(r, 1, offset+l)
	mlx.Free(q, r)
	defer mlx.Free(rows, cols)
	mask := mlx.GreaterEqual(rows, cols)
	if window == 0 {
		return mask
	}
	shifted := mlx.AddScalar(cols, float64(window))
	in := mlx.Less(rows, shifted)
	defer mlx.Free(mask, shifted, in)
	return mlx.LogicalAnd(mask, in)
}

// softcapped is gemma2.py's attention, which caps the scores at ±Softcap with tanh and so
// computes them itself instead of the fused kernel: queries scaled, grouped by key-value
// head, scores capped, masked with the dtype's lowest value, a precise softmax. It takes
// none of its arguments' ownership.
func (a *Attention) softcapped(q, k, v, mask *mlx.Array) *mlx.Array {
	b, h, l, d := q.Dim(0), q.Dim(1), q.Dim(2), q.Dim(3)
	kvh := k.Dim(1)
	qs := mlx.MulScalar(q, float64(a.Scale))
	keys, values := k.Clone(), v.Clone()
	if h > kvh {
		qs = then(qs, mlx.Reshape(qs, b, kvh, h/kvh, l, d))
		keys = then(keys, mlx.ExpandDims(keys, 2))
		values = then(values, mlx.ExpandDims(values, 2))
	}
	defer mlx.Free(qs, keys, values)
	n := keys.Ndim()
	axes := make([]int, n)
	for i := range axes {
		axes[i] = i
	}
	axes[n-2], axes[n-1] = n-1, n-2
	kt := mlx.Transpose(keys, axes...)
	scores := mlx.Matmul(qs, kt)
	kt.Free()
	capped := mlx.DivScalar(scores, float64(a.Softcap))
	scores.Free()
	scores = mlx.Tanh(capped)
	capped.Free()
	scores = then(scores, mlx.MulScalar(scores, float64(a.Softcap)))
	if mask != nil {
		m := mask.Clone()
		if h > kvh && m.Ndim() > 3 {
			m = then(m, mlx.ExpandDims(m, -3))
		}
		lowest := mlx.Scalar(lowestFloat(scores.Dtype()), scores.Dtype())
		scores = then(scores, mlx.Where(m, scores, lowest))
		mlx.Free(m, lowest)
	}
	probs := mlx.Softmax(scores, true, -1)
	scores.Free()
	out := mlx.Matmul(probs, values)
	probs.Free()
	if h > kvh {
		out = then(out, mlx.Reshape(out, b, h, l, d))
	}
	return out
}

// then frees old and returns next: a step of a computation that replaces its value.
func then(old, next *mlx.Array) *mlx.Array {
	old.Free()
	return next
}

// lowestFloat is mx.finfo(dt).min.
func lowestFloat(dt mlx.Dtype) float64 {
	switch dt {
	case mlx.Float16:
		return -65504
	case mlx.BFloat16:
		return -0x1.fep127
	default:
		return -math.MaxFloat32
	}
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
