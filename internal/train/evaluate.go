package train

import (
	"fmt"
	"slices"

	"github.com/yai-dev/yai/mlx"
)

// evalFunc is the loss without gradients and without dropout: inputs are the params, the
// tokens, the loss positions and their weights.
func (t *Trainer) evalFunc(chunk int) mlx.Func {
	return func(in []*mlx.Array) []*mlx.Array {
		np := 2 * len(t.adapters.Layers)
		bi := unpackBatch(in[np:])
		h := t.frozen(bi)
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
		fn := t.closure("eval", prefixNone)
		for _, b := range batches {
			if err := b.validate(); err != nil {
				return err
			}
			inner := mlx.NewScope()
			out := fn(append(slices.Clone(t.adapters.Params()), b.arrays(t.opts.LossChunk)...))
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
