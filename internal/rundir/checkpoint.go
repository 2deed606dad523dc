package rundir

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/yai-dev/yai/internal/atomicfile"
)

// A checkpoint is a directory checkpoints/step-NNNNNNNN of a run directory holding the
// backend's state (adapters, optimizer, data position, random keys), the engine's
// (engine.json) and the resolved recipe. It is written under a temporary name (a dot first),
// synced, and renamed, so a directory with the final name is complete.

// EngineState is engine.json: the engine's part of a checkpoint.
type EngineState struct {
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
	// DataSHA256 is the sha256 of each data file (by base name) as the run read it: a resume
	// refuses data edited since (the same row count would pass unnoticed otherwise).
	DataSHA256 map[string]string `json:"data_sha256,omitempty"`
	Reason     string            `json:"reason"`
}

// ErrNoCheckpoint: the run directory holds no complete checkpoint.
var ErrNoCheckpoint = errors.New("no complete checkpoint")

func checkpointName(step int64) string { return fmt.Sprintf("step-%08d", step) }

// CheckpointDir is where the checkpoint of step is, complete or not.
func CheckpointDir(runDir string, step int64) string {
	return filepath.Join(runDir, CheckpointsDir, checkpointName(step))
}

// HasCheckpoint reports whether runDir holds a complete checkpoint of step.
func HasCheckpoint(runDir string, step int64) bool {
	return complete(CheckpointDir(runDir, step))
}

// complete: a checkpoint directory under its final name, holding engine.json.
func complete(dir string) bool {
	st, err := os.Stat(filepath.Join(dir, EngineFile))
	return err == nil && st.Mode().IsRegular()
}

// WriteCheckpoint writes the checkpoint of st.Step: save fills the backend's part into the
// directory it is given, then engine.json and the recipe go beside it. The directory gets
// its final name only when all of it is synced; on an error nothing but the error is left.
// It returns the checkpoint's directory.
func WriteCheckpoint(runDir string, st EngineState, recipe []byte, save func(dir string) error) (string, error) {
	root := filepath.Join(runDir, CheckpointsDir)
	final := CheckpointDir(runDir, st.Step)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return final, err
	}
	tmp, err := os.MkdirTemp(root, ".tmp-"+checkpointName(st.Step)+"-")
	if err != nil {
		return final, err
	}
	err = save(tmp)
	if err == nil {
		err = writeJSON(filepath.Join(tmp, EngineFile), st)
	}
	if err == nil {
		_, err = WriteRecipe(tmp, recipe)
	}
	if err == nil {
		err = syncTree(tmp)
	}
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err == nil {
		err = atomicfile.Sync(root)
	}
	if err != nil {
		os.RemoveAll(tmp)
		return final, err
	}
	return final, nil
}

// Checkpoints lists the steps of runDir's complete checkpoints, oldest first. Unfinished
// ones (a temporary name, or no engine.json) are not listed.
func Checkpoints(runDir string) ([]int64, error) {
	root := filepath.Join(runDir, CheckpointsDir)
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
		s, err := strconv.ParseInt(n, 10, 64)
		if err != nil || s < 0 || en.Name() != checkpointName(s) || !complete(filepath.Join(root, en.Name())) {
			continue
		}
		steps = append(steps, s)
	}
	slices.Sort(steps)
	return steps, nil
}

// PruneCheckpoints removes all but the newest keep complete checkpoints.
func PruneCheckpoints(runDir string, keep int) error {
	steps, err := Checkpoints(runDir)
	if err != nil {
		return err
	}
	for _, s := range steps[:max(0, len(steps)-keep)] {
		if err := os.RemoveAll(CheckpointDir(runDir, s)); err != nil {
			return err
		}
	}
	return nil
}

// Checkpoint is a complete checkpoint read back.
type Checkpoint struct {
	Dir   string
	State EngineState
}

