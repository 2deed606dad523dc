package mlxbackend

import (
	"context"
	"errors"
	"math"

	"github.com/yai-dev/yai/internal/data"
	"github.com/yai-dev/yai/internal/train"
	"github.com/yai-dev/yai/stages"
	"github.com/yai-dev/yai/stages/stage"
)

// eval: mean validation loss over the first batches of the validation set, as mlx-lm's
// evaluate does; with split: test, the loss and perplexity on the test split (test.jsonl, or
// what data.FindSplit finds in its place).
func buildEval(c *stages.EvalConfig, r *Training) (stage.Stage, error) {
	var test *data.Dataset // read on the first test pass
	return stage.StageFunc(func(ctx context.Context, s *stage.Session) error {
		if r.valid == nil || r.dataCfg == nil {
			return errors.New("no validation data: a data stage must run first")
		}
		split := r.valid
		if c.Split == "test" {
			if test == nil {
				path, err := data.FindSplit(r.info.DataDir, "test", "")
				if err != nil {
					return err
				}
				if test, err = data.LoadFile(path, r.tok, r.dataOpts); err != nil {
					return err
				}
			}
			split = test
		}
		t, err := r.Trainer()
		if err != nil {
			return err
		}
		it, err := data.NewBatches(split, data.BatchConfig{
			BatchSize:    r.dataCfg.BatchSize,
			MaxSeqLength: r.dataCfg.MaxSeqLength,
			Random:       r.random,
			KeepOrder:    !r.dataCfg.Shuffle,
			Logger:       s.Log,
		})
		if err != nil {
			return err
		}
		defer it.Close()
		var batches []train.Batch
		for len(batches) < c.Batches {
			b, ok := it.Next()
			if !ok {
				break
			}
			batches = append(batches, toTrainBatch(b))
		}
		if len(batches) == 0 {
			return errors.New(split.Path + ": too few rows for one batch")
		}
		loss, err := t.Evaluate(batches)
		if err != nil {
			return err
		}
		if c.Split == "test" {
			s.Log.Info("test", "test_loss", loss, "test_ppl", math.Exp(loss), "batches", len(batches))
			s.Note("test_loss", loss)
			s.Note("test_ppl", math.Exp(loss))
			return nil
		}
		s.Log.Info("validation", "val_loss", loss, "batches", len(batches))
		s.ReportEval(loss)
		return nil
	}), nil
}
