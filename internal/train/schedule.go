package train

import "github.com/yai-dev/yai/memplan"

// How steps are computed (micro-batches, checkpointing, loss chunk): changing it changes
// memory and time, never the result.

// SetSchedule changes how the following steps are computed; their results stay the same.
func (t *Trainer) SetSchedule(s memplan.Schedule) {
	s.MicroBatches = max(1, s.MicroBatches)
	t.sched = s
}

// Schedule is how steps are computed now.
func (t *Trainer) Schedule() memplan.Schedule { return t.sched }

// SetLossChunk changes the number of loss positions whose logits exist at once (0: all of
// them) for the steps that follow. Each distinct value is compiled once and kept, so moving
// back and forth between values does not recompile.
func (t *Trainer) SetLossChunk(n int) { t.opts.LossChunk = max(0, n) }

// LossChunk is the current loss chunk (see Options.LossChunk).
func (t *Trainer) LossChunk() int { return t.opts.LossChunk }
