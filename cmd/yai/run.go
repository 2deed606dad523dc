package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"

	"github.com/yai-dev/yai/recipe"
	"github.com/yai-dev/yai/runtime"
	"github.com/yai-dev/yai/stages"
	"github.com/yai-dev/yai/stages/mlxbackend"
	"golang.org/x/term"
)

func init() {
	register(command{name: "run", summary: "run a recipe, or resume a run: train, writing a new run directory", run: runRun})
}

const runUsage = `
Usage: yai run [--set path=value]... [--runs-dir DIR] [--strict] [--log-json] [--verbose] recipe.yaml
       yai run --resume RUN_DIR|CHECKPOINT_DIR [--force] [--set path=value]... [recipe.yaml]
       yai run --ranks N | --hostfile hosts.json [--port P] [flags as above] recipe.yaml

Validates the recipe, then runs it: setup stages in dependency order, the step loop firing
before-step, step, after-step (and on-eval), then teardown. Every run writes a new directory
under --runs-dir holding the resolved recipe and its sha256, metrics.jsonl (one line per step),
run.log, result.json, the adapters and the checkpoints a checkpoint stage asks for.

--resume continues RUN_DIR from its newest complete checkpoint (or from the checkpoint
directory given, RUN_DIR/checkpoints/step-N) into a new run directory that
names its parent: steps, metrics and the learning-rate schedule go on where they stopped, and
the result is bit for bit the one of a run that never stopped. The recipe is the checkpoint's
own unless one is given; --set applies on top (--set steps=N extends a finished run). Changes
that cannot alter the steps already done (memory limits, steps, triggers and settings of
clear-cache, reload-selective, guard, log, eval, checkpoint, save-adapter) are printed and
allowed; any other is refused with the diff, unless --force. Data files whose contents changed
since the checkpoint (their sha256 is kept in it) are refused the same way. A checkpoint at
or past steps has nothing left to train: an error (raise steps with --set steps=N).

When the memory estimate of a step is over memory.limit, the run computes each step in a way
that fits (the batch split into micro-batches whose token-weighted gradients add up to the
whole batch's, or gradient checkpointing on): the same update with less memory. An adapt stage
keeps adjusting that schedule to the batches as they come. --strict runs the recipe as
written instead.

--ranks N trains data-parallel with N processes on this machine, over the recipe's
distributed.backend: the ring on 127.0.0.1, or NCCL with a GPU per rank; --hostfile trains over the machines of an mlx.launch hostfile, one rank per host,
started over ssh in the same directory. Each rank takes batch_size/N rows of every batch;
gradients are summed over the ranks and weighted by tokens, so the update is the one of a
single process on the whole batch. Rank 0 writes the run directory; rank N writes rank-N.log
there. A rank that fails or disappears stops every rank within distributed.peer_timeout.
A recipe's distributed.ranks above 1 launches that many local ranks without the flag.

SIGINT (Ctrl-C), SIGTERM and SIGHUP stop the run at the next step boundary: a checkpoint is
written, teardown saves the adapters, and yai exits 128 + the signal's number. A second
signal quits at once.

Exit status: 0 done, 1 invalid recipe or failed stage, 2 usage error, 3 a guard saved and
stopped the run, 4 a guard aborted it, 5 a step's loss or gradient was not finite (the step
was not applied), 129 SIGHUP, 130 SIGINT, 143 SIGTERM.`

