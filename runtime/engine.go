package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/yai-dev/yai/internal/rundir"
	"github.com/yai-dev/yai/recipe"
	"github.com/yai-dev/yai/stages/stage"

	"github.com/yai-dev/yai/stages"
)

// RunOptions is what `yai run` supplies besides the plan.
type RunOptions struct {
	RunsDir string              // parent of run directories; default "runs"
	Memory  stage.Memory        // MLX memory (required)
	Env     *stages.Environment // builds the stages; default: the kinds that need no backend
	// Resume continues a checkpoint into the new run directory (nil: a fresh run).
	Resume  *Resume
	RSS     func() (int64, bool) // process memory; default: the Memory's RSS, else the OS's
	Swap    func() (int64, bool) // swap in use; default reads the OS
	Console *Console             // terminal output; default: stderr, no progress line
	LogJSON bool                 // JSON log lines on the console instead of text
	Level   slog.Level           // console log level
	Now     func() time.Time
	// Ranks, in a distributed run, is the process group; rank 0 writes the run directory,
	// the others their own log and result inside it (see ranks.go).
	Ranks stages.Ranks
	// RunDir, when set, is the run directory to use (made by `yai run --ranks`, so that
	// every rank knows it) instead of a new one under RunsDir.
	RunDir string
}

// LimitSetter is implemented by a Memory that can apply the recipe's limits to MLX.
type LimitSetter interface {
	SetLimits(memory, cache, wired int64)
}

// Result says how a run ended.
type Result struct {
	RunDir   string
	ExitCode int    // 0 done, 1 stage error, 3 guard checkpoint-and-stop, 4 abort, 5 non-finite, 128+signal
	Steps    int64  // steps completed
	Reason   string // why it ended early, if it did
}

// growthWindow is how many per-step deltas of active memory the growth median looks at.
const growthWindow = 9

type engine struct {
	plan    *recipe.Plan
	opts    RunOptions
	log     *slog.Logger
	dir     string
	built   map[*recipe.StageDecl]stage.Stage
	env     stage.Figures
	metrics *rundir.MetricsWriter
	logFile *os.File
	start   time.Time

	builder *stages.Builder
	resume  *Resume

	// per-step state
	fired   []string
	notes   map[string]any
	report  *stage.Report // nil until the step stage reports
	valLoss *float64      // set when an eval stage reports
	stop    *stage.Stop

	lastActive int64
	deltas     []float64
	// the growth window as the previous step left it, for a checkpoint of that step
	prevActive int64
	prevDeltas []float64

	dataHashes    map[string]string // sha256 of the data files as the run started, for checkpoints
	restoreFailed bool              // a resume could not load its checkpoint: nothing to save

	completed int64 // the last step whose step event ran
	skipped   int64 // steps whose non-finite loss or gradient was skipped
	overLimit int64 // steps whose MLX peak passed the memory limit
	worst     *rundir.OverLimitStep
	event     stage.Event
	index     int // of the stage being considered in event, for a stop's checkpoint
	ckptKeep  int // a checkpoint stage fired this step: keep this many
	ckptDue   bool
	elapsed0  float64 // elapsed seconds carried over from a resumed checkpoint

	rssOK, swapOK bool // whether this platform gave the figures

	// distributed runs: a stop asked during a step waits for the step boundary, where every
	// rank learns every rank's status and all stop together
	pending *stage.Stop
	peers   []stages.RankStatus
}

