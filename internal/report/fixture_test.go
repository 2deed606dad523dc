package report

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// fakeRun writes a run directory as the engine lays it out: 40 steps of a recipe with a
// clear-cache stage every 10 steps, a reload every 15, a mid-run checkpoint at step 20 and
// a guard that notes a crossing at steps 33 and 34; val_loss every 10 steps; MLX peaks of
// scale × (900 + 30 × (step mod 7)) MB against a 1 GB limit (at scale 1, 17 steps over it,
// the worst 1.08 GB); the last metrics line torn when torn is set, and no result.json when
// exit < 0.
func fakeRun(t *testing.T, parent, name string, exit int, torn bool, scale float64) string {
	t.Helper()
	dir := filepath.Join(parent, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	recipe := `version: 1
name: fake
stages:
  - {id: load, kind: load-4bit}
  - {id: train, kind: step}
  - {id: clear, kind: clear-cache, every: 10}
  - {id: reload, kind: reload-selective, every: 15}
  - {id: ckpt, kind: save-adapter, every: 20}
  - {id: guard, kind: guard, with: {buffer: 0.25}}
`
	os.WriteFile(filepath.Join(dir, "recipe.yaml"), []byte(recipe), 0o644)
	os.WriteFile(filepath.Join(dir, "recipe.sha256"), []byte("ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12  recipe.yaml\n"), 0o644)
	f, err := os.Create(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const steps = 40
	for s := 1; s <= steps; s++ {
		fired := []string{"train", "guard"}
		for _, st := range []struct {
			id    string
			every int
		}{{"clear", 10}, {"reload", 15}, {"ckpt", 20}} {
			if s%st.every == 0 {
				fired = append(fired, st.id)
			}
		}
		line := map[string]any{
			"step": s, "loss": scale * (3 - float64(s)*0.05), "tokens": 100 + s, "elapsed": 0.5 * float64(s),
			"tok_s": 0.0, "lr": 1e-4, "mlx_active": int64(scale * float64(400e6+float64(s)*5e6)),
			"mlx_peak": int64(scale * float64(900e6+float64(s%7)*30e6)), "mlx_cache": int64(50e6 * float64(s%10)),
			"mlx_arrays": 200, "rss": int64(scale * float64(1.1e9+float64(s)*2e6)), "limit": int64(1e9), "growth": 0,
			"fired": fired,
		}
		if s%10 == 0 {
			line["val_loss"] = scale * (3.2 - float64(s)*0.04)
		}
		if s == 33 || s == 34 {
			line["notes"] = map[string]any{"guard": fmt.Sprintf("rss crossed at step %d", s)}
		}
		b, _ := json.Marshal(line)
		f.Write(append(b, '\n'))
	}
	if torn {
		f.WriteString(`{"step":41,"loss":1.0,"tok`)
	}
	if exit >= 0 {
		os.WriteFile(filepath.Join(dir, "result.json"), []byte(fmt.Sprintf(`{"exit_code": %d, "steps": %d, "reason": "", "error": ""}`+"\n", exit, steps)), 0o644)
	}
	return dir
}
