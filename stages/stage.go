// Package stages holds the stage kinds a recipe can use: one file per kind, each declaring with
// Define its name, typed settings, allowed events, the checks it owns in the dry run, and (when
// it needs no training core) how to build it. A backend implements the other kinds in an
// Environment.
package stages

import (
	"context"
	"log/slog"
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
	ExitCheckpointStop = 3   // a guard saved state and stopped the run
	ExitAbort          = 4   // a guard aborted the run without saving
	ExitInterrupted    = 130 // Ctrl-C: stopped at a step boundary, teardown ran
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
	Peak() int64   // highest Active since start (or last reset)
	Cache() int64  // bytes kept in MLX's buffer cache
	Arrays() int64 // live array handles
	ClearCache()   // returns cached buffers to the system
}

// Report is what the step stage tells the engine about the step it ran.
type Report struct {
	Loss   float64 // training loss of this step
	Tokens int64   // tokens trained on in this step
	LR     float64 // learning rate used in this step
}

// Stop asks the engine to end the run at the end of the current event.
type Stop struct {
	Code       int    // process exit code (ExitCheckpointStop, ExitAbort, …)
	Reason     string // one sentence for the log and the terminal
	Checkpoint bool   // run teardown stages (save adapters) before exiting
}

// Control is the engine side of a Session.
type Control interface {
	Report(r Report)
	// ReportEval records a validation loss (val_loss) and makes the engine fire on-eval.
	ReportEval(valLoss float64)
	Stop(s Stop)
	// RunKind runs, now, every stage of the recipe that has the given kind (a guard's reload).
	RunKind(ctx context.Context, kind *Kind) error
	// Note adds a fact to this step's metrics line, e.g. memory before and after a reload.
	Note(key string, value any)
}

// Session is what the engine hands a stage each time it runs.
type Session struct {
	ID     string       // the stage's id in the recipe
	Log    *slog.Logger // already carries the stage id
	Env    Env          // memory, step and loss figures at the moment the stage fires
	RunDir string       // the run's own directory
	Memory Memory       // MLX memory; never nil while a run executes
	// Stopping is set while teardown runs after a stop (guard, Ctrl-C): a save stage saves
	// the optimizer state too when the stop asks for a checkpoint.
	Stopping *Stop
	Ctl      Control
}

func (s *Session) Report(r Report)            { s.Ctl.Report(r) }
func (s *Session) ReportEval(valLoss float64) { s.Ctl.ReportEval(valLoss) }
func (s *Session) Stop(st Stop)               { s.Ctl.Stop(st) }
func (s *Session) Note(key string, v any)     { s.Ctl.Note(key, v) }
func (s *Session) RunKind(ctx context.Context, kind *Kind) error {
	return s.Ctl.RunKind(ctx, kind)
}
