package model

import "github.com/yai-dev/yai/mlx"

// MLP is the SwiGLU feed-forward block: down(silu(gate(x)) · up(x)).
type MLP struct {
	Gate, Up, Down Linear
}

func (m *MLP) Forward(x *mlx.Array) *mlx.Array {
	g := m.Gate.Forward(x)
	u := m.Up.Forward(x)
	h := swiglu(g, u)
	mlx.Free(g, u)
	defer h.Free()
	return m.Down.Forward(h)
}

// swiglu is silu(gate) · x compiled shapeless, as mlx-lm compiles it: one fused kernel
// instead of three operations, the same arithmetic. Like mlx-lm's module-level function it
// is made once and kept for the process (one compiled graph); only the MLX thread touches it.
func swiglu(gate, x *mlx.Array) *mlx.Array {
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

var swigluFn *mlx.Closure
