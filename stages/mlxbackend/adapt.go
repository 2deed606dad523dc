package mlxbackend

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/yai-dev/yai/memplan"
	"github.com/yai-dev/yai/mlx"
	"github.com/yai-dev/yai/modeldir"
	"github.com/yai-dev/yai/stages"
	"github.com/yai-dev/yai/stages/stage"
)

// adapt: the governor. Before each step it predicts the step's peak for every schedule from
// the next batch's shape — the memory estimate's prediction, scaled by how far off it was on
// the steps measured so far — and applies the cheapest schedule predicted to stay under the
// limit. Every schedule computes the same update, so the run's losses do not depend on it.
// The estimate is the run's plan's: on its device, with its compute dtype and products.
func buildAdapt(c *stages.AdaptConfig, r *Training) (stage.Stage, error) {
	g := &governor{cfg: c, r: r, ratio: map[memplan.Schedule]float64{}}
	return stage.StageFunc(g.run), nil
}

type governor struct {
	cfg  *stages.AdaptConfig
	r    *Training
	info *modeldir.Info // the model's description, for the estimate

	ratio       map[memplan.Schedule]float64 // measured ÷ estimated step memory, per schedule
	calibrated  stepMemory                   // the step last used for calibration
	cheaperFits int                          // steps in a row a cheaper schedule would have fit
	cacheLimit  *uint64                      // MLX's cache limit before the governor bounded it
	baseline    memplan.Schedule             // the cheapest schedule: the recipe as written
	quiet       bool                         // --strict was reported
}

func (g *governor) run(ctx context.Context, s *stage.Session) error {
	if s.Strict {
		if !g.quiet {
			s.Log.Info("adapt: --strict runs the recipe as written; the schedule stays as it is")
			g.quiet = true
		}
		return nil
	}
	t, err := g.r.Trainer()
	if err != nil {
		return err
	}
	if g.info == nil {
		if g.info, err = modeldir.Inspect(g.r.info.ModelDir); err != nil {
			return err
		}
	}
	limit := int64(g.cfg.Limit)
	if limit == 0 {
		limit = s.Figures.Limit
	}
	if limit <= 0 {
		return errors.New("adapt needs a limit: set memory.limit or the stage's limit")
	}
	target := int64(float64(limit) * (1 - g.cfg.Margin))
	g.calibrate(limit)

	w := g.workload()
	if b, ok := g.r.batches.Peek(); ok {
		w.BatchSize, w.MaxSeqLength = b.Size, b.Width
	} // else the epoch ends here: assume the widest batch the data stage allows
	options := g.schedules(w)
	g.baseline = options[0]
	active := s.Figures.MLX.Active
	predict := func(sc memplan.Schedule) int64 {
		return active + int64(g.ratioFor(sc)*float64(g.excess(w, sc)))
	}
	current := t.Schedule()
	best, fits := options[len(options)-1], false
	for _, sc := range options {
		if predict(sc) <= target {
			best, fits = sc, true
			break
		}
	}
	if !fits { // nothing is predicted to fit: the schedule that needs the least memory
		for _, sc := range options {
			if predict(sc) < predict(best) {
				best = sc
			}
		}
	}
	next := current
	switch {
	case predict(current) > target || !slices.Contains(options, current):
		next, g.cheaperFits = best, 0
	case memplan.ScheduleCost(best) < memplan.ScheduleCost(current):
		if g.cheaperFits++; g.cheaperFits >= g.cfg.RelaxAfter {
			next, g.cheaperFits = best, 0
		}
	default:
		g.cheaperFits = 0
	}
	if next != current {
		t.SetSchedule(next)
		msg := fmt.Sprintf("%s → %s: predicted peak %s → %s (limit %s, margin %.0f%%)",
			memplan.DescribeSchedule(current, w.BatchSize), memplan.DescribeSchedule(next, w.BatchSize),
			stages.Bytes(predict(current)), stages.Bytes(predict(next)), stages.Bytes(limit), 100*g.cfg.Margin)
		if !fits {
			msg += "; no schedule is predicted to fit"
		}
		s.Note("adapt", msg)
		s.Note("adapt_peak_before", predict(current))
		s.Note("adapt_peak_after", predict(next))
		s.Log.Info("adapt: "+msg, "step", s.Figures.Step)
	}
	g.boundCache(next, target-predict(next), s)
	return nil
}

