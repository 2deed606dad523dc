package mlxrun

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/yai-dev/yai/data"
	"github.com/yai-dev/yai/stages"
)

// step: one optimizer step (or one micro-batch of an accumulation) on the next batch. A step
// whose loss or gradient is not finite was not applied by the trainer; the recipe's
// on_nonfinite decides whether the run stops or skips the batch.
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
		report := stages.Report{Loss: res.Loss, Tokens: int64(res.Tokens), LR: res.LR, Traces: int64(res.Traces)}
		if !res.Finite {
			cause := nonFiniteCause(r.train, b, res.Tokens, r.dataCfg)
			if c.OnNonFinite == "skip" {
				s.Log.Warn("non-finite step skipped: "+cause, "step", s.Env.Step)
				s.Note("nonfinite", cause)
				report.Skipped, report.Tokens = true, 0
			} else {
				msg := fmt.Sprintf("step %d: non-finite loss or gradient, not applied: %s", s.Env.Step, cause)
				s.Log.Error(msg)
				s.Stop(stages.Stop{Code: stages.ExitNonFinite, Reason: msg, Checkpoint: true})
			}
		}
		s.Report(report)
		return nil
	}), nil
}

// nonFiniteCause names the likely cause of a non-finite step and the rows of the batch.
func nonFiniteCause(ds *data.Dataset, b data.Batch, tokens int, cfg *stages.DataConfig) string {
	rows := make([]string, len(b.Examples))
	for i, e := range b.Examples {
		rows[i] = fmt.Sprintf("%s:%d", filepath.Base(ds.Path), e+1)
	}
	where := strings.Join(rows, ", ")
	if tokens == 0 {
		why := "every target token is masked"
		if cfg != nil && cfg.MaskPrompt {
			why += fmt.Sprintf(" (the prompt fills all of max_seq_length %d)", cfg.MaxSeqLength)
		}
		return fmt.Sprintf("%s in %s; shorten the prompt, raise max_seq_length, or set on_nonfinite: skip", why, where)
	}
	return fmt.Sprintf("the loss or a gradient overflowed on %s; lower lr or set max_grad_norm", where)
}
