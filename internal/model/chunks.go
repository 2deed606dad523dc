package model

import "github.com/yai-dev/yai/mlx"

// Long rows are computed a slice of the sequence at a time so that no tensor of a step grows
// with the square of the row's length, nor with its length times the MLP's width:
//   - attention takes Chunk queries at a time against the keys they can see, forward and
//     backward, so that it holds one chunk's scores (Chunk × L per head), never L × L;
//   - the feed-forward takes FFChunk rows at a time, each under a checkpoint when it has
//     nothing to train, so its backward holds one chunk's intermediate tensors.
// The arithmetic is the same per row; only the order of work and what is kept change.

// SetSequenceChunks sets the rows per attention chunk and per feed-forward chunk of every
// block; 0 computes the whole sequence at once. Rows no longer than a chunk are unaffected.
func (m *Model) SetSequenceChunks(attention, feedForward int) {
	for _, b := range m.Layers {
		b.Attn.Chunk = attention
		b.FFChunk = feedForward
	}
}

// chunkedAttend is attend's training path for rows longer than a.Chunk (see
// chunkedAttention). It takes none of its arguments' ownership.
func (a *Attention) chunkedAttend(q, k, v *mlx.Array, p *Packing) *mlx.Array {
	in := []*mlx.Array{q, k, v}
	if p != nil {
		in = append(in, p.Mask)
	}
	return chunkedAttention(chunking{a.Scale, a.Softcap, a.Window, a.Chunk}).Call(in...)[0]
}

// chunking is what a chunked attention computes: the scale, soft-cap and window of its
// attention, and the queries per chunk.
type chunking struct {
	scale, softcap float32
	window, chunk  int
}

// chunkedAttention is causal attention over [q, k, v] or [q, k, v, mask] (a packed row's
// (B, 1, L, L) mask) → [out], chunk queries at a time, each against the keys it can see, with
// a backward of its own in the manner of flash attention: per chunk it recomputes the
// scores from the queries, keys and output it kept, computes the chunk's rows of dQ and
// adds its dK and dV into one running sum; each chunk waits for the one before (mlx.Depends),
// so that one chunk's scores are alive at a time. Nothing of L × L per head exists. One
// closure is made per chunking and kept for the process like the compiled activations;
// only the MLX thread touches them.
func chunkedAttention(ck chunking) *mlx.Closure {
	if c, ok := chunkedAttentionFns[ck]; ok {
		return c
	}
	c := mlx.CustomVJP(ck.forward, ck.backward)
	chunkedAttentionFns[ck] = c
	return c
}

var chunkedAttentionFns = map[chunking]*mlx.Closure{}

// span is chunk i's queries [s, e) and the first key lo they see.
func (ck chunking) span(s, l int) (e, lo int) {
	e = min(l, s+ck.chunk)
	if ck.window > 0 {
		lo = max(0, s-ck.window+1)
	}
	return e, lo
}

func (ck chunking) forward(in []*mlx.Array) []*mlx.Array {
	sc := mlx.NewScope()
	defer sc.Close()
	q, k, v, packed := in[0], in[1], in[2], packedMask(in)
	l := q.Dim(2)
	a := &Attention{Scale: ck.scale, Softcap: ck.softcap}
	var outs []*mlx.Array
	for s := 0; s < l; s += ck.chunk {
		e, lo := ck.span(s, l)
		qc, kc, vc := mlx.SliceAxis(q, 2, s, e), mlx.SliceAxis(k, 2, lo, e), mlx.SliceAxis(v, 2, lo, e)
		switch mask := ck.mask(s, e, lo, packed, false); {
		case ck.softcap > 0:
			outs = append(outs, a.softcapped(qc, kc, vc, mask))
		case mask != nil:
			outs = append(outs, mlx.ScaledDotProductAttention(qc, kc, vc, ck.scale, "array", mask))
		default: // the fused attention's causal mode aligns the queries with the last keys
			outs = append(outs, mlx.ScaledDotProductAttention(qc, kc, vc, ck.scale, mlx.CausalMask, nil))
		}
	}
	return []*mlx.Array{sc.Keep(mlx.Concatenate(outs, 2))}
}

