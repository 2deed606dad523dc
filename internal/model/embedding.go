package model

import "github.com/yai-dev/yai/mlx"

// Embedding is the token embedding table, plain or quantized. Tied models also use it as
// the output projection (AsLinear).
type Embedding struct {
	Weight *mlx.Array
	// Packed tables also have Scales and (affine) Biases.
	Packed         bool
	Scales, Biases *mlx.Array
	Quant          mlx.Quantization
	// Dense makes the packed table's products as a head go through its dequantized copy
	// (see packedProduct).
	Dense bool
}

// Lookup returns the rows of tokens, (B, L) → (B, L, H). A quantized table takes the packed
// rows first and dequantizes only those, as mlx-lm's QuantizedEmbedding does.
func (e *Embedding) Lookup(tokens *mlx.Array) *mlx.Array {
	if !e.Packed {
		return mlx.Take(e.Weight, tokens, 0)
	}
	w := mlx.Take(e.Weight, tokens, 0)
	s := mlx.Take(e.Scales, tokens, 0)
	var b *mlx.Array
	if e.Biases != nil {
		b = mlx.Take(e.Biases, tokens, 0)
	}
	defer mlx.Free(w, s, b)
	return mlx.Dequantize(w, s, b, e.Quant, -1)
}

// AsLinear projects hidden states onto the vocabulary with the table: h @ Wᵀ.
func (e *Embedding) AsLinear(h *mlx.Array) *mlx.Array {
	if e.Packed {
		return packedProduct(h, e.Weight, e.Scales, e.Biases, e.Quant, true, e.Dense)
	}
	wt := mlx.Transpose(e.Weight)
	defer wt.Free()
	return mlx.Matmul(h, wt)
}

// Arrays are the table's tensors by leaf name.
func (e *Embedding) Arrays() map[string]*mlx.Array {
	m := map[string]*mlx.Array{"weight": e.Weight}
	if e.Scales != nil {
		m["scales"] = e.Scales
	}
	if e.Biases != nil {
		m["biases"] = e.Biases
	}
	return m
}

// OutputDtype is the dtype of the hidden states Lookup returns: the scales' for a packed
// table, the weight's otherwise.
func (e *Embedding) OutputDtype() mlx.Dtype {
	if e.Packed {
		return e.Scales.Dtype()
	}
	return e.Weight.Dtype()
}