// LatestCheckpoint reads runDir's newest complete checkpoint; ErrNoCheckpoint when it has
// none.
func LatestCheckpoint(runDir string) (*Checkpoint, error) {
	steps, err := Checkpoints(runDir)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(steps) == 0) {
		return nil, ErrNoCheckpoint
	}
	if err != nil {
		return nil, err
	}
	return ReadCheckpoint(CheckpointDir(runDir, steps[len(steps)-1]))
}

// ReadCheckpoint reads the complete checkpoint in dir (checkpoints/step-N of a run
// directory) and checks that engine.json agrees with the directory's name and with itself.
func ReadCheckpoint(dir string) (*Checkpoint, error) {
	name := filepath.Base(dir)
	n, ok := strings.CutPrefix(name, "step-")
	step, err := strconv.ParseInt(n, 10, 64)
	if !ok || err != nil || step < 0 || name != checkpointName(step) || filepath.Base(filepath.Dir(dir)) != CheckpointsDir {
		return nil, fmt.Errorf("%s is not a checkpoint directory (RUN_DIR/%s/step-NNNNNNNN)", dir, CheckpointsDir)
	}
	if !complete(dir) {
		return nil, fmt.Errorf("%s is not a complete checkpoint: it has no %s", dir, EngineFile)
	}
	c := &Checkpoint{Dir: dir}
	file := filepath.Join(dir, EngineFile)
	if err := readJSON(file, &c.State); err != nil {
		return nil, err
	}
	st := c.State
	switch {
	case st.Step != step:
		return nil, fmt.Errorf("%s: step %d, but the directory is the checkpoint of step %d", file, st.Step, step)
	case st.Tokens < 0 || st.Skipped < 0 || st.Skipped > st.Step:
		return nil, fmt.Errorf("%s: counters disagree: step %d, tokens %d, skipped_nonfinite %d", file, st.Step, st.Tokens, st.Skipped)
	case math.IsNaN(st.Elapsed) || st.Elapsed < 0:
		return nil, fmt.Errorf("%s: elapsed %v is not a time", file, st.Elapsed)
	}
	return c, nil
}

// RunDirOf is the run directory a checkpoint directory belongs to.
func RunDirOf(checkpointDir string) string { return filepath.Dir(filepath.Dir(checkpointDir)) }

// Recipe is the checkpoint's resolved recipe: its file and contents.
func (c *Checkpoint) Recipe() (file string, src []byte, err error) {
	file = filepath.Join(c.Dir, RecipeFile)
	src, err = os.ReadFile(file)
	return file, src, err
}

// Resumed is resume.json: in a resumed run's directory, what it continues.
type Resumed struct {
	Checkpoint string   `json:"checkpoint"`
	Forced     []string `json:"forced"` // recipe changes accepted with --force
	Parent     string   `json:"parent"`
	Step       int64    `json:"step"`
}

// WriteResumed writes resume.json in dir.
func WriteResumed(dir string, r Resumed) error {
	return writeJSON(filepath.Join(dir, ResumeFile), r)
}

// syncTree fsyncs every file of dir, then dir itself.
func syncTree(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, en := range entries {
		if en.Type().IsRegular() {
			if err := atomicfile.Sync(filepath.Join(dir, en.Name())); err != nil {
				return err
			}
		}
	}
	return atomicfile.Sync(dir)
}

// DataName is the name HashFiles gives path: relative to root, else its base name.
func DataName(root, path string) string {
	if rel, err := filepath.Rel(root, path); err == nil && root != "" && !strings.HasPrefix(rel, "..") {
		return filepath.ToSlash(rel)
	}
	return filepath.Base(path)
}

// HashFiles is the sha256 of each file that exists among paths, by its path relative to root
// with forward slashes (a split's shards in folders keep distinct names; a file directly in
// root is its base name, as older checkpoints name it).
func HashFiles(root string, paths []string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range paths {
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		out[DataName(root, p)] = hex.EncodeToString(h.Sum(nil))
	}
	return out, nil
}
