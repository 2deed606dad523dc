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

// Forward computes h + attn(norm(h)), then that + mlp(norm(that)).
func (b *Block) Forward(h *mlx.Array, mask string) *mlx.Array {
	return b.forward(h, mask, nil)
}

// ForwardWith is Forward over packed rows when p is set, over plain causal rows otherwise.
func (b *Block) ForwardWith(h *mlx.Array, p *Packing) *mlx.Array {
	if p == nil {
		return b.forward(h, MaskFor(h.Dim(1)), nil)
	}
	return b.forward(h, "array", p)
}

func (b *Block) forward(h *mlx.Array, mask string, p *Packing) *mlx.Array {
	n := mlx.RMSNorm(h, b.InputNorm, b.NormEps)
	r := b.Attn.forward(n, mask, p)
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
