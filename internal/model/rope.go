package model

import (
	"math"

	"github.com/yai-dev/yai/mlx"
)

// newRoPE builds the rotary embedding mlx-lm's initialize_rope builds for this config. Llama-3
// scaling precomputes the frequencies once; the returned array (nil otherwise) is owned by
// the model.
func newRoPE(c *Config) (mlx.RoPE, *mlx.Array) {
	r := mlx.RoPE{Dims: c.HeadDim, Traditional: c.RopeTraditional, Base: float32(c.RopeTheta), Scale: 1}
	switch c.RopeScaling.Kind() {
	case "linear":
		r.Scale = float32(1 / c.RopeScaling.Factor)
	case "llama3":
		r.Freqs = llama3Freqs(c.HeadDim, c.RopeTheta, c.RopeScaling)
		r.Base = 0
	}
	return r, r.Freqs
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