// backward is forward's gradient from [q, k, v, (mask), dOut, out]: per chunk, with G query
// heads per key-value head,
//
//	S = scale·Q·Kᵀ (capped: c·tanh(S/c)), masked;  P = softmax(S)
//	dV += Pᵀ·dO;  dP = dO·Vᵀ;  dS = P ⊙ (dP − rowsum(dO ⊙ O)) (capped: ⊙ (1 − tanh²))
//	dQ = scale·dS·K;  dK += scale·dSᵀ·Q
//
// summed over the G query heads of each key-value head.
func (ck chunking) backward(in []*mlx.Array) []*mlx.Array {
	sc := mlx.NewScope()
	defer sc.Close()
	q, k, v, packed := in[0], in[1], in[2], packedMask(in)
	n := 3
	if packed != nil {
		n = 4
	}
	dOut, out := in[n], in[n+1]
	b, heads, l, d := q.Dim(0), q.Dim(1), q.Dim(2), q.Dim(3)
	kvHeads := k.Dim(1)
	g := heads / kvHeads
	grouped := func(x *mlx.Array) *mlx.Array { return mlx.Reshape(x, b, kvHeads, g, x.Dim(2), d) }
	var sum *mlx.Array
	var dQs []*mlx.Array
	for s := 0; s < l; s += ck.chunk {
		e, lo := ck.span(s, l)
		qs, dOs := mlx.SliceAxis(q, 2, s, e), mlx.SliceAxis(dOut, 2, s, e)
		if sum != nil {
			// The chunk starts once the chunk before is done (its dQ and the sum so far):
			// else MLX may compute the chunks' scores ahead of their products, many alive at
			// once.
			prev := dQs[len(dQs)-1]
			qs, dOs = mlx.Depends(mlx.Depends(qs, sum), prev), mlx.Depends(mlx.Depends(dOs, sum), prev)
		}
		qc := grouped(qs)
		kc := mlx.ExpandDims(mlx.SliceAxis(k, 2, lo, e), 2)
		vc := mlx.ExpandDims(mlx.SliceAxis(v, 2, lo, e), 2)
		dO, o := grouped(dOs), grouped(mlx.SliceAxis(out, 2, s, e))
		scores := mlx.MulScalar(mlx.Matmul(qc, mlx.SwapAxes(kc, -1, -2)), float64(ck.scale))
		var tanh *mlx.Array
		if ck.softcap > 0 {
			tanh = mlx.Tanh(mlx.DivScalar(scores, float64(ck.softcap)))
			scores = mlx.MulScalar(tanh, float64(ck.softcap))
		}
		mask := ck.mask(s, e, lo, packed, true)
		if mask.Ndim() == 4 {
			mask = mlx.ExpandDims(mask, 2)
		}
		scores = mlx.Where(mask, scores, mlx.Scalar(lowestFloat(scores.Dtype()), scores.Dtype()))
		p := mlx.Softmax(scores, true, -1)
		dV := mlx.Sum(mlx.Matmul(mlx.SwapAxes(p, -1, -2), dO), false, 2)
		dP := mlx.Matmul(dO, mlx.SwapAxes(vc, -1, -2))
		delta := mlx.Sum(mlx.Multiply(dO, o), true, -1)
		dS := mlx.Multiply(p, mlx.Subtract(dP, delta))
		if tanh != nil {
			one := mlx.Scalar(1, tanh.Dtype())
			dS = mlx.Multiply(dS, mlx.Subtract(one, mlx.Square(tanh)))
		}
		dS = mlx.MulScalar(dS, float64(ck.scale))
		dQ := mlx.Reshape(mlx.Matmul(dS, kc), b, heads, e-s, d)
		dK := mlx.Sum(mlx.Matmul(mlx.SwapAxes(dS, -1, -2), qc), false, 2)
		// A chunk's dQ is its own rows; its dK and dV, placed in the row side by side along
		// the heads, add to the sum of the chunks before it.
		dQs = append(dQs, dQ)
		pad := func(x *mlx.Array) *mlx.Array { return mlx.Pad(x, []int{0, 0, lo, 0}, []int{0, 0, l - e, 0}, 0) }
		term := mlx.Concatenate([]*mlx.Array{pad(dK), pad(dV)}, 1)
		if sum == nil {
			sum = term
		} else {
			sum = mlx.Add(term, sum)
		}
	}
	dkv := mlx.SplitAt(sum, []int{kvHeads}, 1)
	grads := []*mlx.Array{mlx.AsType(mlx.Concatenate(dQs, 2), q.Dtype()), mlx.AsType(dkv[0], k.Dtype()), mlx.AsType(dkv[1], v.Dtype())}
	if packed != nil { // a mask has no gradient
		grads = append(grads, mlx.BroadcastTo(mlx.Scalar(0, packed.Dtype()), packed.Shape()...))
	}
	sc.Keep(grads...)
	return grads
}

