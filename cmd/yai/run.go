package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/yai-dev/yai/mlxrun"
	"github.com/yai-dev/yai/recipe"
	"github.com/yai-dev/yai/runtime"
	"golang.org/x/term"
)

func init() {
	register(command{name: "run", summary: "run a recipe: train, writing a new run directory", run: runRun})
}

const runUsage = `
Usage: yai run [--set path=value]... [--runs-dir DIR] [--log-json] [--verbose] recipe.yaml

Validates the recipe, then runs it: setup stages in dependency order, the step loop firing
before-step, step, after-step (and on-eval), then teardown. Every run writes a new directory
under --runs-dir holding the resolved recipe and its sha256, metrics.jsonl (one line per step),
run.log and the adapters. Ctrl-C stops at the next step boundary, runs teardown (saving
adapters) and exits 130.

Exit status: 0 done, 1 invalid recipe or failed stage, 2 usage error, 3 a guard saved and
stopped the run, 4 a guard aborted it, 130 interrupted.`

func runRun(args []string) int {
	fs := newFlagSet("run", runUsage)
	var sets listFlag
	fs.Var(&sets, "set", "override a recipe value, e.g. --set stages.train.with.lr=2e-4 (repeatable)")
	runsDir := fs.String("runs-dir", "runs", "parent directory of run directories")
	logJSON := fs.Bool("log-json", false, "log JSON lines instead of text")
	verbose := fs.Bool("verbose", false, "log debug lines too")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return usageError(fs, "want exactly one recipe file, got %d arguments", len(pos))
	}
	env := mlxrun.Environment()
	plan, diags := recipe.Validate(pos[0], sets, recipe.ValidateOptions{Env: env})
	fmt.Fprint(os.Stderr, diags.Format())
	if plan == nil {
		return 1
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	console := runtime.NewConsole(os.Stderr, term.IsTerminal(int(os.Stderr.Fd())))
	ctx, stop := runtime.WithInterrupt(context.Background(), console)
	defer stop()
	res, err := runtime.Run(ctx, plan, runtime.RunOptions{
		RunsDir: *runsDir, Memory: mlxrun.MLXMemory{}, Env: env,
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
