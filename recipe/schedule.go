package recipe

import (
	"fmt"
	"sort"

	"github.com/yai-dev/yai/memplan"
	"github.com/yai-dev/yai/modeldir"
	"github.com/yai-dev/yai/stages"
)

// Schedules lists the ways to compute a step of workload w, cheapest first: the batch whole
// or split into up to maxMicro micro-batches (0: one row each), with checkpointing as the
// recipe has it or on. Splitting costs little (the same arithmetic in smaller pieces); turning
// checkpointing on recomputes the adapted blocks, about a third more work.
func Schedules(w stages.Workload, maxMicro int) []memplan.Schedule {
	if maxMicro <= 0 || maxMicro > w.BatchSize {
		maxMicro = max(1, w.BatchSize)
	}
	var out []memplan.Schedule
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
				out = append(out, memplan.Schedule{MicroBatches: parts, GradCheckpoint: ckpt})
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return ScheduleCost(out[i]) < ScheduleCost(out[j]) })
	return out
}

// ScheduleCost is a schedule's compute relative to the whole batch without checkpointing.
func ScheduleCost(s memplan.Schedule) float64 {
	c := 1 + 0.02*float64(s.MicroBatches-1)
	if s.GradCheckpoint {
		c += 0.35
	}
	return c
}

// EstimateSchedule is the estimate of a step of w computed with schedule s: each part holds
// ceil(batch/parts) rows, and a split step keeps one more gradient-sized sum.
func EstimateSchedule(info *modeldir.Info, w stages.Workload, s memplan.Schedule, cacheLimit int64) Budget {
	parts := max(1, s.MicroBatches)
	w.BatchSize = (w.BatchSize + parts - 1) / parts
	w.GradCheckpoint = s.GradCheckpoint
	b := Estimate(info, w, cacheLimit)
	if parts > 1 {
		b.Gradients += b.LoRA
	}
	return b
}

// estimateMargin is the share of the limit a planned schedule keeps free for the estimate's
// own error: within ±10% at the default loss chunk (stages/mlxbackend/budget_test.go), up to 17% off
// with many small chunks, whose overlap depends on how far MLX runs ahead.
const estimateMargin = 0.15

// fitSchedule is the cheapest schedule whose estimated peak stays under limit with the
// estimate's own error to spare; false when none does.
func fitSchedule(info *modeldir.Info, w stages.Workload, limit, cacheLimit int64) (memplan.Schedule, Budget, bool) {
	for _, s := range Schedules(w, 0) {
		b := EstimateSchedule(info, w, s, cacheLimit)
		if float64(b.Peak()) <= (1-estimateMargin)*float64(limit) {
			return s, b, true
		}
	}
	return memplan.Schedule{}, Budget{}, false
}

// DescribeSchedule is a schedule in words.
func DescribeSchedule(s memplan.Schedule, batch int) string {
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