// packedMask is the packed row's mask among a chunked attention's inputs, or nil.
func packedMask(in []*mlx.Array) *mlx.Array {
	if len(in) > 3 && in[3].Ndim() == 4 && in[3].Dtype() == mlx.Bool {
		return in[3]
	}
	return nil
}

// mask is the mask of queries [s, e) over keys [lo, e): the packed row's, the window's, or
// causal. Without explicit, it is nil where the fused attention's causal mode is exact.
func (ck chunking) mask(s, e, lo int, packed *mlx.Array, explicit bool) *mlx.Array {
	var causal *mlx.Array
	if explicit || ck.window > 0 || ck.softcap > 0 || packed != nil {
		causal = causalMask(e-s, s-lo, ck.window)
	}
	if packed == nil {
		return causal
	}
	rows := mlx.Slice(packed, []int{0, 0, s, lo}, []int{packed.Dim(0), 1, e, e}, nil)
	return mlx.LogicalAnd(rows, causal)
}

// feedForward is b.FF over x (B, L, H), FFChunk rows at a time for longer rows. A dense MLP
// with nothing to train runs each chunk under a checkpoint; one whose projections carry
// adapters (or a mixture of experts) runs the chunks as they are, so that the adapters'
// gradients, which a checkpoint only computes for its inputs, still reach them.
func (b *Block) feedForward(x *mlx.Array) *mlx.Array {
	l := x.Dim(1)
	if b.FFChunk <= 0 || l <= b.FFChunk {
		return b.FF.Forward(x)
	}
	run := b.FF.Forward
	if b.ffFrozen() {
		if b.ffCheckpoint == nil {
			b.ffCheckpoint = mlx.Checkpoint(func(in []*mlx.Array) []*mlx.Array { return []*mlx.Array{b.FF.Forward(in[0])} })
		}
		run = func(x *mlx.Array) *mlx.Array { return b.ffCheckpoint.Call(x)[0] }
	}
	var outs []*mlx.Array
	for s := 0; s < l; s += b.FFChunk {
		xc := mlx.SliceAxis(x, 1, s, min(l, s+b.FFChunk))
		outs = append(outs, run(xc))
		xc.Free()
	}
	defer mlx.Free(outs...)
	return mlx.Concatenate(outs, 1)
}

// ffFrozen reports whether the block's feed-forward is a dense MLP none of whose
// projections is wrapped by an adapter.
func (b *Block) ffFrozen() bool {
	if _, ok := b.FF.(*MLP); !ok {
		return false
	}
	for name, slot := range b.linears {
		if _, wrapped := (*slot).(Wrapper); wrapped && len(name) > 4 && name[:4] == "mlp." {
			return false
		}
	}
	return true
}
