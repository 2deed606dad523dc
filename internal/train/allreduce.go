package train

import "github.com/yai-dev/yai/mlx"

// AllSumOver is an Options.AllReduce that sums over the processes of g with one collective
// per step: the arrays are flattened into one float32 vector, summed with mlx.AllSum, and
// cut back into their shapes. LoRA gradients are small, so one message beats one per tensor.
func AllSumOver(g *mlx.Group) func(xs []*mlx.Array) []*mlx.Array {
	return func(xs []*mlx.Array) []*mlx.Array {
		flat := make([]*mlx.Array, len(xs))
		cuts := make([]int, 0, len(xs))
		n := 0
		for i, x := range xs {
			flat[i] = mlx.Reshape(mlx.AsType(x, mlx.Float32), -1)
			n += x.Size()
			cuts = append(cuts, n)
		}
		summed := mlx.AllSum(mlx.Concatenate(flat, 0), g)
		parts := mlx.SplitAt(summed, cuts[:len(cuts)-1], 0)
		out := make([]*mlx.Array, len(xs))
		for i, x := range xs {
			out[i] = mlx.AsType(mlx.Reshape(parts[i], x.Shape()...), x.Dtype())
		}
		return out
	}
}

// reduceAcross turns this process's mean gradients and loss into the token-weighted means
// over every process: sum over processes of (mean × tokens), over the summed tokens.
func (t *Trainer) reduceAcross(grads []*mlx.Array, loss, ntoks *mlx.Array) ([]*mlx.Array, *mlx.Array, *mlx.Array, *mlx.Array) {
	w := mlx.AsType(ntoks, mlx.Float32)
	xs := make([]*mlx.Array, 0, len(grads)+2)
	for _, g := range grads {
		xs = append(xs, mlx.Multiply(g, w))
	}
	xs = append(xs, mlx.Multiply(loss, w), w)
	sums := t.opts.AllReduce(xs)
	total := sums[len(sums)-1]
	out := make([]*mlx.Array, len(grads))
	for i := range grads {
		out[i] = mlx.Divide(sums[i], total)
	}
	mean := mlx.Divide(sums[len(grads)], total)
	// A sum holding a NaN or an infinity is one on every process, so all agree.
	return out, mean, mlx.AsType(total, ntoks.Dtype()), allFinite(append([]*mlx.Array{mean}, out...))
}
