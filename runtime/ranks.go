package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

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

// rankFile is name as this rank writes it: name itself on rank 0, rank-N.name elsewhere.
func (e *engine) rankFile(name string) string {
	if e.rank() == 0 {
		return name
	}
	return fmt.Sprintf("rank-%d.%s", e.rank(), name)
}

// runDir is the directory the run writes: the one the launcher named, or a new one.
func (e *engine) runDir() (string, error) {
	if e.opts.RunDir == "" {
		if e.rank() > 0 {
			return "", errors.New("a rank other than 0 needs the run directory of rank 0")
		}
		return NewRunDir(e.opts.RunsDir, e.plan.Recipe.Name, e.opts.Now())
	}
	// On another machine of a hostfile the directory may not exist yet.
	return e.opts.RunDir, os.MkdirAll(e.opts.RunDir, 0o755)
}

// openRankFiles opens a non-zero rank's own log and metrics inside the run directory.
func (e *engine) openRankFiles() (func(), error) {
	logFile, err := os.OpenFile(filepath.Join(e.dir, e.rankFile("log")), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	e.log = NewLogger(e.opts.Console, e.opts.LogJSON, e.opts.Level, logFile)
	if e.metrics, err = newMetricsWriter(filepath.Join(e.dir, e.rankFile("metrics.jsonl"))); err != nil {
		logFile.Close()
		return nil, err
	}
	return func() { logFile.Close() }, nil
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

// RankMemory is one rank's memory in metrics.jsonl.
type RankMemory struct {
	Rank      int   `json:"rank"`
	MLXActive int64 `json:"mlx_active"`
	MLXPeak   int64 `json:"mlx_peak"`
	MLXCache  int64 `json:"mlx_cache"`
	RSS       int64 `json:"rss"`
}

func rankFigures(all []stages.RankStatus) []RankMemory {
	if len(all) == 0 {
		return nil
	}
	out := make([]RankMemory, len(all))
	for r, s := range all {
		out[r] = RankMemory{Rank: r, MLXActive: s.Active, MLXPeak: s.Peak, MLXCache: s.Cache, RSS: s.RSS}
	}
	return out
}
