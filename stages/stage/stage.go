// Package stage is the contract between the engine and a stage: the events a run fires, the
// Session a stage runs with, what it reports back (Report, Stop), the memory view it reads, and
// the Figures its triggers are written over. The kinds themselves live in package stages.
package stage

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// Event names a point in a run at which stages fire.
type Event string

const (
	Setup      Event = "setup"       // once, before the first step, in dependency order
	BeforeStep Event = "before-step" // every step, before the optimizer step
	OnStep     Event = "step"        // every step: the optimizer step itself
	AfterStep  Event = "after-step"  // every step, after the optimizer step
	OnEval     Event = "on-eval"     // after an eval stage has run in this step
	Teardown   Event = "teardown"    // once, at the end (also after Ctrl-C or a guard stop)
)

// Events lists every event in the order a run reaches them.
var Events = []Event{Setup, BeforeStep, OnStep, AfterStep, OnEval, Teardown}

// PerStep reports whether the event fires on every step (so `every:` makes sense for it).
func (e Event) PerStep() bool { return e == BeforeStep || e == OnStep || e == AfterStep || e == OnEval }

// Exit codes of `yai run` beyond 0 (done), 1 (error) and 2 (usage).
const (
	ExitCheckpointStop = 3 // a guard saved state and stopped the run
	ExitAbort          = 4 // a guard aborted the run without saving
	ExitNonFinite      = 5 // a step's loss or gradient was not finite; it was not applied
	// A signal stops the run at a step boundary, after teardown, with 128 + its number:
	// 129 SIGHUP, 130 SIGINT (Ctrl-C), 143 SIGTERM.
	ExitInterrupted = 130
)

// Stage is one configured stage instance of a run.
type Stage interface {
	Run(ctx context.Context, s *Session) error
}

// StageFunc adapts a function to Stage.
type StageFunc func(ctx context.Context, s *Session) error

func (f StageFunc) Run(ctx context.Context, s *Session) error { return f(ctx, s) }

// Memory is the narrow view of MLX memory the stages and the engine need.
// The run command implements it over the mlx package; tests use a fake.
type Memory interface {
	Active() int64 // bytes held by live arrays
	Peak() int64   // highest Active since the last ResetPeak
	ResetPeak()    // starts a new peak from the current Active
	Cache() int64  // bytes kept in MLX's buffer cache
	Arrays() int64 // live array handles
	ClearCache()   // returns cached buffers to the system
}

// Report is what the step stage tells the engine about the step it ran.
type Report struct {
	Loss   float64 // training loss of this step
	Tokens int64   // tokens trained on in this step
	LR     float64 // learning rate used in this step
	// Skipped is set when the step's loss or gradient was not finite and the recipe skips
	// such batches: nothing of the step was applied.
	Skipped bool
	// How the step was computed (its schedule), and the compiled traces kept so far.
	MicroBatches  int
	Checkpointing bool
	Traces        int
}

// Stop asks the engine to end the run at the end of the current event.
type Stop struct {
	Code   int    // process exit code (ExitCheckpointStop, ExitAbort, …)
	Reason string // one sentence for the log and the terminal
	// Checkpoint writes a checkpoint of the run as it stands and runs teardown (save
	// adapters) before exiting.
	Checkpoint bool
}

// Control is the engine side of a Session.
type Control interface {
	Report(r Report)
	// ReportEval records a validation loss (val_loss) and makes the engine fire on-eval.
	ReportEval(valLoss float64)
	Stop(s Stop)
	// RunKind runs, now, every stage of the recipe of the named kind (a guard's reload).
	RunKind(ctx context.Context, kind string) error
	// Note adds a fact to this step's metrics line, e.g. memory before and after a reload.
	Note(key string, value any)
	// Checkpoint asks for a checkpoint at the end of this step, keeping the newest keep
	// (0 keeps all).
	Checkpoint(keep int)
}

// Stateful is implemented by a backend's per-run state that a checkpoint can hold: it
// writes its files into a checkpoint directory and restores itself from one.
type Stateful interface {
	SaveState(dir string) error
	LoadState(dir string) error
}

// Session is what the engine hands a stage each time it runs.
type Session struct {
	ID      string       // the stage's id in the recipe
	Log     *slog.Logger // already carries the stage id
	Figures Figures      // memory, step and loss figures at the moment the stage fires
	RunDir  string       // the run's own directory
	Memory  Memory       // MLX memory; never nil while a run executes
	// Stopping is set while teardown runs after a stop (guard, Ctrl-C): a save stage saves
	// the optimizer state too when the stop asks for a checkpoint.
	Stopping *Stop
	// Strict runs the recipe as written: no pre-flight schedule, and a guard that would adapt
	// the step saves and stops instead.
	Strict bool
	Ctl    Control
}

func (s *Session) Report(r Report)            { s.Ctl.Report(r) }
func (s *Session) ReportEval(valLoss float64) { s.Ctl.ReportEval(valLoss) }
func (s *Session) Stop(st Stop)               { s.Ctl.Stop(st) }
func (s *Session) Note(key string, v any)     { s.Ctl.Note(key, v) }
func (s *Session) Checkpoint(keep int)        { s.Ctl.Checkpoint(keep) }
func (s *Session) RunKind(ctx context.Context, kind string) error {
	return s.Ctl.RunKind(ctx, kind)
}

// OutputPath resolves rel, a path a stage writes to, inside the run directory. A path that
// escapes it (absolute, "..", or through a symbolic link) is an error.
func (s *Session) OutputPath(rel string) (string, error) {
	if err := CheckOutputPath(rel); err != nil {
		return "", err
	}
	p := filepath.Join(s.RunDir, rel)
	root, err := filepath.EvalSymlinks(s.RunDir)
	if err != nil {
		return "", err
	}
	// The deepest existing ancestor decides where the path really leads.
	existing := p
	for {
		if _, err := os.Lstat(existing); err == nil {
			break
		}
		existing = filepath.Dir(existing)
	}
	real, err := filepath.EvalSymlinks(existing)
	if err != nil {
		return "", err
	}
	if r, err := filepath.Rel(root, real); err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("%s leads outside the run directory (to %s)", rel, real)
	}
	return p, nil
}

// CheckOutputPath rejects an output path that is absolute or climbs out of the run directory.
func CheckOutputPath(rel string) error {
	if filepath.IsAbs(rel) || strings.HasPrefix(rel, "~") {
		return fmt.Errorf("%q is absolute: outputs are written inside the run directory, give a relative path", rel)
	}
	if c := filepath.Clean(rel); c == ".." || strings.HasPrefix(c, ".."+string(filepath.Separator)) {
		return fmt.Errorf("%q climbs out of the run directory: outputs are written inside it", rel)
	}
	return nil
}
