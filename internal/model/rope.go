package model

import (
	"math"

	"github.com/yai-dev/yai/mlx"
	"github.com/yai-dev/yai/modeldir"
)

// rope returns the rotary embedding mlx-lm's initialize_rope builds for spec, one per
// distinct spec: layers that share settings share it, and its precomputed frequencies
// (Llama-3 scaling), which the model owns.
func (m *Model) rope(spec modeldir.Rope) mlx.RoPE {
	for i, s := range m.ropeSpecs {
		if s.Dims == spec.Dims && s.Base == spec.Base && s.Traditional == spec.Traditional &&
			s.Scaling == spec.Scaling && s.MaxPositions == spec.MaxPositions {
			return m.ropes[i]
		}
	}
	r := newRoPE(spec)
	m.ropeSpecs, m.ropes = append(m.ropeSpecs, spec), append(m.ropes, r)
	return r
}

// newRoPE builds the rotary embedding of spec; its Freqs, when set, belong to the caller.
func newRoPE(spec modeldir.Rope) mlx.RoPE {
	r := mlx.RoPE{Dims: spec.Dims, Traditional: spec.Traditional, Base: float32(spec.Base), Scale: 1}
	switch spec.Scaling.Kind() {
	case "linear":
		r.Scale = float32(1 / spec.Scaling.Factor)
	case "llama3":
		r.Freqs = llama3Freqs(spec.Dims, spec.Base, spec.Scaling)
		r.Base = 0
	}
	return r
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
