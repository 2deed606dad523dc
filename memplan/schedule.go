package memplan

import (
	"fmt"
	"sort"

	"github.com/yai-dev/yai/modeldir"
)

// Schedule is how a step is computed, never what it computes. MicroBatches splits each batch
// into that many parts whose token-weighted gradients add up to the whole batch's gradient,
// so the update is the same with a fraction of the activation memory (with dropout the masks
// are drawn per part; with the prefix cache in use the batch stays whole). GradCheckpoint
// recomputes the adapted blocks in the backward pass.
type Schedule struct {
	MicroBatches   int
	GradCheckpoint bool
}

// Schedules lists the ways to compute a step of workload w, cheapest first: the batch whole
// or split into up to maxMicro micro-batches (0: one row each), with checkpointing as the
// recipe has it or on. Splitting costs little (the same arithmetic in smaller pieces); turning
// checkpointing on recomputes the adapted blocks, about a third more work.
func Schedules(w Workload, maxMicro int) []Schedule {
	if maxMicro <= 0 || maxMicro > w.BatchSize {
		maxMicro = max(1, w.BatchSize)
	}
	var out []Schedule
	for _, ckpt := range []bool{w.GradCheckpoint, true} {
		if ckpt && w.GradCheckpoint && len(out) > 0 {
			break // the recipe already checkpoints: no second pass
		}
		seen := map[int]bool{}
		for k := 1; k <= maxMicro; k++ {
			rows := (w.BatchSize + k - 1) / k
			parts := (w.BatchSize + rows - 1) / rows // more parts than this change nothing
			if !seen[parts] {
				seen[parts] = true
				out = append(out, Schedule{MicroBatches: parts, GradCheckpoint: ckpt})
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return ScheduleCost(out[i]) < ScheduleCost(out[j]) })
	return out
}

// ScheduleCost is a schedule's compute relative to the whole batch without checkpointing.
func ScheduleCost(s Schedule) float64 {
	c := 1 + 0.02*float64(s.MicroBatches-1)
	if s.GradCheckpoint {
		c += 0.35
	}
	return c
}

// EstimateSchedule is the estimate of a step of w computed with schedule s, set up as d
// decided (device, compute dtype, products): each part holds ceil(batch/parts) rows, and a
// split step keeps one more gradient-sized sum. The governor calls it with a batch's real
// shape.
func (d Decision) EstimateSchedule(info *modeldir.Info, w Workload, s Schedule) Budget {
	parts := max(1, s.MicroBatches)
	w.BatchSize = (w.BatchSize + parts - 1) / parts
	w.GradCheckpoint = s.GradCheckpoint
	b := d.estimate(info, w)
	if parts > 1 {
		b.Gradients += b.LoRA
	}
	return b
}

// EstimateMargin is the share of the limit a planned schedule keeps free for the estimate's
// own error: within ±10% at the default loss chunk (stages/mlxbackend/budget_test.go), up to 17% off
// with many small chunks, whose overlap depends on how far MLX runs ahead.
const EstimateMargin = 0.15

// fitSchedule is the cheapest schedule whose estimated peak stays under limit with the
// estimate's own error to spare; false when none does.
func (d Decision) fitSchedule(info *modeldir.Info, w Workload, limit int64) (Schedule, Budget, bool) {
	for _, s := range Schedules(w, 0) {
		b := d.EstimateSchedule(info, w, s)
		if float64(b.Peak()) <= (1-EstimateMargin)*float64(limit) {
			return s, b, true
		}
	}
	return Schedule{}, Budget{}, false
}

// DescribeSchedule is a schedule in words.
func DescribeSchedule(s Schedule, batch int) string {
	out := "the whole batch"
	if s.MicroBatches > 1 {
		rows := (batch + s.MicroBatches - 1) / s.MicroBatches
		out = fmt.Sprintf("%d micro-batches of up to %d rows", s.MicroBatches, rows)
	}
	if s.GradCheckpoint {
		out += ", gradient checkpointing on"
	}
	return out
}
