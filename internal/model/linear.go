package model

import "github.com/yai-dev/yai/mlx"

// Forward passes free their intermediates as soon as they are consumed: a Go handle on an
// intermediate would keep its buffer alive through evaluation and raise peak memory.

// Linear is a linear layer, plain or quantized; LoRA wraps one. Forward computes
// x @ Wᵀ (+ bias) exactly as mlx-lm's nn.Linear and nn.QuantizedLinear do.
type Linear interface {
	Forward(x *mlx.Array) *mlx.Array
	InFeatures() int
	OutFeatures() int
	// Arrays are the layer's tensors by their mlx-lm leaf names: "weight", "bias" for a
	// plain layer; "weight", "scales", "biases" and maybe "bias" for a quantized one.
	Arrays() map[string]*mlx.Array
}

// DenseLinear is a plain linear layer: Weight (out, in), optional Bias (out).
type DenseLinear struct {
	Weight *mlx.Array
	Bias   *mlx.Array
}

func (l *DenseLinear) Forward(x *mlx.Array) *mlx.Array {
	wt := mlx.Transpose(l.Weight)
	defer wt.Free()
	if l.Bias != nil {
		return mlx.Addmm(l.Bias, x, wt, 1, 1)
	}
	return mlx.Matmul(x, wt)
}

func (l *DenseLinear) InFeatures() int  { return l.Weight.Dim(1) }
func (l *DenseLinear) OutFeatures() int { return l.Weight.Dim(0) }

func (l *DenseLinear) Arrays() map[string]*mlx.Array {
	m := map[string]*mlx.Array{"weight": l.Weight}
	if l.Bias != nil {
		m["bias"] = l.Bias
	}
	return m
}

// QuantizedLinear is a linear layer whose weight is packed: Weight uint32
// (out, in·bits/32), Scales and Biases (out, in/group_size), optional Bias (out).
type QuantizedLinear struct {
	Weight, Scales, Biases *mlx.Array
	Bias                   *mlx.Array
	Quant                  mlx.Quantization
	// Dense multiplies through the dequantized weight (see packedProduct).
	Dense bool
}

func (l *QuantizedLinear) Forward(x *mlx.Array) *mlx.Array {
	y := packedProduct(x, l.Weight, l.Scales, l.Biases, l.Quant, true, l.Dense)
	if l.Bias == nil {
		return y
	}
	defer y.Free()
	return mlx.Add(y, l.Bias)
}

func (l *QuantizedLinear) InFeatures() int  { return l.Weight.Dim(1) * 32 / l.Quant.Bits }
func (l *QuantizedLinear) OutFeatures() int { return l.Weight.Dim(0) }

func (l *QuantizedLinear) Arrays() map[string]*mlx.Array {
	m := map[string]*mlx.Array{"weight": l.Weight, "scales": l.Scales}
	if l.Biases != nil {
		m["biases"] = l.Biases
	}
	if l.Bias != nil {
		m["bias"] = l.Bias
	}
	return m
}
