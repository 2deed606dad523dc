package mlxrun

import (
	"context"
	"errors"

	"github.com/yai-dev/yai/stages"
)

// step: one optimizer step (or one micro-batch of an accumulation) on the next batch.
func buildStep(c *stages.StepConfig, r *Training) (stages.Stage, error) {
	if r.step != nil {
		return nil, errors.New("a recipe has one step stage")
	}
	r.step = c
	return stages.StageFunc(func(ctx context.Context, s *stages.Session) error {
		if r.batches == nil {
			return errors.New("no training batches: a data stage must run first")
		}
		t, err := r.Trainer()
		if err != nil {
			return err
		}
		b, ok := r.batches.Next()
		if !ok {
			return errors.New("training data ran out")
		}
		res, err := t.Step(toTrainBatch(b))
		if err != nil {
			return err
		}
		s.Report(stages.Report{Loss: res.Loss, Tokens: int64(res.Tokens), LR: res.LR})
		return nil
	}), nil
}
