package runtime

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/yai-dev/yai/internal/ioerr"
	"github.com/yai-dev/yai/internal/rundir"
	"github.com/yai-dev/yai/stages/stage"
)

// A checkpoint holds the backend's state, the engine's (rundir.EngineState) and the resolved
// recipe; rundir writes and reads it.

// errNotStateful: the backend keeps no state a checkpoint could hold (a build without one).
var errNotStateful = errors.New("checkpoint: this build's backend cannot save its state")

// checkpoint writes the run as it stands into checkpoints/, keeping the newest keep (all
// when keep <= 0). It is called at the end of a step, or at a stop.
func (e *engine) checkpoint(keep int) error {
	state, ok := e.builder.State().(stage.Stateful)
	if !ok {
		return errNotStateful
	}
	if e.rank() > 0 {
		e.syncLog()
		return nil // every rank holds the same state; rank 0 saves it
	}
	st := rundir.EngineState{Step: e.completed, Tokens: e.env.Tokens, Loss: rundir.Loss(e.env.Loss), ValLoss: e.env.ValLoss,
		Elapsed: e.env.Elapsed, Skipped: e.skipped, LastActive: e.lastActive, Deltas: e.deltas,
		RecipeDir: absDir(e.plan.Recipe.Dir), DataSHA256: e.dataHashes, Reason: "checkpoint stage"}
	if e.stop != nil {
		st.Reason = e.stop.Reason
		switch {
		case e.completed < e.env.Step: // stopped before this step's update: the previous step is the state
			st.LastActive, st.Deltas = e.prevActive, e.prevDeltas
		case e.event == stage.OnStep:
			st.PendingAfterStep = ids(e.plan.Events[stage.AfterStep])
		case e.event == stage.AfterStep:
			st.PendingAfterStep = ids(e.plan.Events[stage.AfterStep][e.index+1:])
		}
	}
	if rundir.HasCheckpoint(e.dir, st.Step) {
		return nil // this step's state is already saved
	}
	if err := e.metrics.Sync(); err != nil {
		return fmt.Errorf("metrics.jsonl: %w", err)
	}
	recipe, err := e.plan.Recipe.ResolvedYAML()
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	dir, err := rundir.WriteCheckpoint(e.dir, st, recipe, state.SaveState)
	if err != nil {
		return ioerr.Writing(fmt.Sprintf("the checkpoint of step %d", st.Step), dir, err)
	}
	e.log.Info("checkpoint written", "step", st.Step, "dir", dir)
	e.syncLog()
	control{e}.Note("checkpoint", filepath.Base(dir))
	if keep > 0 {
		return rundir.PruneCheckpoints(e.dir, keep)
	}
	return nil
}

func absDir(d string) string {
	if a, err := filepath.Abs(d); err == nil {
		return a
	}
	return d
}

// Resume is a run to continue: the run directory, the checkpoint it goes on from (its newest
// complete one, or the one chosen) and what the engine saved there.
type Resume struct {
	Parent     string   // the run directory being resumed
	Checkpoint string   // the checkpoint it continues from
	Forced     []string // recipe and data changes accepted with --force, recorded in the new run
	ckpt       *rundir.Checkpoint
	lock       *rundir.Lock
}

// OpenResume locks a run directory (one process resumes it at a time) and finds its newest
// complete checkpoint. Given a checkpoint directory (RUN_DIR/checkpoints/step-N), it resumes
// its run from that checkpoint. Close releases the lock.
func OpenResume(path string) (*Resume, error) {
	runDir, err := resumedRunDir(path)
	if err != nil {
		return nil, err
	}
	lock, err := rundir.LockDir(runDir)
	if err != nil {
		return nil, err
	}
	r, err := findCheckpoint(runDir, path)
	if err != nil {
		lock.Unlock()
		return nil, err
	}
	r.lock = lock
	return r, nil
}

// resumedRunDir is the run directory of path: path itself, or the run of a checkpoint
// directory.
func resumedRunDir(path string) (string, error) {
	if st, err := os.Stat(path); err != nil || !st.IsDir() {
		return "", fmt.Errorf("resume: %s is not a run directory", path)
	}
	if isCheckpointDir(path) {
		return rundir.RunDirOf(filepath.Clean(path)), nil
	}
	return path, nil
}

// isCheckpointDir: path holds engine.json, or sits in a run's checkpoints/ directory.
func isCheckpointDir(path string) bool {
	_, err := os.Stat(filepath.Join(path, rundir.EngineFile))
	return err == nil || filepath.Base(filepath.Dir(filepath.Clean(path))) == rundir.CheckpointsDir
}

