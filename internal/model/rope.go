package model

import (
	"fmt"
	"math"

	"github.com/yai-dev/yai/mlx"
	"github.com/yai-dev/yai/modeldir"
)

// RoPE is a layer's rotary embedding: mlx's fast RoPE, after multiplying the rotated
// features by InputScale when it is set (SuScaledRoPE's mscale).
type RoPE struct {
	mlx.RoPE
	InputScale float64
}

// Apply rotates x (…, seq, head_dim) starting at position offset.
func (r RoPE) Apply(x *mlx.Array, offset int) *mlx.Array {
	s := r.scaled(x)
	if s != x {
		defer s.Free()
	}
	return r.RoPE.Apply(s, offset)
}

// ApplyAt is Apply with the offset held in an array (one per batch row, or a scalar).
func (r RoPE) ApplyAt(x, offset *mlx.Array) *mlx.Array {
	s := r.scaled(x)
	if s != x {
		defer s.Free()
	}
	return r.RoPE.ApplyAt(s, offset)
}

// scaled is SuScaledRoPE's x.at[..., :dims].multiply(scale): the first Dims features times
// the scale in x's dtype, the others as they are (the same values as mlx's scatter_prod).
// It returns x itself when there is no scale.
func (r RoPE) scaled(x *mlx.Array) *mlx.Array {
	if r.InputScale == 0 {
		return x
	}
	last := x.Ndim() - 1
	head := mlx.SliceAxis(x, last, 0, r.Dims)
	s := mlx.Scalar(r.InputScale, x.Dtype())
	prod := mlx.Multiply(head, s)
	mlx.Free(head, s)
	defer prod.Free()
	start, stop := make([]int, x.Ndim()), x.Shape()
	stop[last] = r.Dims
	return mlx.SliceUpdate(x, prod, start, stop, nil)
}

// rope returns the rotary embedding mlx-lm builds for spec, one per distinct spec: layers
// that share settings share it, and its precomputed frequencies, which the model owns.
func (m *Model) rope(spec modeldir.Rope) RoPE {
	for i, s := range m.ropeSpecs {
		if s == spec {
			return m.ropes[i]
		}
	}
	r := newRoPE(spec)
	m.ropeSpecs, m.ropes = append(m.ropeSpecs, spec), append(m.ropes, r)
	return r
}

// newRoPE builds the rotary embedding of spec; its Freqs, when set, belong to the caller.
// modeldir accepts only the kinds built here (TestNewRoPEBuildsEveryKind).
func newRoPE(spec modeldir.Rope) RoPE {
	r := RoPE{RoPE: mlx.RoPE{Dims: spec.Dims, Traditional: spec.Traditional, Base: float32(spec.Base), Scale: 1}}
	switch k := spec.Scaling.Kind(); k {
	case "default":
	case "linear":
		r.Scale = float32(1 / spec.Scaling.Factor)
	case "llama3":
		r.Freqs = llama3Freqs(spec.Dims, spec.Base, spec.Scaling)
		r.Base = 0
	case "su", "longrope":
		r.Freqs = suScaledFreqs(spec.Dims, spec.Base, spec.Scaling.LongFactor)
		r.Base, r.Traditional = 0, false
		r.InputScale = suScale(spec.MaxPositions, spec.OriginalMaxPositions)
	default:
		panic(fmt.Sprintf("model: no rotary embedding for rope_scaling type %q", k))
	}
	return r
}

// suScale is SuScaledRoPE's _scale without a long_mscale (phi3.py passes none): 1 when the
// context is not extended, else √(1 + ln(factor) / ln(original)). Zero stands for 1.
func suScale(maxPositions, original int) float64 {
	factor := float64(maxPositions) / float64(original)
	if factor <= 1 {
		return 0
	}
	return math.Sqrt(1 + math.Log(factor)/math.Log(float64(original)))
}

// suScaledFreqs follows SuScaledRoPE in float32: long_factor · base^(arange(0, dims, 2) /
// dims). mlx-lm always uses the long factors, whatever the sequence length.
func suScaledFreqs(dims int, base float64, long modeldir.Factors) *mlx.Array {
	var out *mlx.Array
	mlx.Do(func() error {
		scope := mlx.NewScope()
		defer scope.Close()
		exponents := mlx.DivScalar(mlx.Arange(0, float64(dims), 2, mlx.Float32), float64(dims))
		freqs := mlx.Power(mlx.Scalar(base, mlx.Float32), exponents)
		factors := make([]float32, len(long))
		for i, f := range long {
			factors[i] = float32(f)
		}
		out = mlx.Multiply(mlx.FromSlice(factors, len(factors)), freqs)
		mlx.Eval(out)
		mlx.Detach(out)
		return nil
	})
	return out
}

// llama3Freqs follows rope_utils.Llama3RoPE op for op, in float32, so the frequencies are
// bit-identical to mlx-lm's.
func llama3Freqs(dims int, base float64, s *RopeScaling) *mlx.Array {
	var out *mlx.Array
	mlx.Do(func() error {
		scope := mlx.NewScope()
		defer scope.Close()
		factor := s.Factor
		low, high := s.LowFreqFactor, s.HighFreqFactor
		if low == 0 {
			low = 1
		}
		if high == 0 {
			high = 4
		}
		oldContext := float64(s.OriginalMaxPositionEmbeddings)
		if oldContext == 0 {
			oldContext = 8192
		}
		lowWavelen := oldContext / low
		highWavelen := oldContext / high

		exponents := mlx.DivScalar(mlx.Arange(0, float64(dims), 2, mlx.Float32), float64(dims))
		freqs := mlx.Power(mlx.Scalar(base, mlx.Float32), exponents)
		wavelens := mlx.MulScalar(freqs, 2*math.Pi)

		freqs = mlx.Where(gtScalar(wavelens, lowWavelen), mlx.MulScalar(freqs, factor), freqs)
		medium := mlx.LogicalAnd(gtScalar(wavelens, highWavelen), ltScalar(wavelens, lowWavelen))
		// (old_context_len / wavelens - low_freq_factor) / (high_freq_factor - low_freq_factor)
		smooth := mlx.DivScalar(mlx.SubScalar(scalarDiv(oldContext, wavelens), low), high-low)
		// freqs / ((1 - smooth) / factor + smooth)
		denom := mlx.Add(mlx.DivScalar(scalarSub(1, smooth), factor), smooth)
		smoothFreqs := mlx.Divide(freqs, denom)
		out = mlx.Where(medium, smoothFreqs, freqs)
		mlx.Eval(out)
		mlx.Detach(out)
		return nil
	})
	return out
}

func gtScalar(a *mlx.Array, v float64) *mlx.Array {
	return mlx.Greater(a, mlx.Scalar(v, a.Dtype()))
}

func ltScalar(a *mlx.Array, v float64) *mlx.Array {
	return mlx.Less(a, mlx.Scalar(v, a.Dtype()))
}

// scalarDiv is v / a with v taking a's dtype (a Python float on the left of an mx.array).
func scalarDiv(v float64, a *mlx.Array) *mlx.Array {
	return mlx.Divide(mlx.Scalar(v, a.Dtype()), a)
}

func scalarSub(v float64, a *mlx.Array) *mlx.Array {
	return mlx.Subtract(mlx.Scalar(v, a.Dtype()), a)
}