// Run executes a validated plan: setup stages in dependency order, then each step's events, then
// teardown. It creates a new run directory holding the resolved recipe and its hash,
// metrics.jsonl (one line per step) and run.log. Cancelling ctx (Ctrl-C) stops the run at the
// next step boundary; teardown still runs and the exit code is 130.
func Run(ctx context.Context, p *recipe.Plan, opts RunOptions) (Result, error) {
	if opts.Memory == nil {
		return Result{ExitCode: 1}, errors.New("run: no MLX memory interface")
	}
	if opts.RunsDir == "" {
		opts.RunsDir = "runs"
	}
	if opts.RSS == nil {
		opts.RSS = processRSS
		if m, ok := opts.Memory.(interface{ RSS() (int64, bool) }); ok {
			opts.RSS = m.RSS
		}
	}
	if opts.Swap == nil {
		opts.Swap = systemSwap
	}
	if opts.Console == nil {
		opts.Console = NewConsole(os.Stderr, false)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	e := &engine{plan: p, opts: opts, built: map[*recipe.StageDecl]stage.Stage{}}

	// Build every stage first: a stage that cannot be built is reported before anything is
	// written.
	if opts.Env == nil {
		opts.Env = stages.NewEnvironment()
	}
	info := p.RunInfo()
	info.Ranks = opts.Ranks
	builder, err := opts.Env.Open(info)
	if err != nil {
		return Result{ExitCode: 1}, err
	}
	defer builder.Close()
	e.builder, e.resume = builder, opts.Resume
	var failed []string
	for _, s := range p.Order {
		kind, _ := stages.Get(s.Kind)
		st, err := builder.Build(kind, s.Config)
		if err != nil {
			failed = append(failed, fmt.Sprintf("stage %q: %v", s.ID, err))
			continue
		}
		e.built[s] = st
	}
	if len(failed) > 0 {
		return Result{ExitCode: 1}, errors.New(strings.Join(failed, "\n"))
	}

	if opts.Resume != nil {
		if err := opts.Resume.CheckSteps(p.Recipe.Steps); err != nil {
			return Result{ExitCode: 1}, err
		}
	}
	if e.rank() == 0 {
		if e.dataHashes, err = rundir.HashFiles(p.RunInfo().DataDir, p.DataFiles()); err != nil {
			return Result{ExitCode: 1}, fmt.Errorf("data: %w", err)
		}
	}

	dir, err := e.runDir()
	if err != nil {
		return Result{ExitCode: 1}, fmt.Errorf("run directory: %w", err)
	}
	e.dir = dir
	res := Result{RunDir: dir}
	var hash string
	if e.rank() > 0 {
		hash = "(rank " + strconv.Itoa(e.rank()) + ")"
	} else {
		lock, err := rundir.LockDir(dir)
		if err != nil {
			res.ExitCode = 1
			return res, err
		}
		defer lock.Unlock()
		if e.resume != nil {
			if err := e.resume.record(dir); err != nil {
				res.ExitCode = 1
				return res, err
			}
		}
		resolved, err := p.Recipe.ResolvedYAML()
		if err == nil {
			hash, err = rundir.WriteRecipe(dir, resolved)
		}
		if err == nil {
			err = rundir.WriteSource(dir, rundir.Source{RecipeDir: absDir(p.Recipe.Dir)})
		}
		if err != nil {
			res.ExitCode = 1
			return res, err
		}
	}
	closeFiles, err := e.openFiles()
	if err != nil {
		res.ExitCode = 1
		return res, err
	}
	defer closeFiles()

	if ls, ok := opts.Memory.(LimitSetter); ok {
		ls.SetLimits(p.Decision.MLXLimit, p.Decision.CacheLimit, int64(p.Recipe.Memory.WiredLimit))
	}
	e.initEnv()
	e.log.Info("run started", "recipe", p.Recipe.Name, "dir", dir, "sha256", hash[:min(12, len(hash))], "steps", p.Recipe.Steps, "limit", stages.Bytes(p.Limit).String())

	runErr := e.loop(ctx, &res)
	opts.Console.EndProgress()
	if err := e.metrics.Close(); err != nil && runErr == nil {
		runErr = fmt.Errorf("%s: %w", rundir.RankFile(e.rank(), rundir.MetricsFile), err)
		res.ExitCode = 1
	}
	if err := e.logFile.Sync(); err != nil && runErr == nil {
		runErr = fmt.Errorf("%s: %w", rundir.LogName(e.rank()), err)
		res.ExitCode = 1
	}
	if err := e.writeResult(res, runErr); err != nil {
		e.log.Error("write "+rundir.RankFile(e.rank(), rundir.ResultFile), "err", err)
		e.syncLog()
		if runErr == nil {
			runErr = fmt.Errorf("%s: %w", rundir.RankFile(e.rank(), rundir.ResultFile), err)
			res.ExitCode = 1
		}
	}
	return res, runErr
}

// openFiles opens this rank's log and metrics in the run directory.
func (e *engine) openFiles() (func(), error) {
	f, err := rundir.CreateLog(e.dir, e.rank())
	if err != nil {
		return nil, err
	}
	e.logFile = f
	e.log = NewLogger(e.opts.Console, e.opts.LogJSON, e.opts.Level, f)
	if e.metrics, err = rundir.CreateMetrics(e.dir, e.rank()); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// syncLog puts what the log holds on the disk: at each checkpoint and at the end of the run,
// so that a run killed later keeps its log up to its last checkpoint.
func (e *engine) syncLog() {
	if err := e.logFile.Sync(); err != nil {
		e.log.Warn("sync "+rundir.LogName(e.rank()), "err", err)
	}
}

func (e *engine) initEnv() {
	e.env = stage.NewFigures()
	e.env.Limit = e.plan.Limit
	e.env.Steps = int64(e.plan.Recipe.Steps)
	e.env.World = 1
	if r := e.opts.Ranks; r != nil {
		e.env.Rank, e.env.World = int64(r.Rank()), int64(r.World())
	}
}

// stopFor is the stop a cancelled context asks for: a signal's, or Ctrl-C's.
func stopFor(ctx context.Context) *stage.Stop {
	var sig SignalError
	if errors.As(context.Cause(ctx), &sig) {
		return &stage.Stop{Code: sig.ExitCode(), Reason: "stopped by " + sig.Name(), Checkpoint: true}
	}
	return &stage.Stop{Code: stage.ExitInterrupted, Reason: "interrupted", Checkpoint: true}
}

func (e *engine) loop(ctx context.Context, res *Result) error {
	// Stages run to completion even after Ctrl-C: the run stops at the step boundary instead.
	work := context.WithoutCancel(ctx)
	e.start = e.opts.Now()
	e.sample()

	err := e.fire(work, stage.Setup)
	first := int64(1)
	if err == nil && e.resume != nil {
		if first, err = e.restore(work); err != nil {
			first, e.restoreFailed = 0, true
		}
		res.Steps = max(0, first-1)
	}
	for step := first; err == nil && e.stop == nil && step <= e.env.Steps; step++ {
		if ctx.Err() != nil && e.opts.Ranks == nil { // ranks learn of signals at the boundary
			e.stop = stopFor(ctx)
			break
		}
		e.beginStep(step)
		for _, ev := range []stage.Event{stage.BeforeStep, stage.OnStep, stage.AfterStep} {
			err = e.fire(work, ev)
			if ev == stage.OnStep {
				e.completed = step
			}
			if err != nil || e.stop != nil {
				break
			}
		}
		if err == nil && e.stop == nil && e.valLoss != nil {
			err = e.fire(work, stage.OnEval)
		}
		if err == nil && e.opts.Ranks != nil {
			err = e.meet(ctx)
		}
		e.endStep()
		res.Steps = step
		if err == nil && e.stop == nil && e.ckptDue {
			err = e.checkpoint(e.ckptKeep)
		}
	}
	if err == nil && e.stop == nil && ctx.Err() != nil {
		e.stop = stopFor(ctx) // a signal during the last step still checkpoints
	}
	if err == nil && e.stop == nil && res.Steps > 0 {
		// A finished run ends with a checkpoint, so `--resume --set steps=N` can extend it.
		if cerr := e.checkpoint(e.ckptKeep); cerr != nil && !errors.Is(cerr, errNotStateful) {
			err, res.ExitCode, res.Reason = cerr, 1, cerr.Error()
		}
	}

	switch {
	case err != nil:
		res.ExitCode, res.Reason = 1, err.Error()
		e.log.Error("stage failed; running teardown to save what can be saved", "err", err)
	case e.stop != nil:
		res.ExitCode, res.Reason = e.stop.Code, e.stop.Reason
		e.log.Warn("run stopping", "reason", e.stop.Reason, "step", res.Steps, "exit_code", e.stop.Code)
	}
	if err == nil && e.stop != nil && e.stop.Checkpoint {
		switch cerr := e.checkpoint(e.ckptKeep); {
		case errors.Is(cerr, errNotStateful):
			e.log.Warn("no checkpoint at the stop: this build's backend cannot save its state")
		case cerr != nil:
			e.log.Error("checkpoint at stop failed", "err", cerr)
			err, res.ExitCode = cerr, 1
		}
	}
	if e.restoreFailed {
		// Teardown would save the fresh adapters as if they were trained.
		e.log.Error("the checkpoint could not be restored: teardown skipped, nothing saved")
	} else if e.stop == nil || e.stop.Checkpoint {
		e.sample()
		if terr := e.fire(work, stage.Teardown); terr != nil {
			e.log.Error("teardown failed", "err", terr)
			if err == nil {
				err, res.ExitCode = terr, 1
			}
		}
	}
	if e.worst != nil {
		e.log.Warn("MLX peaks passed the memory limit", "steps_over_limit", e.overLimit, "worst_step", e.worst.Step,
			"worst_mlx_peak", stages.Bytes(e.worst.MLXPeak).String(), "limit", stages.Bytes(e.worst.Limit).String())
	}
	if err == nil {
		e.log.Info("run finished", "steps", res.Steps, "exit_code", res.ExitCode, "dir", e.dir)
	}
	return err
}

func (e *engine) beginStep(step int64) {
	e.env.Step = step
	e.fired, e.notes, e.report, e.valLoss = nil, nil, nil, nil
	e.ckptDue = false
	e.prevActive, e.prevDeltas = e.lastActive, slices.Clone(e.deltas)
	e.opts.Memory.ResetPeak() // mlx.peak is the peak within the step
	// Swap moves slowly and costs a file read: once a step, not before every trigger.
	e.env.Swap, e.swapOK = e.opts.Swap()
	e.sample()
	// growth: median of recent per-step changes of active memory, robust to one-off spikes
	if step > 1 {
		e.deltas = append(e.deltas, float64(e.env.MLX.Active-e.lastActive))
		if len(e.deltas) > growthWindow {
			e.deltas = e.deltas[1:]
		}
		e.env.Growth = median(e.deltas)
	}
	e.lastActive = e.env.MLX.Active
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func (e *engine) sample() {
	m := e.opts.Memory
	e.env.MLX = stage.MLX{Active: m.Active(), Peak: m.Peak(), Cache: m.Cache(), Arrays: m.Arrays(), PeakRun: e.env.MLX.PeakRun}
	e.env.RSS, e.rssOK = e.opts.RSS()
	e.env.MLX.PeakRun = max(e.env.MLX.PeakRun, e.env.MLX.Peak)
	e.env.Elapsed = e.elapsed0 + e.opts.Now().Sub(e.start).Seconds()
}

// fire runs, in order, every stage listening to ev whose `every` and `when` allow it now.
func (e *engine) fire(ctx context.Context, ev stage.Event) error {
	return e.fireOnly(ctx, ev, nil)
}

// fireOnly is fire restricted to the stages whose ids are in only (all when nil).
func (e *engine) fireOnly(ctx context.Context, ev stage.Event, only []string) error {
	list := e.plan.Events[ev]
	for i, s := range list {
		if e.stop != nil && ev != stage.Teardown {
			return nil // a stop ends the step here; teardown still runs in full
		}
		if only != nil && !slices.Contains(only, s.ID) {
			continue
		}
		e.event, e.index = ev, i
		e.sample()
		ok, err := s.Fires(&e.env)
		if err != nil {
			return err
		}
		if ok {
			if err := e.runStage(ctx, s); err != nil {
				return err
			}
		}
	}
	return nil
}

func (e *engine) runStage(ctx context.Context, s *recipe.StageDecl) error {
	e.fired = append(e.fired, s.ID)
	sess := &stage.Session{
		ID:       s.ID,
		Log:      e.log.With("stage", s.ID),
		Figures:  e.env,
		RunDir:   e.dir,
		Memory:   e.opts.Memory,
		Stopping: e.stop,
		Strict:   e.plan.Strict,
		Ctl:      control{e},
	}
	if err := e.built[s].Run(ctx, sess); err != nil {
		return fmt.Errorf("stage %q (%s): %w", s.ID, s.Kind, err)
	}
	return nil
}

func (e *engine) endStep() {
	var r stage.Report
	if e.report != nil {
		r = *e.report
		e.env.Loss = r.Loss
	}
	if r.Skipped {
		e.skipped++
	}
	e.env.Tokens += r.Tokens
	e.sample()
	m := rundir.Metrics{
		Step: e.env.Step, Loss: rundir.Loss(e.env.Loss), Tokens: r.Tokens, LR: r.LR, ValLoss: e.valLoss,
		Elapsed: e.env.Elapsed, MLXActive: e.env.MLX.Active, MLXPeak: e.env.MLX.Peak,
		MLXCache: e.env.MLX.Cache, MLXArrays: e.env.MLX.Arrays, MLXPeakRun: e.env.MLX.PeakRun,
		MicroBatches: e.env.MicroBatches, Checkpointing: e.env.Checkpointing == 1, Traces: e.env.Traces,
		Limit: e.env.Limit, Growth: e.env.Growth, Fired: e.fired, Notes: e.notes,
		Skipped: r.Skipped, SkippedTotal: e.skipped, Ranks: rankFigures(e.peers),
	}
	if m.Fired == nil {
		m.Fired = []string{}
	}
	e.checkLimit(&m)
	if rss, swap := e.env.RSS, e.env.Swap; true { // copies: the line is encoded later
		if e.rssOK {
			m.RSS = &rss
		}
		if e.swapOK {
			m.Swap = &swap
		}
	}
	if e.env.Elapsed > 0 {
		m.TokPerSec = float64(e.env.Tokens) / e.env.Elapsed
	}
	e.metrics.Write(m)
	e.opts.Console.Progress(progressLine(e.env, m.TokPerSec))
}

// checkLimit reports a step whose MLX peak passed the memory limit: the limit is a promise
// on every step, so a crossing is noted in the step's metrics, logged and counted in the
// result, whatever stage (if any) reacts to it.
func (e *engine) checkLimit(m *rundir.Metrics) {
	o, over := m.OverLimit()
	if !over {
		return
	}
	control{e}.Note("over_limit", o.Over())
	m.Notes = e.notes
	e.log.Warn("step's MLX peak passed the memory limit", "step", o.Step, "mlx_peak", stages.Bytes(o.MLXPeak).String(),
		"limit", stages.Bytes(o.Limit).String(), "over", stages.Bytes(o.Over()).String())
	e.overLimit++
	if e.worst == nil || o.Over() > e.worst.Over() {
		e.worst = &o
	}
}

// writeResult writes this rank's result.json.
func (e *engine) writeResult(res Result, err error) error {
	out := rundir.Result{ExitCode: res.ExitCode, Steps: res.Steps, Reason: res.Reason, Skipped: e.skipped,
		OverLimit: e.overLimit, Worst: e.worst}
	if err != nil {
		out.Error = err.Error()
	}
	if e.resume != nil {
		out.Parent, out.ResumedFrom = e.resume.Parent, e.resume.Checkpoint
	}
	return rundir.WriteResult(e.dir, e.rank(), out)
}

func ids(list []*recipe.StageDecl) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = s.ID
	}
	return out
}

// control is the engine side of a stage.Session.
type control struct{ e *engine }

func (c control) Report(r stage.Report) {
	c.e.report = &r
	// The stages after the step (a log line, a guard on loss) see this step's loss.
	c.e.env.Loss = r.Loss
	// How the step was computed is visible to the triggers of the rest of the step.
	c.e.env.MicroBatches, c.e.env.Traces = int64(max(1, r.MicroBatches)), int64(r.Traces)
	c.e.env.Checkpointing = 0
	if r.Checkpointing {
		c.e.env.Checkpointing = 1
	}
}

func (c control) ReportEval(valLoss float64) {
	c.e.valLoss = &valLoss
	c.e.env.ValLoss = valLoss
}

func (c control) Stop(s stage.Stop) {
	if c.e.opts.Ranks != nil {
		if c.e.pending == nil {
			c.e.pending = &s
		}
		return
	}
	if c.e.stop == nil {
		c.e.stop = &s
	}
}

func (c control) RunKind(ctx context.Context, kind string) error {
	for _, s := range c.e.plan.Order {
		if s.Kind == kind {
			if err := c.e.runStage(ctx, s); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c control) Checkpoint(keep int) {
	c.e.ckptDue, c.e.ckptKeep = true, keep
}

func (c control) Note(key string, v any) {
	if c.e.notes == nil {
		c.e.notes = map[string]any{}
	}
	c.e.notes[key] = v
}

var _ io.Writer = (*Console)(nil)
