package model

import "github.com/yai-dev/yai/mlx"

// The output head in pieces, for a loss that runs it on chosen positions in chunks: the final
// norm, the projection onto the vocabulary, the logits' cap, and the projection's transpose
// (a gradient over the vocabulary back onto the hidden size). Head is HeadNorm, Project,
// then Softcap.

// HeadNorm applies the final RMS norm.
func (m *Model) HeadNorm(h *mlx.Array) *mlx.Array {
	return Norm{Eps: float32(m.Config.RMSNormEps), PlusOne: m.Config.NormPlusOne}.Apply(h, m.Norm)
}

// Project maps normed hidden states onto the vocabulary: (…, H) → (…, V).
func (m *Model) Project(n *mlx.Array) *mlx.Array {
	if m.LMHead == nil {
		return m.Embedding.AsLinear(n)
	}
	return m.LMHead.Forward(n)
}

// ProjectBack is Project's transpose without its bias, g @ W: (…, V) → (…, H), what the
// gradient of Project with respect to its input needs.
func (m *Model) ProjectBack(g *mlx.Array) *mlx.Array {
	switch l := m.LMHead.(type) {
	case nil:
		return m.Embedding.asLinearBack(g)
	case *QuantizedLinear:
		return packedProduct(g, l.Weight, l.Scales, l.Biases, l.Quant, false, l.Dense)
	case *DenseLinear:
		return mlx.Matmul(g, l.Weight)
	default:
		panic("model: the output head is neither a plain nor a quantized linear layer")
	}
}

// asLinearBack is AsLinear's transpose: g @ W.
func (e *Embedding) asLinearBack(g *mlx.Array) *mlx.Array {
	if e.Packed {
		return packedProduct(g, e.Weight, e.Scales, e.Biases, e.Quant, false, e.Dense)
	}
	return mlx.Matmul(g, e.Weight)
}

// Softcap caps projected logits z at ±Config.FinalSoftcap as mlx-lm does, cap·tanh(z/cap),
// taking z's ownership. It also returns tanh(z/cap), from which a gradient through the cap
// follows (d logits/dz = 1 − tanh²); without a cap it returns z and nil.
func (m *Model) Softcap(z *mlx.Array) (logits, tanh *mlx.Array) {
	c := m.Config.FinalSoftcap
	if c == 0 {
		return z, nil
	}
	s := mlx.DivScalar(z, c)
	z.Free()
	tanh = mlx.Tanh(s)
	s.Free()
	return mlx.MulScalar(tanh, c), tanh
}
