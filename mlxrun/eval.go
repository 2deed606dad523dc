package mlxrun

import (
	"context"
	"errors"

	"github.com/yai-dev/yai/data"
	"github.com/yai-dev/yai/stages"
	"github.com/yai-dev/yai/train"
)

// eval: mean validation loss over the first batches of the validation set, as mlx-lm's
// evaluate does.
func buildEval(c *stages.EvalConfig, r *Training) (stages.Stage, error) {
	return stages.StageFunc(func(ctx context.Context, s *stages.Session) error {
		if r.valid == nil || r.dataCfg == nil {
			return errors.New("no validation data: a data stage must run first")
		}
		t, err := r.Trainer()
		if err != nil {
			return err
		}
		it, err := data.NewBatches(r.valid, data.BatchConfig{
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
			return errors.New(r.valid.Path + ": too few rows for one validation batch")
		}
		loss, err := t.Evaluate(batches)
		if err != nil {
			return err
		}
		s.Log.Info("validation", "val_loss", loss, "batches", len(batches))
		s.ReportEval(loss)
		return nil
	}), nil
}
