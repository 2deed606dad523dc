package mlxbackend

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/yai-dev/yai/internal/data"
	"github.com/yai-dev/yai/internal/lora"
	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/tokenizer"
	"github.com/yai-dev/yai/internal/train"
	"github.com/yai-dev/yai/recipe"
	"github.com/yai-dev/yai/stages"
	"github.com/yai-dev/yai/stages/stage"
)

// governance is the monitoring side of the seed recipe: triggers evaluated every step, a guard
// on MLX memory and RSS, a growth trigger, and a log line every 10 steps. Nothing here fires
// an action on a healthy run, so the benchmark measures what watching costs.
const governance = `  - id: leak
    kind: clear-cache
    when: growth > 100*MB
  - id: proactive
    kind: clear-cache
    when: mlx.active > 0.7*limit
  - id: guard
    kind: guard
    with: {watch: [mlx.active, rss], buffer: 0.2, action: checkpoint-and-stop}
  - id: memory
    kind: log
    every: 10
    with: {figures: [step, loss, mlx.active, mlx.peak, mlx.cache, growth, rss]}
`

// bareStepSeconds trains the seed shape with the trainer alone (no engine, no monitor, no
// triggers) and returns the mean seconds per step after warm-up steps.
func bareStepSeconds(b *testing.B, warmup, steps int) float64 {
	dir := tinyModel(b)
	m, err := model.Load(dir, model.LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Free()
	tok, err := tokenizer.Load(dir)
	if err != nil {
		b.Fatal(err)
	}
	ds, err := data.LoadFile(filepath.Join(quickstartData(), "train.jsonl"), tok, data.Options{})
	if err != nil {
		b.Fatal(err)
	}
	it, err := data.NewBatches(ds, data.BatchConfig{BatchSize: 1, MaxSeqLength: 128, Loop: true, Random: data.NewNumpyRandom(0)})
	if err != nil {
		b.Fatal(err)
	}
	defer it.Close()
	step := stages.Step.Defaults()
	step.Optimizer, step.LR, step.GradCheckpoint = "adamw", 1e-4, true
	opt, err := optimizerConfig(step, warmup+steps)
	if err != nil {
		b.Fatal(err)
	}
	tr, err := train.NewTrainer(m, lora.Config{Rank: 16, Alpha: 32, NumLayers: 4, Keys: []string{"self_attn.q_proj"}}, opt, train.Options{GradCheckpoint: true})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	var start time.Time
	for i := range warmup + steps {
		if i == warmup {
			start = time.Now()
		}
		batch, _ := it.Next()
		if _, err := tr.Step(toTrainBatch(batch)); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start).Seconds() / float64(steps)
}

// governedStepSeconds runs the same training through the engine with the governance stages
// and returns the mean seconds per step after warm-up, from metrics.jsonl.
func governedStepSeconds(b *testing.B, warmup, steps int) float64 {
	res := runRecipe(b, b.TempDir(), seedRecipe(b, warmup+steps, "1GB", governance))
	if res.ExitCode != 0 || len(res.metrics) != warmup+steps {
		b.Fatalf("governed run: exit %d, %d steps", res.ExitCode, len(res.metrics))
	}
	return (res.metrics[warmup+steps-1].Elapsed - res.metrics[warmup-1].Elapsed) / float64(steps)
}

// watchOnlyStepSeconds runs the governance stages with no training at all: what remains per
// step is the cost of the monitor, the triggers, the guard and the log, measured without the
// noise of a training step around it.
func watchOnlyStepSeconds(b *testing.B, steps int) float64 {
	src := fmt.Sprintf("version: 1\nname: watch-only\nmodel: %s\nsteps: %d\nmemory: {limit: 1GB}\nstages:\n%s", tinyModel(b), steps, governance)
	res := runRecipe(b, b.TempDir(), src)
	if res.ExitCode != 0 || len(res.metrics) != steps {
		b.Fatalf("watch-only run: exit %d, %d steps", res.ExitCode, len(res.metrics))
	}
	return (res.metrics[steps-1].Elapsed - res.metrics[0].Elapsed) / float64(steps-1)
}

// BenchmarkGovernanceOverhead compares a step with the memory monitor, triggers and guard to
// the same step without them, alternating the two in one run. The seed recipe's clear-cache
// rule is left out of both: clearing is an action, not monitoring.
func BenchmarkGovernanceOverhead(b *testing.B) {
	const warmup, steps = 20, 200
	var bare, governed, watch float64
	for range b.N {
		bare += bareStepSeconds(b, warmup, steps)
		governed += governedStepSeconds(b, warmup, steps)
		watch += watchOnlyStepSeconds(b, 2000)
	}
	n := float64(b.N)
	b.ReportMetric(bare/n*1e3, "bare-ms/step")
	b.ReportMetric(governed/n*1e3, "governed-ms/step")
	b.ReportMetric((governed/bare-1)*100, "end-to-end-overhead-%")
	b.ReportMetric(watch/n*1e6, "watch-only-us/step")
	b.ReportMetric(watch/bare*100, "watch-share-of-step-%")
}

// quietControl is a Control that records nothing, for driving stages outside the engine.
type quietControl struct{}

func (quietControl) Report(stage.Report)                   {}
func (quietControl) ReportEval(float64)                    {}
func (quietControl) Stop(stage.Stop)                       {}
func (quietControl) Note(string, any)                      {}
func (quietControl) Checkpoint(int)                        {}
func (quietControl) RunKind(context.Context, string) error { return nil }

// BenchmarkAdaptOverhead measures what the governor costs a step when nothing changes: its
// prediction (next batch's shape, the estimate per schedule, calibration) against the step
// it governs, both timed in the same run on the micro model.
func BenchmarkAdaptOverhead(b *testing.B) {
	src := governedRecipe(b, 1, "2GB", quickstartData(), adaptStage)
	dir := b.TempDir()
	path := filepath.Join(dir, "r.yaml")
	os.WriteFile(path, []byte(src), 0o644)
	env := Environment()
	plan, ds := recipe.Validate(path, nil, recipe.ValidateOptions{Env: env})
	if plan == nil {
		b.Fatal(ds)
	}
	builder, err := env.Open(plan.RunInfo())
	if err != nil {
		b.Fatal(err)
	}
	defer builder.Close()
	built := map[string]stage.Stage{}
	for _, s := range plan.Order {
		kind, _ := stages.Get(s.Kind)
		if built[s.ID], err = builder.Build(kind, s.Config); err != nil {
			b.Fatal(err)
		}
	}
	sess := &stage.Session{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Figures: stage.NewFigures(), RunDir: dir, Memory: MLXMemory{}, Ctl: quietControl{}}
	sess.Figures.Limit = 2 * stages.GB
	ctx := context.Background()
	for _, id := range []string{"load", "lora", "data"} {
		if err := built[id].Run(ctx, sess); err != nil {
			b.Fatal(err)
		}
	}
	const rounds = 200
	var stepT, adaptT time.Duration
	for range b.N {
		for range rounds {
			t0 := time.Now()
			if err := built["adapt"].Run(ctx, sess); err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			if err := built["train"].Run(ctx, sess); err != nil {
				b.Fatal(err)
			}
			adaptT, stepT = adaptT+t1.Sub(t0), stepT+time.Since(t1)
		}
	}
	n := float64(b.N * rounds)
	b.ReportMetric(float64(stepT.Microseconds())/n/1e3, "step-ms")
	b.ReportMetric(float64(adaptT.Microseconds())/n, "adapt-us")
	b.ReportMetric(100*float64(adaptT)/float64(stepT), "adapt-overhead-%")
}
