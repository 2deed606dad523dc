package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/yai-dev/yai/internal/rundir"
	"github.com/yai-dev/yai/stages"
	"github.com/yai-dev/yai/stages/stage"
)

// A distributed run shares one run directory: rank 0 writes it as a single process would
// (recipe, run.log, metrics.jsonl with every rank's memory, checkpoints, adapters, result.json);
// every other rank writes only rank-N.log, rank-N.metrics.jsonl and rank-N.result.json.

// rank is this process's rank (0 alone).
func (e *engine) rank() int {
	if e.opts.Ranks == nil {
		return 0
	}
	return e.opts.Ranks.Rank()
}

// runDir is the directory the run writes: the one the launcher named, or a new one.
func (e *engine) runDir() (string, error) {
	if e.opts.RunDir == "" {
		if e.rank() > 0 {
			return "", errors.New("a rank other than 0 needs the run directory of rank 0")
		}
		return rundir.New(e.opts.RunsDir, e.plan.Recipe.Name, e.opts.Now())
	}
	// On another machine of a hostfile the directory may not exist yet.
	return e.opts.RunDir, os.MkdirAll(e.opts.RunDir, 0o755)
}

// meet is the step boundary of a distributed run: every rank tells whether it wants to stop
// (a guard, a non-finite step, a signal) and its memory, and all adopt the stop of the
// lowest rank that asked for one, so every rank stops after the same step.
func (e *engine) meet(ctx context.Context) error {
	e.sample()
	st := stages.RankStatus{Active: e.env.MLX.Active, Peak: e.env.MLX.Peak, Cache: e.env.MLX.Cache, RSS: e.env.RSS}
	local := e.pending
	if local == nil && ctx.Err() != nil {
		local = stopFor(ctx)
	}
	if local != nil {
		st.Stop, st.Checkpoint, st.Reason = local.Code, local.Checkpoint, local.Reason
	}
	all, err := e.opts.Ranks.Exchange(st)
	if err != nil {
		return fmt.Errorf("step %d: the ranks could not meet: %w", e.env.Step, err)
	}
	e.peers, e.pending = all, nil
	for r, s := range all {
		if s.Stop == 0 {
			continue
		}
		reason := s.Reason
		if r != e.rank() {
			reason = fmt.Sprintf("rank %d: %s", r, s.Reason)
		}
		e.stop = &stage.Stop{Code: s.Stop, Checkpoint: s.Checkpoint, Reason: reason}
		// the step is complete on every rank: nothing of it is pending at a checkpoint
		e.event, e.index = stage.AfterStep, len(e.plan.Events[stage.AfterStep])-1
		break
	}
	return nil
}

func rankFigures(all []stages.RankStatus) []rundir.RankMemory {
	if len(all) == 0 {
		return nil
	}
	out := make([]rundir.RankMemory, len(all))
	for r, s := range all {
		out[r] = rundir.RankMemory{Rank: r, MLXActive: s.Active, MLXPeak: s.Peak, MLXCache: s.Cache, RSS: s.RSS}
	}
	return out
}
