package mlxbackend

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/yai-dev/yai/internal/data"
	"github.com/yai-dev/yai/internal/train"
	"github.com/yai-dev/yai/memplan"
	"github.com/yai-dev/yai/mlx"
	"github.com/yai-dev/yai/stages"
	"github.com/yai-dev/yai/stages/stage"
)

// step: one optimizer step (or one micro-batch of an accumulation) on the next batch. A step
// whose loss or gradient is not finite was not applied by the trainer; the recipe's
// on_nonfinite decides whether the run stops or skips the batch.
func buildStep(c *stages.StepConfig, r *Training) (stage.Stage, error) {
	if r.step != nil {
		return nil, errors.New("a recipe has one step stage")
	}
	r.step = c
	return stage.StageFunc(func(ctx context.Context, s *stage.Session) error {
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
		b = rankSlice(b, r.info.Ranks) // this rank's rows of the global batch
		sched := t.Schedule()
		before := mlx.Memory().Active
		res, err := r.stepOnce(t, b)
		for err != nil && mlx.IsAllocationError(err) && !s.Strict {
			// The backend ran out of memory: the same step, computed with less, may fit.
			next, ok := smallerSchedule(sched, b.Size)
			if !ok {
				break
			}
			s.Log.Warn("step failed to allocate; retrying with a smaller schedule", "step", s.Figures.Step,
				"from", memplan.DescribeSchedule(sched, b.Size), "to", memplan.DescribeSchedule(next, b.Size), "err", err)
			s.Note("allocation_retry", memplan.DescribeSchedule(next, b.Size))
			t.SetSchedule(next)
			sched = next
			res, err = r.stepOnce(t, b)
		}
		if err != nil {
			return err
		}
		r.lastStep = stepMemory{ran: true, activeBefore: int64(before), peak: int64(mlx.Memory().Peak),
			schedule: sched, rows: b.Size, width: b.Width}
		report := stage.Report{Loss: res.Loss, Tokens: int64(res.Tokens), LR: res.LR,
			MicroBatches: sched.MicroBatches, Checkpointing: sched.GradCheckpoint, Traces: t.Traces()}
		if !res.Finite {
			cause := nonFiniteCause(r.train, b, res.Tokens, r.dataCfg)
			if c.OnNonFinite == "skip" {
				s.Log.Warn("non-finite step skipped: "+cause, "step", s.Figures.Step)
				s.Note("nonfinite", cause)
				report.Skipped, report.Tokens = true, 0
			} else {
				msg := fmt.Sprintf("step %d: non-finite loss or gradient, not applied: %s", s.Figures.Step, cause)
				s.Log.Error(msg)
				s.Stop(stage.Stop{Code: stage.ExitNonFinite, Reason: msg, Checkpoint: true})
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
		if cfg != nil && cfg.Masking() != "all" {
			why += fmt.Sprintf(" (train_on: %s; what it trains lies beyond max_seq_length %d, or the rows have none)", cfg.Masking(), cfg.MaxSeqLength)
		}
		return fmt.Sprintf("%s in %s; shorten the prompt, raise max_seq_length, or set on_nonfinite: skip", why, where)
	}
	return fmt.Sprintf("the loss or a gradient overflowed on %s; lower lr or set max_grad_norm", where)
}

// stepOnce runs the trainer's step, failed first as r.failStep says.
func (r *Training) stepOnce(t *train.Trainer, b data.Batch) (train.StepResult, error) {
	if r.failStep != nil {
		if err := r.failStep(t.Schedule()); err != nil {
			return train.StepResult{}, err
		}
	}
	return t.Step(toTrainBatch(b))
}

// smallerSchedule is the next schedule that needs less memory than s for a batch of rows:
// twice the parts until each holds one row, then gradient checkpointing on.
func smallerSchedule(s memplan.Schedule, rows int) (memplan.Schedule, bool) {
	if s.MicroBatches < rows {
		s.MicroBatches = min(rows, 2*max(1, s.MicroBatches))
		return s, true
	}
	if !s.GradCheckpoint {
		s.GradCheckpoint = true
		return s, true
	}
	return s, false
}