// calibrate learns, from the last step, how far the estimate was off for its schedule. On a
// GPU, MLX runs ahead of the device into free memory, down to its own limit, so a peak under
// the limit shows only that the step needed at most that much: it may lower the estimate,
// never raise it. A peak over the limit is a shortfall on every backend.
func (g *governor) calibrate(limit int64) {
	last := g.r.lastStep
	if !last.ran || last == g.calibrated {
		return
	}
	g.calibrated = last
	w := g.workload()
	w.BatchSize, w.MaxSeqLength = last.rows, last.width
	if est := g.excess(w, last.schedule); est > 0 && last.peak > last.activeBefore {
		r := float64(last.peak-last.activeBefore) / float64(est)
		if g.r.info.Decision.Device.GPU() && last.peak <= limit {
			r = min(r, 1)
		}
		g.ratio[last.schedule] = r
	}
}

// ratioFor is the calibration of a schedule: its own when measured, else the most cautious
// of the others, else the estimate as it is.
func (g *governor) ratioFor(s memplan.Schedule) float64 {
	if r, ok := g.ratio[s]; ok {
		return r
	}
	worst := 1.0
	for _, r := range g.ratio {
		worst = max(worst, r)
	}
	return worst
}

// excess is the estimated memory a step adds to what is active when it begins.
func (g *governor) excess(w memplan.Workload, s memplan.Schedule) int64 {
	return g.r.info.Decision.EstimateSchedule(g.info, w, s).Step()
}

// workload is the recipe's step shape as the training state knows it: the adapters as
// attached, the data and step stages' settings (the model is set up as the plan decided).
func (g *governor) workload() memplan.Workload {
	var w memplan.Workload
	if l := g.r.lora; l != nil {
		w.Rank, w.Layers, w.Keys = l.Rank, l.NumLayers, l.Keys
	}
	if d := g.r.dataCfg; d != nil {
		stages.Data.AddWorkload(d, &w)
	}
	step := g.r.step
	if step == nil {
		step = stages.Step.Defaults()
	}
	stages.Step.AddWorkload(step, &w)
	return w
}

// schedules are the schedules the levers allow, cheapest first.
func (g *governor) schedules(w memplan.Workload) []memplan.Schedule {
	var out []memplan.Schedule
	for _, s := range memplan.Schedules(w, g.cfg.MaxMicroBatches) {
		if s.MicroBatches > 1 && !slices.Contains(g.cfg.Levers, stages.LeverMicroBatches) {
			continue
		}
		if s.GradCheckpoint != w.GradCheckpoint && !slices.Contains(g.cfg.Levers, stages.LeverCheckpointing) {
			continue
		}
		out = append(out, s)
	}
	return out
}

// boundCache keeps MLX's buffer cache within the headroom while the schedule is tightened,
// and gives the cache its own limit back when the recipe's schedule fits again.
func (g *governor) boundCache(s memplan.Schedule, headroom int64, sess *stage.Session) {
	if !slices.Contains(g.cfg.Levers, stages.LeverCacheLimit) {
		return
	}
	if s == g.baseline {
		if g.cacheLimit != nil {
			mlx.SetCacheLimit(*g.cacheLimit)
			g.cacheLimit = nil
		}
		return
	}
	previous := mlx.SetCacheLimit(uint64(max(0, headroom)))
	if g.cacheLimit == nil {
		g.cacheLimit = &previous
		sess.Note("adapt_cache_limit", max(0, headroom))
	}
}