func runRun(args []string) int {
	fs := newFlagSet("run", runUsage)
	var sets listFlag
	fs.Var(&sets, "set", "override a recipe value, e.g. --set stages.train.with.lr=2e-4 (repeatable)")
	runsDir := fs.String("runs-dir", "runs", "parent directory of run directories")
	logJSON := fs.Bool("log-json", false, "log JSON lines instead of text")
	verbose := fs.Bool("verbose", false, "log debug lines too")
	resumeDir := fs.String("resume", "", "continue this run directory from its newest checkpoint, or from the checkpoint directory given (RUN_DIR/checkpoints/step-N)")
	force := fs.Bool("force", false, "with --resume: accept recipe changes that alter the math already done")
	strict := fs.Bool("strict", false, "run as written: no schedule that splits the batch or checkpoints to fit the limit, and a guard that would adapt saves and stops")
	ranksN := fs.Int("ranks", 0, "train data-parallel with N processes on this machine (ring over 127.0.0.1, or NCCL with a GPU each)")
	hostfile := fs.String("hostfile", "", "train data-parallel over the machines of an mlx.launch hostfile (JSON), one rank per host")
	port := fs.Int("port", 32323, "with --hostfile: the ring's first port, one more per address (mlx.launch's --starting-port); the heartbeat takes the next")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	world, hf, err := worldOf(fs, *ranksN, *hostfile)
	if err != nil {
		return usageError(fs, "%v", err)
	}
	// the ring takes a port per rank from --port, the heartbeat the next one
	if err := inRange("port", *port, 1, 65535-max(world, 1)); err != nil {
		return usageError(fs, "%v", err)
	}
	if world > 0 {
		sets = append(sets, "distributed.ranks="+strconv.Itoa(world))
	}
	env := mlxbackend.Environment()
	var plan *recipe.Plan
	var resume *runtime.Resume
	switch {
	case *resumeDir != "":
		if len(pos) > 1 {
			return usageError(fs, "want at most one recipe file with --resume, got %d arguments", len(pos))
		}
		open := runtime.OpenResume
		if inRank() {
			open = runtime.OpenResumeShared // the launcher holds the lock for every rank
		}
		if resume, err = open(*resumeDir); err != nil {
			fmt.Fprintln(os.Stderr, "yai run:", err)
			return 1
		}
		defer resume.Close()
		if plan, code = resumePlan(resume, pos, sets, *force, *strict, env); plan == nil {
			return code
		}
	case *force:
		return usageError(fs, "--force only applies with --resume")
	case len(pos) != 1:
		return usageError(fs, "want exactly one recipe file, got %d arguments", len(pos))
	default:
		var diags recipe.Diagnostics
		plan, diags = recipe.Validate(pos[0], sets, recipe.ValidateOptions{Env: env, Strict: *strict})
		fmt.Fprint(os.Stderr, diags.Format())
		if plan == nil {
			return 1
		}
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	switch {
	case inRank():
		return runAsRank(plan, resume, *logJSON, level)
	case plan.Recipe.Distributed.Ranks > 1:
		return launchRanks(plan, hf, *port, *runsDir, runFlags{sets: sets, logJSON: *logJSON, verbose: *verbose,
			resumeDir: *resumeDir, force: *force, recipe: pos})
	}
	console := runtime.NewConsole(os.Stderr, term.IsTerminal(int(os.Stderr.Fd())))
	ctx, stop := runtime.WithSignals(context.Background(), console)
	defer stop()
	res, err := runtime.Run(ctx, plan, runtime.RunOptions{
		RunsDir: *runsDir, Memory: mlxbackend.MLXMemory{}, Env: env, Resume: resume,
		Console: console, LogJSON: *logJSON, Level: level,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "yai run:", err)
	}
	if res.RunDir != "" {
		fmt.Fprintln(os.Stderr, "run directory:", res.RunDir)
	}
	return res.ExitCode
}

// resumePlan validates the recipe a resume runs with (the checkpoint's, or the one given)
// and checks what changed since the checkpoint. It returns nil and an exit code when the
// resume must not go on.
func resumePlan(resume *runtime.Resume, pos, sets []string, force, strict bool, env *stages.Environment) (*recipe.Plan, int) {
	ckptFile, ckptSrc, dir, err := resume.Recipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "yai run:", err)
		return nil, 1
	}
	old, diags := recipe.Load(ckptFile, ckptSrc, nil)
	if old == nil || diags.HasErrors() {
		fmt.Fprint(os.Stderr, diags.Format())
		return nil, 1
	}
	old.Dir = dir
	opts := recipe.ValidateOptions{Env: env, Strict: strict}
	var plan *recipe.Plan
	if len(pos) == 1 {
		plan, diags = recipe.Validate(pos[0], sets, opts)
	} else {
		opts.Dir = dir
		plan, diags = recipe.ValidateSource(ckptFile, ckptSrc, sets, opts)
	}
	fmt.Fprint(os.Stderr, diags.Format())
	if plan == nil {
		return nil, 1
	}
	changes := recipe.Drift(old, plan.Recipe)
	drift := recipe.DriftDiagnostics(plan.Recipe, changes, force)
	fmt.Fprint(os.Stderr, drift.Format())
	if drift.HasErrors() {
		return nil, 1
	}
	if err := resume.CheckSteps(plan.Recipe.Steps); err != nil {
		fmt.Fprintln(os.Stderr, "yai run:", err)
		return nil, 1
	}
	edited, err := resume.DataChanges(plan.RunInfo().DataDir, plan.DataFiles())
	if err != nil {
		fmt.Fprintln(os.Stderr, "yai run:", err)
		return nil, 1
	}
	for _, c := range edited {
		if !force {
			fmt.Fprintf(os.Stderr, "yai run: resume: %s; the steps already done trained on other data (--force to continue anyway)\n", c)
			continue
		}
		fmt.Fprintf(os.Stderr, "yai run: warning: resume: %s (accepted with --force)\n", c)
		resume.Forced = append(resume.Forced, c)
	}
	if len(edited) > 0 && !force {
		return nil, 1
	}
	for _, c := range changes {
		if c.Safe {
			fmt.Fprintln(os.Stderr, "resume: allowed change:", c)
		} else {
			resume.Forced = append(resume.Forced, c.String())
		}
	}
	fmt.Fprintf(os.Stderr, "resuming %s from step %d (%s)\n", resume.Parent, resume.Step(), resume.Checkpoint)
	return plan, 0
}
