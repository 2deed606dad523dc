package train

import (
	"math"

	"github.com/yai-dev/yai/mlx"
)

// A step whose loss or gradients are not finite is never applied (see finish).

// allFinite is a scalar that is true when no element of xs is NaN or infinite.
func allFinite(xs []*mlx.Array) *mlx.Array {
	var ok *mlx.Array
	for _, x := range xs {
		inf := mlx.Scalar(math.Inf(1), x.Dtype())
		f := mlx.All(mlx.Less(mlx.Abs(x), inf), false)
		if ok == nil {
			ok = f
		} else {
			ok = mlx.LogicalAnd(ok, f)
		}
	}
	return ok
}

// keepUnlessFinite replaces each next[i] by prev[i] unless finite holds.
func keepUnlessFinite(finite *mlx.Array, next, prev []*mlx.Array) {
	for i := range next {
		next[i] = mlx.Where(finite, next[i], prev[i])
	}
}
