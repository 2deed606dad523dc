package mlxbackend

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yai-dev/yai/mlx"
	"github.com/yai-dev/yai/stages"
	"github.com/yai-dev/yai/stages/stage"
)

// seedRecipe is the seed's recipe shape (4-bit model, LoRA rank 16 / alpha 32 on q_proj of 4
// layers, batch 1, cache clearing by the seed's rule, selective reloads, a growth trigger and a
// guard) scaled to the tiny model: the stages that train, with extra appended (seedClear,
// reloadStages, a guard…).
func seedRecipe(t testing.TB, steps int, limit string, extra string) string {
	return fmt.Sprintf(`version: 1
name: seed-tiny
model: %s
data: %s
steps: %d
memory:
  limit: %s
stages:
  - id: load
    kind: load-4bit
  - id: lora
    kind: attach-lora
    after: [load]
    with: {rank: 16, alpha: 32, layers: 4, keys: [self_attn.q_proj]}
  - id: data
    kind: data
    after: [load]
    with: {batch_size: 1, max_seq_length: 128}
  - id: train
    kind: step
    with: {optimizer: adamw, lr: 1e-4, grad_checkpoint: true}
%s`, tinyModel(t), quickstartData(), steps, limit, extra)
}

// seedClear is the seed's cache rule: every 10 steps, every 5 under a 10 GB limit.
const seedClear = `  - id: clear
    kind: clear-cache
    when: "step % (limit < 10*GB ? 5 : 10) == 0"
`

const reloadStages = `  - id: reload
    kind: reload-selective
    when: step % 5 == 0 || mlx.active > 0.7*limit
`

// TestSelectiveReloadIsExact runs the seed recipe with reload-selective every 5 steps and
// without it: the losses are bit-identical over 100 steps, and no reload leaves more MLX
// memory active than before it.
func TestSelectiveReloadIsExact(t *testing.T) {
	without := runRecipe(t, t.TempDir(), seedRecipe(t, 100, "1GB", seedClear))
	with := runRecipe(t, t.TempDir(), seedRecipe(t, 100, "1GB", seedClear+reloadStages))
	if without.ExitCode != 0 || with.ExitCode != 0 {
		t.Fatalf("exit codes %d and %d", without.ExitCode, with.ExitCode)
	}
	if len(without.metrics) != 100 || len(with.metrics) != 100 {
		t.Fatalf("%d and %d metrics lines", len(without.metrics), len(with.metrics))
	}
	reloads := 0
	for i := range with.metrics {
		a, b := without.metrics[i], with.metrics[i]
		if a.Loss != b.Loss {
			t.Errorf("step %d: loss %v without reloads, %v with", i+1, a.Loss, b.Loss)
		}
		if !fired(b, "reload") {
			continue
		}
		reloads++
		before, after := b.Notes["reload_active_before"].(float64), b.Notes["reload_active_after"].(float64)
		if after > before {
			t.Errorf("step %d: MLX active %v after the reload, %v before", i+1, after, before)
		}
	}
	if reloads != 20 {
		t.Errorf("%d reloads, want 20 (every 5 steps)", reloads)
	}
}

// leakConfig sets how much a test-leak stage retains per step.
type leakConfig struct {
	MB    int `yaml:"mb" default:"4" min:"1" doc:"megabytes retained per step"`
	After int `yaml:"after" default:"0" min:"0" doc:"first step that leaks"`
}

// leaked holds what test-leak retains, freed by the test.
var leaked []*mlx.Array

// The test-leak stage kind is for these tests only: it needs no backend, so every environment
// made in this test binary runs it.
var _ = stages.Define(stages.Def[leakConfig]{
	Name: "test-leak", Summary: "retain memory every step (tests only)",
	Events: []stage.Event{stage.AfterStep},
	Build: func(c *leakConfig) (stage.Stage, error) {
		return stage.StageFunc(func(ctx context.Context, s *stage.Session) error {
			if s.Figures.Step < int64(c.After) {
				return nil
			}
			a := mlx.Zeros([]int{c.MB << 18}, mlx.Float32)
			mlx.Eval(a)
			leaked = append(leaked, a)
			return nil
		}), nil
	},
})

func freeLeaked() {
	mlx.Free(leaked...)
	leaked = nil
}

