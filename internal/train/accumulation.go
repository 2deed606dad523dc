package train

import (
	"slices"

	"github.com/yai-dev/yai/mlx"
)

// A batch split into micro-batches: each part runs and is evaluated on its own, the parts
// sum their token-weighted losses and gradients, and one finishing function turns the sums
// into the whole batch's step. Accumulation over steps (Options.GradAccumulation) carries
// the gradient sum between steps through the step function's inputs.

// microFunc is one part of a split batch: [params…, key?, batch arrays…] → [loss × tokens,
// tokens, gradients of loss × tokens…]. Summed over the parts and divided by the total token
// count, these are exactly the whole batch's loss and gradients.
func (t *Trainer) microFunc(chunk int) mlx.Func {
	return func(in []*mlx.Array) []*mlx.Array {
		np := 2 * len(t.adapters.Layers)
		var key *mlx.Array
		batch := in[np:]
		if t.adapters.HasDropout() {
			key, batch = batch[0], batch[1:]
		}
		loss, ntoks, grads, _ := t.gradients(in[:np], key, batch, nil, prefixNone, chunk)
		n := mlx.AsType(ntoks, loss.Dtype())
		out := []*mlx.Array{mlx.Multiply(loss, n), ntoks}
		for _, g := range grads {
			out = append(out, mlx.Multiply(g, mlx.AsType(n, g.Dtype())))
		}
		return out
	}
}

// finishFunc completes a split step: its inputs are the step layout's params, state,
// accumulation, learning rate and step count, then the summed parts [loss sum, tokens,
// gradient sums…]; its outputs are stepFunc's.
func (t *Trainer) finishFunc(update bool) mlx.Func {
	return func(in []*mlx.Array) []*mlx.Array {
		l := t.finishLayout(update)
		sums := in[l.batch:]
		n := sums[1]
		loss := mlx.Divide(sums[0], mlx.AsType(n, sums[0].Dtype()))
		grads := make([]*mlx.Array, len(sums)-2)
		for i, g := range sums[2:] {
			grads[i] = mlx.Divide(g, mlx.AsType(n, g.Dtype()))
		}
		return t.finish(update, l, in, loss, n, grads)
	}
}

// finishLayout is the step layout without the key; the sums start where the batch would.
func (t *Trainer) finishLayout(update bool) layout {
	l := t.layout(update)
	if l.key >= 0 {
		l.batch, l.key = l.key, -1
	}
	return l
}

// splitSums runs the parts of a split batch one after the other, each evaluated and freed
// before the next so that only one part's activations are ever alive, and returns the sums
// [loss × tokens, tokens, gradients of loss × tokens…] over the parts.
func (t *Trainer) splitSums(params []*mlx.Array, key *mlx.Array, parts []Batch) []*mlx.Array {
	var keys []*mlx.Array
	if key != nil {
		all := mlx.RandomSplit(key, max(len(parts), 2))
		for i := range parts {
			keys = append(keys, mlx.Squeeze(mlx.SliceAxis(all, 0, i, i+1), 0))
		}
	}
	micro := t.closure("micro", prefixNone)
	var sums []*mlx.Array
	for i, p := range parts {
		inner := mlx.NewScope()
		in := slices.Clone(params)
		if keys != nil {
			in = append(in, keys[i])
		}
		out := micro(append(in, p.arrays(t.opts.LossChunk)...))
		if sums != nil {
			for j := range out {
				out[j] = mlx.Add(sums[j], out[j])
			}
		}
		mlx.Eval(out...)
		inner.Keep(out...)
		inner.Close()
		mlx.Free(sums...)
		sums = out
	}
	return sums
}
