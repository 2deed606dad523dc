package greedy

import (
	"github.com/yai-dev/yai/mlx"
	"github.com/yai-dev/yai/model"
)

// kvCache holds each layer's keys and values (B, kv heads, positions, head dim).
type kvCache struct {
	keys, values []*mlx.Array
	offset       int
}

func newKVCache(layers int) *kvCache {
	return &kvCache{keys: make([]*mlx.Array, layers), values: make([]*mlx.Array, layers)}
}

// arrays lists what the cache holds, to evaluate it.
func (c *kvCache) arrays() []*mlx.Array {
	return append(append([]*mlx.Array{}, c.keys...), c.values...)
}

func (c *kvCache) free() {
	mlx.Free(c.keys...)
	mlx.Free(c.values...)
}

// append adds new keys and values for layer i and returns the whole history; the cache
// owns the result.
func (c *kvCache) append(i int, k, v *mlx.Array) (keys, values *mlx.Array) {
	if c.keys[i] == nil {
		c.keys[i], c.values[i] = k, v
		return k, v
	}
	nk := mlx.Concatenate([]*mlx.Array{c.keys[i], k}, 2)
	nv := mlx.Concatenate([]*mlx.Array{c.values[i], v}, 2)
	mlx.Free(c.keys[i], c.values[i], k, v)
	c.keys[i], c.values[i] = nk, nv
	return nk, nv
}

// forward runs tokens (1, L) through the model at the cache's position and returns the
// logits of the last position (1, V). The model's layers may be wrapped by LoRA: every
// projection goes through its Linear.
func forward(m *model.Model, tokens *mlx.Array, c *kvCache) *mlx.Array {
	l := tokens.Dim(1)
	mask := model.MaskFor(l)
	h := m.Embed(tokens)
	for i, blk := range m.Layers {
		n := mlx.RMSNorm(h, blk.InputNorm, blk.NormEps)
		r := attention(blk.Attn, n, mask, c, i)
		n.Free()
		h2 := mlx.Add(h, r)
		mlx.Free(h, r)
		n = mlx.RMSNorm(h2, blk.PostAttnNorm, blk.NormEps)
		r = blk.MLP.Forward(n)
		n.Free()
		h = mlx.Add(h2, r)
		mlx.Free(h2, r)
	}
	c.offset += l
	last := mlx.SliceAxis(h, 1, l-1, l)
	h.Free()
	defer last.Free()
	logits := m.Head(last)
	defer logits.Free()
	return mlx.Reshape(logits, 1, -1)
}

// attention is model.Attention.Forward with the cache: new positions are rotated from the
// cache's offset and attend to every cached position.
func attention(a *model.Attention, x *mlx.Array, mask string, c *kvCache, layer int) *mlx.Array {
	b, l := x.Dim(0), x.Dim(1)
	heads := func(p *mlx.Array, n int) *mlx.Array {
		r := mlx.Reshape(p, b, l, n, -1)
		p.Free()
		defer r.Free()
		return mlx.Transpose(r, 0, 2, 1, 3)
	}
	q := heads(a.Q.Forward(x), a.NumHeads)
	k := heads(a.K.Forward(x), a.NumKVHeads)
	v := heads(a.V.Forward(x), a.NumKVHeads)
	qr := a.RoPE.Apply(q, c.offset)
	kr := a.RoPE.Apply(k, c.offset)
	mlx.Free(q, k)
	keys, values := c.append(layer, kr, v)
	out := mlx.ScaledDotProductAttention(qr, keys, values, a.Scale, mask, nil)
	qr.Free()
	t := mlx.Transpose(out, 0, 2, 1, 3)
	out.Free()
	merged := mlx.Reshape(t, b, l, -1)
	t.Free()
	defer merged.Free()
	return a.O.Forward(merged)
}
