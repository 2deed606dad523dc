package model

import (
	"math"

	"github.com/yai-dev/yai/mlx"
)

// MLP is the gated feed-forward block: down(act(gate(x)) · up(x)), with act silu (SwiGLU)
// or gelu_approx (GeGLU). A family that fuses gate and up (Phi-3) sets GateUp instead: its
// output's first half is the gate, the second the up projection.
type MLP struct {
	Gate, Up, Down Linear
	GateUp         Linear
	Activation     string // "silu" or "gelu_approx"
}

func (m *MLP) Forward(x *mlx.Array) *mlx.Array {
	var g, u *mlx.Array
	if m.GateUp != nil {
		gu := m.GateUp.Forward(x)
		parts := mlx.Split(gu, 2, -1)
		gu.Free()
		g, u = parts[0], parts[1]
	} else {
		g, u = m.Gate.Forward(x), m.Up.Forward(x)
	}
	h := gated(m.Activation, g, u)
	mlx.Free(g, u)
	defer h.Free()
	return m.Down.Forward(h)
}

// gated is act(gate) · x, each activation compiled shapeless as mlx-lm compiles it: one
// fused kernel instead of several operations, the same arithmetic. Like mlx-lm's module-level
// functions each is made once and kept for the process; only the MLX thread touches them.
func gated(activation string, gate, x *mlx.Array) *mlx.Array {
	if activation == "gelu_approx" {
		g := geluApprox(gate)
		defer g.Free()
		return mlx.Multiply(g, x)
	}
	if swigluFn == nil {
		swigluFn = mlx.Compile(func(in []*mlx.Array) []*mlx.Array {
			s := mlx.Sigmoid(in[0])
			silu := mlx.Multiply(in[0], s)
			s.Free()
			defer silu.Free()
			return []*mlx.Array{mlx.Multiply(silu, in[1])}
		}, true)
	}
	return swigluFn.Call(gate, x)[0]
}

// geluApprox is mlx.nn.gelu_approx: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
func geluApprox(x *mlx.Array) *mlx.Array {
	if geluApproxFn == nil {
		geluApproxFn = mlx.Compile(func(in []*mlx.Array) []*mlx.Array {
			x := in[0]
			cube := mlx.PowScalar(x, 3)
			c := mlx.MulScalar(cube, 0.044715)
			cube.Free()
			inner := mlx.Add(x, c)
			c.Free()
			scaled := mlx.MulScalar(inner, math.Sqrt(2/math.Pi))
			inner.Free()
			t := mlx.Tanh(scaled)
			scaled.Free()
			one := mlx.AddScalar(t, 1)
			t.Free()
			half := mlx.MulScalar(x, 0.5)
			defer mlx.Free(one, half)
			return []*mlx.Array{mlx.Multiply(half, one)}
		}, true)
	}
	return geluApproxFn.Call(x)[0]
}

var swigluFn, geluApproxFn *mlx.Closure
