package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/yai-dev/yai/internal/atomicfile"
	"github.com/yai-dev/yai/internal/ioerr"
	"github.com/yai-dev/yai/stages/stage"
)

// A checkpoint is a directory checkpoints/step-NNNNNNNN of a run directory holding the
// backend's state (adapters, optimizer, data position, random keys), the engine's (engineFile)
// and the resolved recipe. It is written under a temporary name, synced, and renamed, so a
// directory with the final name is always complete.
const (
	checkpointsDir = "checkpoints"
	engineFile     = "engine.json"
	resumeFile     = "resume.json"
)

// engineState is the engine's part of a checkpoint.
type engineState struct {
	Step    int64   `json:"step"` // the last step whose update ran (or was skipped)
	Tokens  int64   `json:"tokens"`
	Loss    Loss    `json:"loss"`
	ValLoss float64 `json:"val_loss"`
	Elapsed float64 `json:"elapsed"`
	Skipped int64   `json:"skipped_nonfinite"`
	// the growth window: active memory at the step's start and the recent per-step deltas
	LastActive int64     `json:"last_active"`
	Deltas     []float64 `json:"growth_deltas"`
	// PendingAfterStep lists the after-step stages of Step that a stop kept from running;
	// a resume runs them first, so the run goes on as if it had never stopped.
	PendingAfterStep []string `json:"pending_after_step,omitempty"`
	// RecipeDir is where the recipe's relative paths (model, data) resolve.
	RecipeDir string `json:"recipe_dir"`
	Reason    string `json:"reason"`
}

// errNotStateful: the backend keeps no state a checkpoint could hold (a build without one).
var errNotStateful = errors.New("checkpoint: this build's backend cannot save its state")

func checkpointName(step int64) string { return fmt.Sprintf("step-%08d", step) }

// checkpoint writes the run as it stands into checkpoints/, keeping the newest keep (all
// when keep <= 0). It is called at the end of a step, or at a stop.
func (e *engine) checkpoint(keep int) error {
	state, ok := e.builder.State().(stage.Stateful)
	if !ok {
		return errNotStateful
	}
	if e.rank() > 0 {
		return nil // every rank holds the same state; rank 0 saves it
	}
	st := engineState{Step: e.completed, Tokens: e.env.Tokens, Loss: Loss(e.env.Loss), ValLoss: e.env.ValLoss,
		Elapsed: e.env.Elapsed, Skipped: e.skipped, LastActive: e.lastActive, Deltas: e.deltas,
		RecipeDir: absDir(e.plan.Recipe.Dir), Reason: "checkpoint stage"}
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
	root := filepath.Join(e.dir, checkpointsDir)
	final := filepath.Join(root, checkpointName(st.Step))
	if _, err := os.Stat(final); err == nil {
		return nil // this step's state is already saved
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := e.metrics.flush(); err != nil {
		return fmt.Errorf("metrics.jsonl: %w", err)
	}
	tmp, err := os.MkdirTemp(root, ".tmp-"+checkpointName(st.Step)+"-")
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	err = e.writeCheckpoint(tmp, state, st)
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err == nil {
		err = syncDir(root)
	}
	if err != nil {
		os.RemoveAll(tmp)
		return ioerr.Writing(fmt.Sprintf("the checkpoint of step %d", st.Step), final, err)
	}
	e.log.Info("checkpoint written", "step", st.Step, "dir", final)
	control{e}.Note("checkpoint", filepath.Base(final))
	if keep > 0 {
		return pruneCheckpoints(root, keep)
	}
	return nil
}

func (e *engine) writeCheckpoint(dir string, state stage.Stateful, st engineState) error {
	if err := state.SaveState(dir); err != nil {
		return err
	}
	js, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(dir, engineFile), append(js, '\n'), 0o644); err != nil {
		return err
	}
	if _, err := writeResolvedRecipe(dir, e.plan.Recipe); err != nil {
		return err
	}
	return syncTree(dir)
}

// pruneCheckpoints removes all but the newest keep checkpoints.
func pruneCheckpoints(root string, keep int) error {
	steps, err := checkpointSteps(root)
	if err != nil {
		return err
	}
	for _, s := range steps[:max(0, len(steps)-keep)] {
		if err := os.RemoveAll(filepath.Join(root, checkpointName(s))); err != nil {
			return err
		}
	}
	return nil
}

