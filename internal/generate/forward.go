package generate

import (
	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/mlx"
)

// The cached forward pass mirrors model.Forward with mlx-lm's cache path: queries and keys
// are rotated from the cache's offset and attend to every cached position. Intermediates
// are freed as soon as they are used, as in package model.

// decoder is a model with its caches.
type decoder struct {
	m      *model.Model
	caches []*kvCache
}

// swiglu is silu(gate) · x compiled shapeless, as mlx-lm compiles it: one fused kernel
// instead of three operations per block and token, the same arithmetic. Like mlx-lm's
// module-level function it is made once and kept for the process (one compiled graph);
// only the MLX thread touches it.
var swiglu *mlx.Closure

func compiledSwiglu() *mlx.Closure {
	if swiglu == nil {
		swiglu = mlx.Compile(func(in []*mlx.Array) []*mlx.Array {
			s := mlx.Sigmoid(in[0])
			silu := mlx.Multiply(in[0], s)
			s.Free()
			defer silu.Free()
			return []*mlx.Array{mlx.Multiply(silu, in[1])}
		}, true)
	}
	return swiglu
}

// newDecoder prepares empty caches. Call on the MLX thread; free releases what it holds.
func newDecoder(m *model.Model) *decoder {
	d := &decoder{m: m, caches: make([]*kvCache, len(m.Layers))}
	for i := range d.caches {
		d.caches[i] = &kvCache{}
	}
	return d
}

func (d *decoder) free() {
	for _, c := range d.caches {
		c.free()
	}
}

// hidden runs tokens (B, L) through the blocks, appending their keys and values to the
// caches, and returns the last block's output (B, L, H).
func (d *decoder) hidden(tokens *mlx.Array) *mlx.Array {
	h := d.m.Embed(tokens)
	mask := model.MaskFor(tokens.Dim(1))
	for i, b := range d.m.Layers {
		next := d.block(b, d.caches[i], h, mask)
		h.Free()
		h = next
	}
	return h
}

// lastLogits is the logits of the last position, (B, V), as mlx-lm's logits[:, -1, :].
func (d *decoder) lastLogits(tokens *mlx.Array) *mlx.Array {
	h := d.hidden(tokens)
	logits := d.m.Head(h)
	h.Free()
	defer logits.Free()
	l := logits.Dim(1)
	if l == 1 {
		// One position (every decoding step): a reshape, no slice to copy through.
		return mlx.Reshape(logits, logits.Dim(0), -1)
	}
	last := mlx.SliceAxis(logits, 1, l-1, l)
	defer last.Free()
	return mlx.Squeeze(last, 1)
}

func (d *decoder) block(b *model.Block, c *kvCache, h *mlx.Array, mask string) *mlx.Array {
	n := mlx.RMSNorm(h, b.InputNorm, b.NormEps)
	r := attend(b.Attn, c, n, mask)
	n.Free()
	h2 := mlx.Add(h, r)
	r.Free()
	defer h2.Free()
	n = mlx.RMSNorm(h2, b.PostAttnNorm, b.NormEps)
	r = d.mlp(b.MLP, n)
	n.Free()
	defer r.Free()
	return mlx.Add(h2, r)
}

// mlp is model.MLP.Forward with the compiled activation.
func (d *decoder) mlp(m *model.MLP, x *mlx.Array) *mlx.Array {
	g := m.Gate.Forward(x)
	u := m.Up.Forward(x)
	h := compiledSwiglu().Call(g, u)[0]
	mlx.Free(g, u)
	defer h.Free()
	return m.Down.Forward(h)
}

// attend is model.Attention.Forward with a cache.
func attend(a *model.Attention, c *kvCache, x *mlx.Array, mask string) *mlx.Array {
	shape := x.Shape()
	b, l := shape[0], shape[1]
	q := heads(a.Q.Forward(x), b, l, a.NumHeads)
	k := heads(a.K.Forward(x), b, l, a.NumKVHeads)
	v := heads(a.V.Forward(x), b, l, a.NumKVHeads)
	qr := a.RoPE.Apply(q, c.offset)
	kr := a.RoPE.Apply(k, c.offset)
	mlx.Free(q, k)
	keys, values := c.update(kr, v)
	mlx.Free(kr, v)
	out := mlx.ScaledDotProductAttention(qr, keys, values, a.Scale, mask, nil)
	mlx.Free(qr, keys, values)
	t := mlx.Transpose(out, 0, 2, 1, 3)
	out.Free()
	merged := mlx.Reshape(t, b, l, -1)
	t.Free()
	defer merged.Free()
	return a.O.Forward(merged)
}

// heads splits a projection (B, L, n·D) into (B, n, L, D), freeing its input.
func heads(p *mlx.Array, b, l, n int) *mlx.Array {
	r := mlx.Reshape(p, b, l, n, -1)
	p.Free()
	defer r.Free()
	return mlx.Transpose(r, 0, 2, 1, 3)
}
