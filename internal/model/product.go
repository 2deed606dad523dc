package model

import "github.com/yai-dev/yai/mlx"

// DenseMinRows is the fewest rows a dequantized product is used for: below it (decoding,
// short prompts) the quantized kernels, which read the packed weight once, win.
const DenseMinRows = 32

// packedProduct is x @ Wᵀ (transpose) or x @ W for the packed W (wq, scales, biases). With
// dense set and at least DenseMinRows rows in x, W is dequantized to x's dtype and multiplied
// by the dense GEMM: on CUDA, MLX's quantized matmul runs at a third to a quarter of the
// GEMM's speed for hundreds of rows, and the dequantized copy lives only for the product (and,
// under a gradient, until the product's backward).
func packedProduct(x, wq, scales, biases *mlx.Array, q mlx.Quantization, transpose, dense bool) *mlx.Array {
	if !dense || x.Size()/x.Dim(-1) < DenseMinRows {
		return mlx.QuantizedMatmul(x, wq, scales, biases, transpose, q)
	}
	w := mlx.Dequantize(wq, scales, biases, q, x.Dtype())
	defer w.Free()
	if !transpose {
		return mlx.Matmul(x, w)
	}
	wt := mlx.Transpose(w)
	defer wt.Free()
	return mlx.Matmul(x, wt)
}

// SetDenseProducts makes the quantized projections of the first blocks blocks, and the
// quantized head where head is set, multiply through their dequantized weights for inputs of
// DenseMinRows rows or more; the others multiply through MLX's quantized kernels. Reloads
// keep the choice.
func (m *Model) SetDenseProducts(blocks int, head bool) {
	m.Embedding.Dense = head
	if l, ok := m.LMHead.(*QuantizedLinear); ok {
		l.Dense = head
	}
	for i, b := range m.Layers {
		dense := i < blocks
		for _, slot := range b.linears {
			l := *slot
			for w, ok := l.(Wrapper); ok; w, ok = l.(Wrapper) {
				l = w.Wrapped()
			}
			if q, ok := l.(*QuantizedLinear); ok {
				q.Dense = dense
			}
		}
	}
}

// Wrapper is a layer around another (a LoRA adapter around its base).
type Wrapper interface{ Wrapped() Linear }
