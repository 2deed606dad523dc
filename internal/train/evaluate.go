package train

import (
	"fmt"
	"slices"

	"github.com/yai-dev/yai/mlx"
)

// evalFunc is the loss without gradients and without dropout: inputs are the params, the
// tokens, the loss positions and their weights, and with prefixUse the frozen prefix last.
func (t *Trainer) evalFunc(chunk int, prefix prefixMode) mlx.Func {
	return func(in []*mlx.Array) []*mlx.Array {
		np := 2 * len(t.adapters.Layers)
		var h *mlx.Array
		if prefix == prefixUse { // the frozen prefix, evaluated apart, comes last
			h, in = in[len(in)-1], in[:len(in)-1]
		}
		bi := unpackBatch(in[np:])
		if h == nil {
			h = t.frozen(bi)
		}
		return t.forwardLoss(append(append(slices.Clone(in[:np]), h), bi.lossArgs()...), chunk, false)
	}
}

// Evaluate is mlx-lm's evaluate: the token-weighted mean loss over batches, without
// dropout or gradients.
func (t *Trainer) Evaluate(batches []Batch) (float64, error) {
	var avg float64
	err := mlx.Do(func() error {
		scope := mlx.NewScope()
		defer scope.Close()
		total := mlx.Scalar(0, mlx.Float32)
		count := mlx.Scalar(0, mlx.Int32)
		separate := t.opts.SeparatePrefix && t.firstBlock > 0 // see Options.SeparatePrefix
		fn := t.closure("eval", prefixNone)
		if separate {
			fn = t.closure("eval", prefixUse)
		}
		for _, b := range batches {
			if err := b.validate(); err != nil {
				return err
			}
			inner := mlx.NewScope()
			arrays := b.arrays(t.opts.LossChunk)
			in := append(slices.Clone(t.adapters.Params()), arrays...)
			if separate {
				h := t.closure("prefix", prefixNone)(arrays)[0]
				mlx.Eval(h)
				in = append(in, h)
			}
			out := fn(in)
			weighted := mlx.Multiply(out[0], out[1])
			newTotal := mlx.Add(total, weighted)
			newCount := mlx.Add(count, out[1])
			mlx.Eval(newTotal, newCount)
			inner.Keep(newTotal, newCount)
			inner.Close()
			mlx.Free(total, count)
			total, count = newTotal, newCount
		}
		if len(batches) == 0 {
			return fmt.Errorf("train: no batches to evaluate")
		}
		mean := mlx.Divide(total, count)
		avg = mean.Item()
		return nil
	})
	return avg, err
}
