package model

import "github.com/yai-dev/yai/mlx"

// Block is one transformer layer: pre-norm attention and pre-norm MLP, each with a residual.
type Block struct {
	Attn         *Attention
	MLP          *MLP
	InputNorm    *mlx.Array
	PostAttnNorm *mlx.Array
	NormEps      float32
}

// Forward computes h + attn(norm(h)), then that + mlp(norm(that)). The cache and the
// packing are optional, as in Attention.Forward.
func (b *Block) Forward(h *mlx.Array, cache Cache, p *Packing) *mlx.Array {
	n := mlx.RMSNorm(h, b.InputNorm, b.NormEps)
	r := b.Attn.Forward(n, cache, p)
	n.Free()
	h2 := mlx.Add(h, r)
	r.Free()
	defer h2.Free()
	n = mlx.RMSNorm(h2, b.PostAttnNorm, b.NormEps)
	r = b.MLP.Forward(n)
	n.Free()
	defer r.Free()
	return mlx.Add(h2, r)
}
