// Package evaluate measures a model's loss and perplexity on a dataset split, as mlx-lm's
// evaluate does for `mlx_lm.lora --test`: the token-weighted mean cross-entropy over
// padded batches, perplexity = exp(loss).
package evaluate

import (
	"errors"
	"fmt"
	"math"

	"github.com/yai-dev/yai/internal/data"
	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/train"
	"github.com/yai-dev/yai/mlx"
)

// Options mirror mlx_lm.lora's test arguments.
type Options struct {
	BatchSize    int // rows per batch (mlx-lm's default 4)
	MaxSeqLength int // longer rows are truncated; 0 means 2048
	// Batches caps the batches evaluated; 0 or negative means all (mlx-lm's test_batches -1).
	Batches int
	// Seed seeds the batch order, numpy's global seed in mlx_lm.lora (its --seed, default 0).
	Seed uint32
}

// Result is one evaluation.
type Result struct {
	Path       string // the dataset file
	Loss       float64
	Perplexity float64
	Tokens     int // tokens the loss counted
	Batches    int
}

// Dataset evaluates m (with whatever adapters are attached) on ds.
func Dataset(m *model.Model, ds *data.Dataset, opts Options) (Result, error) {
	res := Result{}
	if ds == nil {
		return res, errors.New("evaluate: no dataset")
	}
	res.Path = ds.Path
	if opts.BatchSize <= 0 {
		opts.BatchSize = 4
	}
	it, err := data.NewBatches(ds, data.BatchConfig{
		BatchSize:    opts.BatchSize,
		MaxSeqLength: opts.MaxSeqLength,
		Random:       data.NewNumpyRandom(opts.Seed),
	})
	if err != nil {
		return res, err
	}
	defer it.Close()
	err = mlx.Do(func() error {
		s := mlx.NewScope()
		defer s.Close()
		total := mlx.Scalar(0, mlx.Float32)
		count := mlx.Scalar(0, mlx.Int32)
		for opts.Batches <= 0 || res.Batches < opts.Batches {
			b, ok := it.Next()
			if !ok {
				break
			}
			for i, tok := range b.Tokens {
				if tok < 0 || int(tok) >= m.Config.VocabSize {
					return fmt.Errorf("%s: token id %d (batch row %d) is outside the model's vocabulary of %d", ds.Path, tok, i/b.Width, m.Config.VocabSize)
				}
			}
			inner := mlx.NewScope()
			loss, ntoks := batchLoss(m, b)
			newTotal := mlx.Add(total, mlx.Multiply(loss, ntoks))
			newCount := mlx.Add(count, ntoks)
			mlx.Eval(newTotal, newCount)
			inner.Keep(newTotal, newCount)
			inner.Close()
			mlx.Free(total, count)
			total, count = newTotal, newCount
			res.Batches++
		}
		if res.Batches == 0 {
			return fmt.Errorf("%s: no batch to evaluate", ds.Path)
		}
		res.Tokens = int(count.Item())
		res.Loss = mlx.Divide(total, count).Item()
		return nil
	})
	res.Perplexity = math.Exp(res.Loss)
	return res, err
}

// batchLoss is mlx-lm's default_loss on one padded batch: inputs b[:, :-1], targets b[:, 1:].
func batchLoss(m *model.Model, b data.Batch) (loss, ntoks *mlx.Array) {
	tokens := mlx.FromSlice(b.Tokens, b.Size, b.Width)
	if b.Spans != nil {
		return spansLoss(m, tokens, b)
	}
	ol := make([]int32, 2*b.Size)
	for i := range b.Size {
		ol[2*i], ol[2*i+1] = b.Offsets[i], b.Lengths[i]
	}
	lengths := mlx.FromSlice(ol, b.Size, 2)
	inputs := mlx.SliceAxis(tokens, 1, 0, b.Width-1)
	targets := mlx.SliceAxis(tokens, 1, 1, b.Width)
	logits := m.Forward(inputs)
	return train.Loss(logits, targets, lengths)
}

// spansLoss is batchLoss counting the targets in each row's spans (data.TrainAssistant).
func spansLoss(m *model.Model, tokens *mlx.Array, b data.Batch) (loss, ntoks *mlx.Array) {
	cols := b.Width - 1
	counted := make([]float32, b.Size*cols)
	for r, spans := range b.Spans {
		for _, s := range spans {
			for k := max(s.Start, 1); k < min(s.End, int(b.Lengths[r]), cols+1); k++ {
				counted[r*cols+k-1] = 1
			}
		}
	}
	mask := mlx.FromSlice(counted, b.Size, cols)
	defer mask.Free()
	inputs := mlx.SliceAxis(tokens, 1, 0, cols)
	targets := mlx.SliceAxis(tokens, 1, 1, b.Width)
	logits := m.Forward(inputs)
	return train.MaskedLoss(logits, targets, mask)
}
