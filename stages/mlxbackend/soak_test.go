package mlxbackend

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/yai-dev/yai/internal/testenv"
	"github.com/yai-dev/yai/recipe"
)

// soakStages are the seed's full set of mechanisms: cache clearing by the seed's rule,
// selective reloads every 5 steps and above 70% of the limit, a growth trigger and a guard
// with the seed's 20% buffer.
const soakStages = seedClear + reloadStages + `  - id: leak
    kind: clear-cache
    when: growth > 1*MB
  - id: guard
    kind: guard
    with: {watch: [mlx.active], buffer: 0.2, action: checkpoint-and-stop}
`

// soakLimit is about 1.5 times the dry-run floor of the seed recipe on the tiny model.
func soakLimit(t testing.TB, steps int) int64 {
	t.Helper()
	path := filepath.Join(t.TempDir(), "recipe.yaml")
	if err := os.WriteFile(path, []byte(seedRecipe(t, steps, "1GB", soakStages)), 0o644); err != nil {
		t.Fatal(err)
	}
	plan, diags := recipe.Validate(path, nil, recipe.ValidateOptions{})
	if plan == nil {
		t.Fatalf("%s", diags.Format())
	}
	return plan.Decision.Budget.Floor() * 3 / 2
}

// soakWarmup is the step after which MLX active memory and the live arrays must stay flat:
// the first reload cycles and the first epoch's batch widths have been met by then.
const soakWarmup = 100

// soak runs the seed recipe for steps steps under soakLimit and checks that it never stops,
// that MLX active memory never passes the limit, and that it does not drift between the end
// of the warm-up and the last step. It returns the drift and the limit.
func soak(t testing.TB, steps int) (drift, limit int64, res runResult) {
	if steps < 2*soakWarmup || steps%10 != 0 {
		t.Fatalf("a soak of %d steps: want a multiple of 10 (the clearing and reload periods) of at least %d", steps, 2*soakWarmup)
	}
	limit = soakLimit(t, steps)
	res = runRecipe(t, t.TempDir(), seedRecipe(t, steps, fmt.Sprintf("%dB", limit), soakStages))
	if res.ExitCode != 0 || len(res.metrics) != steps {
		t.Fatalf("soak stopped: exit %d after %d steps: %s", res.ExitCode, len(res.metrics), res.Reason)
	}
	for _, m := range res.metrics {
		if m.MLXActive > limit {
			t.Fatalf("step %d: MLX active %d above the limit %d", m.Step, m.MLXActive, limit)
		}
	}
	warm := res.metrics[soakWarmup-1]
	end := res.metrics[steps-1]
	drift = end.MLXActive - warm.MLXActive
	if drift > 1<<20 || drift < -(1<<20) {
		t.Errorf("MLX active drifted %d bytes between step %d and step %d", drift, warm.Step, end.Step)
	}
	if end.MLXArrays != warm.MLXArrays {
		t.Errorf("live arrays %d at step %d, %d at step %d", end.MLXArrays, end.Step, warm.MLXArrays, warm.Step)
	}
	return drift, limit, res
}

// TestSoak is the seed's promise at the scale of the tiny model: a long run inside a limit of
// 1.5× the estimated floor, with no early stop, no step over the limit, and MLX active memory
// and live arrays flat after warm-up. The default tier runs 500 steps: flat over the 400
// after warm-up, 80 selective reloads and cache clearings, across the end of the first epoch
// of the 400 quickstart rows (at batch 1) into a newly shuffled one. The long tier runs the
// seed's 1,000 steps, across two epoch ends.
func TestSoak(t *testing.T) {
	soak(t, testenv.Size(t, "steps", 500, 1000))
}

// BenchmarkSoak5000Steps prints the soak's figures over 5,000 steps.
func BenchmarkSoak5000Steps(b *testing.B) {
	for range b.N {
		drift, limit, res := soak(b, 5000)
		var peak int64
		reloads := 0
		for _, m := range res.metrics {
			peak = max(peak, m.MLXActive)
			if fired(m, "reload") {
				reloads++
			}
		}
		last := res.metrics[len(res.metrics)-1]
		b.ReportMetric(float64(limit), "limit-bytes")
		b.ReportMetric(float64(peak), "max-active-bytes")
		b.ReportMetric(float64(drift), "drift-bytes")
		b.ReportMetric(float64(reloads), "reloads")
		b.ReportMetric(last.Elapsed/float64(len(res.metrics))*1e3, "ms/step")
	}
}