func findCheckpoint(runDir, path string) (*Resume, error) {
	if isCheckpointDir(path) {
		c, err := rundir.ReadCheckpoint(filepath.Clean(path))
		if err != nil {
			return nil, fmt.Errorf("resume: %w", err)
		}
		return &Resume{Parent: runDir, Checkpoint: c.Dir, ckpt: c}, nil
	}
	c, err := rundir.LatestCheckpoint(runDir)
	if errors.Is(err, rundir.ErrNoCheckpoint) {
		return nil, fmt.Errorf("resume: %s has no complete checkpoint; a recipe writes them with a checkpoint stage (for example {id: ckpt, kind: checkpoint, every: 50}) and a guard or a signal writes one when it stops the run", runDir)
	}
	if err != nil {
		return nil, fmt.Errorf("resume: %w", err)
	}
	return &Resume{Parent: runDir, Checkpoint: c.Dir, ckpt: c}, nil
}

// CheckSteps refuses a resume with nothing to train: the checkpoint is at or past steps.
func (r *Resume) CheckSteps(steps int) error {
	if at := r.Step(); int64(steps) <= at {
		return fmt.Errorf("resume: nothing left to train: %s is at step %d and the recipe's steps is %d; to train further, raise it, e.g. --set steps=%d", r.Checkpoint, at, steps, at+max(at, 1))
	}
	return nil
}

// DataChanges lists the data files whose contents differ from the checkpoint's hashes, files
// being every file of the run's splits in the data directory root (none for a checkpoint that
// recorded no hashes). A shard added to or removed from a split is a change.
func (r *Resume) DataChanges(root string, files []string) ([]string, error) {
	saved := r.ckpt.State.DataSHA256
	if len(saved) == 0 {
		return nil, nil
	}
	now, err := rundir.HashFiles(root, files)
	if err != nil {
		return nil, fmt.Errorf("resume: %w", err)
	}
	names := slices.Sorted(maps.Keys(now))
	for name := range saved {
		if _, ok := now[name]; !ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	var out []string
	for _, name := range names {
		f := filepath.Join(root, filepath.FromSlash(name))
		was, had := saved[name]
		is, has := now[name]
		switch {
		case had && !has:
			out = append(out, fmt.Sprintf("data: %s was removed since the checkpoint", f))
		case !had && has:
			out = append(out, fmt.Sprintf("data: %s appeared since the checkpoint", f))
		case was != is:
			out = append(out, fmt.Sprintf("data: %s changed since the checkpoint (sha256 %.12s → %.12s)", f, was, is))
		}
	}
	return out, nil
}

// Close releases the resumed run directory.
func (r *Resume) Close() { r.lock.Unlock() }

// Step is the last step the checkpoint holds.
func (r *Resume) Step() int64 { return r.ckpt.State.Step }

// Recipe is the checkpoint's resolved recipe and the directory its relative paths resolve in.
func (r *Resume) Recipe() (file string, src []byte, dir string, err error) {
	file, src, err = r.ckpt.Recipe()
	return file, src, r.ckpt.State.RecipeDir, err
}

// record writes resume.json into the new run directory: where it continues from.
func (r *Resume) record(dir string) error {
	return rundir.WriteResumed(dir, rundir.Resumed{
		Parent: absDir(r.Parent), Checkpoint: absDir(r.Checkpoint), Step: r.ckpt.State.Step, Forced: r.Forced,
	})
}

// restore loads the checkpoint into the backend and the engine, runs the after-step stages a
// stop kept from running, and returns the first step to run.
func (e *engine) restore(ctx context.Context) (int64, error) {
	state, ok := e.builder.State().(stage.Stateful)
	if !ok {
		return 0, errors.New("resume: this build's backend cannot restore state")
	}
	if err := state.LoadState(e.resume.Checkpoint); err != nil {
		return 0, fmt.Errorf("resume from %s: %w", e.resume.Checkpoint, err)
	}
	st := e.resume.ckpt.State
	e.env.Step, e.completed = st.Step, st.Step
	e.env.Tokens, e.env.Loss, e.env.ValLoss = st.Tokens, float64(st.Loss), st.ValLoss
	e.skipped, e.elapsed0, e.start = st.Skipped, st.Elapsed, e.opts.Now()
	e.lastActive, e.deltas = st.LastActive, slices.Clone(st.Deltas)
	if len(e.deltas) > 0 {
		e.env.Growth = median(e.deltas)
	}
	e.log.Info("resumed", "from", e.resume.Checkpoint, "step", st.Step, "pending", strings.Join(st.PendingAfterStep, ","))
	if len(st.PendingAfterStep) > 0 {
		e.fired, e.notes, e.report, e.valLoss = nil, nil, nil, nil
		if err := e.fireOnly(ctx, stage.AfterStep, st.PendingAfterStep); err != nil {
			return 0, err
		}
		if e.stop == nil && e.valLoss != nil {
			if err := e.fire(ctx, stage.OnEval); err != nil {
				return 0, err
			}
		}
	}
	return st.Step + 1, nil
}

// OpenResumeShared is OpenResume for the ranks of a distributed resume: the launcher holds
// the parent's lock for all of them, and every rank reads the same checkpoint.
func OpenResumeShared(path string) (*Resume, error) {
	runDir, err := resumedRunDir(path)
	if err != nil {
		return nil, err
	}
	return findCheckpoint(runDir, path)
}