// TestGrowthTriggerCatchesLeak injects a stage that retains 4 MB per step from step 10. A
// clear-cache stage on `growth > 1*MB` fires within 20 steps of the leak's start; without the
// trigger the metrics show active memory climbing by the leak's rate.
func TestGrowthTriggerCatchesLeak(t *testing.T) {
	defer freeLeaked()
	leak := `  - id: leak
    kind: test-leak
    with: {mb: 4, after: 10}
`
	catch := `  - id: leak-response
    kind: clear-cache
    when: growth > 1*MB
`
	res := runRecipe(t, t.TempDir(), seedRecipe(t, 40, "1GB", leak+catch))
	freeLeaked()
	if res.ExitCode != 0 {
		t.Fatalf("exit %d: %s", res.ExitCode, res.Reason)
	}
	firstFire := 0
	for _, m := range res.metrics {
		if fired(m, "leak-response") {
			firstFire = int(m.Step)
			break
		}
	}
	if firstFire == 0 || firstFire < 10 || firstFire > 30 {
		t.Fatalf("leak response first fired at step %d, want within 20 steps of step 10", firstFire)
	}
	for _, m := range res.metrics[:9] {
		if fired(m, "leak-response") {
			t.Errorf("leak response fired at step %d, before any leak", m.Step)
		}
	}

	plain := runRecipe(t, t.TempDir(), seedRecipe(t, 30, "1GB", leak))
	freeLeaked()
	first, last := plain.metrics[14], plain.metrics[29]
	perStep := float64(last.MLXActive-first.MLXActive) / 15
	if perStep < 3.9e6 || perStep > 4.4e6 {
		t.Errorf("without the trigger active memory grew %.0f bytes per step, want about 4 MiB", perStep)
	}
	if last.Growth < 3.9e6 {
		t.Errorf("growth %v at the end of a leaking run", last.Growth)
	}
}

// TestGuardCheckpointsAndStops sets the limit above the resident floor (so the recipe is
// valid) but below what a step needs at its peak: the guard saves adapters and optimizer
// state, stops with exit code 3, and says which figure crossed what at which step.
func TestGuardCheckpointsAndStops(t *testing.T) {
	guard := `  - id: guard
    kind: guard
    with: {watch: [mlx.active, mlx.peak], buffer: 0.2, action: checkpoint-and-stop}
  - id: save
    kind: save-adapter
    on: teardown
`
	res := runRecipe(t, t.TempDir(), seedRecipe(t, 50, "1MB", guard))
	if res.ExitCode != stage.ExitCheckpointStop {
		t.Fatalf("exit %d (%s), want %d", res.ExitCode, res.Reason, stage.ExitCheckpointStop)
	}
	// 1 MB plus the 20% buffer is 1.2 MB; a step's activations and logits take more.
	threshold := "crossed " + stages.Bytes(1_200_000).String()
	if !strings.Contains(res.Reason, "mlx.peak") || !strings.Contains(res.Reason, threshold) || !strings.HasSuffix(res.Reason, "at step 1") {
		t.Errorf("stop reason %q does not name figure, threshold and step", res.Reason)
	}
	if res.Steps != 1 || len(res.metrics) != 1 {
		t.Errorf("stopped after %d steps with %d metrics lines, want 1", res.Steps, len(res.metrics))
	}
	for _, f := range []string{"adapters.safetensors", "adapter_config.json", "optimizer.safetensors"} {
		if _, err := os.Stat(filepath.Join(res.RunDir, "adapters", f)); err != nil {
			t.Errorf("checkpoint lacks %s", f)
		}
	}
	raw, err := os.ReadFile(filepath.Join(res.RunDir, "result.json"))
	if err != nil {
		t.Fatal(err)
	}
	var result struct {
		ExitCode int    `json:"exit_code"`
		Reason   string `json:"reason"`
	}
	if err := json.Unmarshal(raw, &result); err != nil || result.ExitCode != 3 || result.Reason != res.Reason {
		t.Errorf("result.json %s (%v)", raw, err)
	}
}

// TestTriggersOnRealMLX fires clear-cache on `step % 3 == 0` and a log stage on
// `mlx.cache > 100*KB` during real training: the first fires on exactly those steps, the
// second exactly on the steps whose MLX cache, read after the clearing, is above 100 KB.
func TestTriggersOnRealMLX(t *testing.T) {
	triggers := `  - id: every3
    kind: clear-cache
    when: step % 3 == 0
  - id: bigcache
    kind: log
    after: [every3]
    when: mlx.cache > 100*KB
    with: {figures: [step, mlx.cache]}
`
	res := runRecipe(t, t.TempDir(), seedRecipe(t, 12, "1GB", triggers))
	if res.ExitCode != 0 || len(res.metrics) != 12 {
		t.Fatalf("exit %d after %d steps", res.ExitCode, len(res.metrics))
	}
	above, below := 0, 0
	for _, m := range res.metrics {
		if got, want := fired(m, "every3"), m.Step%3 == 0; got != want {
			t.Errorf("step %d: every3 fired %v", m.Step, got)
		}
		if got, want := fired(m, "bigcache"), m.MLXCache > 100_000; got != want {
			t.Errorf("step %d: bigcache fired %v with mlx.cache %d", m.Step, got, m.MLXCache)
		}
		if m.MLXCache > 100_000 {
			above++
		} else {
			below++
		}
	}
	if above == 0 || below == 0 {
		t.Errorf("the cache was above 100 KB on %d steps and below on %d: the trigger was never tested both ways", above, below)
	}
}