// checkpointSteps lists the steps of the complete checkpoints under root, oldest first.
func checkpointSteps(root string) ([]int64, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	var steps []int64
	for _, en := range entries {
		n, ok := strings.CutPrefix(en.Name(), "step-")
		if !ok || !en.IsDir() {
			continue // temporary directories of unfinished checkpoints start with a dot
		}
		if s, err := strconv.ParseInt(n, 10, 64); err == nil {
			steps = append(steps, s)
		}
	}
	sort.Slice(steps, func(i, j int) bool { return steps[i] < steps[j] })
	return steps, nil
}

// syncTree fsyncs every file of dir, then dir itself.
func syncTree(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, en := range entries {
		if en.Type().IsRegular() {
			if err := syncPath(filepath.Join(dir, en.Name())); err != nil {
				return err
			}
		}
	}
	return syncDir(dir)
}

func syncDir(dir string) error { return syncPath(dir) }

func syncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func absDir(d string) string {
	if a, err := filepath.Abs(d); err == nil {
		return a
	}
	return d
}

// Resume is a run to continue: the run directory, its newest complete checkpoint and what
// the engine saved there.
type Resume struct {
	Parent     string   // the run directory being resumed
	Checkpoint string   // its newest complete checkpoint
	Forced     []string // recipe changes accepted with --force, recorded in the new run
	state      engineState
	lock       *RunLock
}

// OpenResume locks a run directory (one process resumes it at a time) and finds its newest
// complete checkpoint. Close releases the lock.
func OpenResume(runDir string) (*Resume, error) {
	if st, err := os.Stat(runDir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("resume: %s is not a run directory", runDir)
	}
	lock, err := LockRunDir(runDir)
	if err != nil {
		return nil, err
	}
	r, err := findCheckpoint(runDir)
	if err != nil {
		lock.Unlock()
		return nil, err
	}
	r.lock = lock
	return r, nil
}

func findCheckpoint(runDir string) (*Resume, error) {
	root := filepath.Join(runDir, checkpointsDir)
	steps, err := checkpointSteps(root)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(steps) == 0) {
		return nil, fmt.Errorf("resume: %s has no complete checkpoint; a recipe writes them with a checkpoint stage (for example {id: ckpt, kind: checkpoint, every: 50}) and a guard or a signal writes one when it stops the run", runDir)
	}
	if err != nil {
		return nil, fmt.Errorf("resume: %w", err)
	}
	dir := filepath.Join(root, checkpointName(steps[len(steps)-1]))
	r := &Resume{Parent: runDir, Checkpoint: dir}
	data, err := os.ReadFile(filepath.Join(dir, engineFile))
	if err == nil {
		err = json.Unmarshal(data, &r.state)
	}
	if err != nil {
		return nil, fmt.Errorf("resume: %s: %w", filepath.Join(dir, engineFile), err)
	}
	return r, nil
}

// Close releases the resumed run directory.
func (r *Resume) Close() { r.lock.Unlock() }

// Step is the last step the checkpoint holds.
func (r *Resume) Step() int64 { return r.state.Step }

// Recipe is the checkpoint's resolved recipe and the directory its relative paths resolve in.
func (r *Resume) Recipe() (file string, src []byte, dir string, err error) {
	file = filepath.Join(r.Checkpoint, "recipe.yaml")
	src, err = os.ReadFile(file)
	return file, src, r.state.RecipeDir, err
}

// record writes resume.json into the new run directory: where it continues from.
func (r *Resume) record(dir string) error {
	js, err := json.MarshalIndent(map[string]any{
		"parent": absDir(r.Parent), "checkpoint": absDir(r.Checkpoint), "step": r.state.Step, "forced": r.Forced,
	}, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, resumeFile), append(js, '\n'), 0o644)
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
	st := e.resume.state
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
func OpenResumeShared(runDir string) (*Resume, error) {
	if st, err := os.Stat(runDir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("resume: %s is not a run directory", runDir)
	}
	return findCheckpoint(runDir)
}
