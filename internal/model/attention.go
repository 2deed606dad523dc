package model

import (
	"math"

	"github.com/yai-dev/yai/mlx"
)

// Attention is grouped-query self-attention with rotary positions. The projections are
// exported so LoRA can wrap them.
type Attention struct {
	Q, K, V, O Linear
	NumHeads   int
	NumKVHeads int
	HeadDim    int
	Scale      float32
	RoPE       mlx.RoPE
}

// Forward runs attention over x (B, L, H) with the given mask (mlx.CausalMask or
// mlx.NoMask), as mlx-lm's llama Attention without a cache.
func (a *Attention) Forward(x *mlx.Array, mask string) *mlx.Array {
	return a.forward(x, mask, nil)
}

// ForwardPacked runs attention over packed rows (see Packing).
func (a *Attention) ForwardPacked(x *mlx.Array, p *Packing) *mlx.Array {
	return a.forward(x, "array", p)
}

func (a *Attention) forward(x *mlx.Array, mask string, p *Packing) *mlx.Array {
	shape := x.Shape()
	b, l := shape[0], shape[1]
	q := a.heads(a.Q.Forward(x), b, l, a.NumHeads)
	k := a.heads(a.K.Forward(x), b, l, a.NumKVHeads)
	v := a.heads(a.V.Forward(x), b, l, a.NumKVHeads)
	var qr, kr, maskArray *mlx.Array
	if p != nil {
		qr, kr, maskArray = p.rope(a.RoPE, q), p.rope(a.RoPE, k), p.Mask
	} else {
		qr, kr = a.RoPE.Apply(q, 0), a.RoPE.Apply(k, 0)
	}
	mlx.Free(q, k)
	out := mlx.ScaledDotProductAttention(qr, kr, v, a.Scale, mask, maskArray)
	mlx.Free(qr, kr, v)
	// (B, heads, L, D) → (B, L, heads·D)
	t := mlx.Transpose(out, 0, 2, 1, 3)
	out.Free()
	merged := mlx.Reshape(t, b, l, -1)
	t.Free()
	defer merged.Free()
	return a.O.Forward(merged)
}

// heads splits a projection (B, L, n·D) into (B, n, L, D), freeing its input.
func (a *Attention) heads(p *mlx.Array, b, l, n int) *mlx.Array {
	r := mlx.Reshape(p, b, l, n, -1)
	p.Free()
	defer r.Free()
	return mlx.Transpose(r, 0, 2, 1, 3)
}

func attentionScale(headDim int) float32 { return float32(math.Pow(float64(headDim), -0.5)) }

// MLP is the SwiGLU feed-forward block: down(silu(gate(x)) · up(x)).
type MLP struct {
	Gate, Up, Down Linear
}

func (m *MLP) Forward(x *mlx.Array) *mlx.Array {
	g := m.Gate.Forward(x)
	u := m.Up.Forward(x)
	h := swiglu(g, u)
	mlx.Free(g, u)
	defer h.Free()
	return m.Down.Forward(h)
}

// swiglu is silu(gate) · x, with silu(g) = g · sigmoid(g) as mlx.nn.silu computes it.
func swiglu(gate, x *mlx.Array) *mlx.Array {
	s := mlx.Sigmoid(gate)
	silu := mlx.Multiply(gate, s)
	s.Free()
	defer silu.Free()
	return mlx.Multiply(silu, x)
}
