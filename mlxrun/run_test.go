package mlxrun

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yai-dev/yai/lora"
	"github.com/yai-dev/yai/model"
	"github.com/yai-dev/yai/optim"
	"github.com/yai-dev/yai/train"
)

// TestQuickstartRecipe runs the shipped tiny quickstart recipe on the tiny model: a new run
// directory, one metrics line per step, adapters that load back, and a validation loss that
// ends lower than it started. A second run leaves a second directory.
func TestQuickstartRecipe(t *testing.T) {
	runs := t.TempDir()
	src, err := os.ReadFile(repoPath("recipes", "quickstart-tiny.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// The recipe's relative paths resolve against its own directory, which the test copies it
	// out of, so model and data are set to absolute paths.
	sets := []string{"model=" + tinyModel(t), "data=" + quickstartData()}
	res := runRecipe(t, runs, string(src), nil, sets...)
	if res.ExitCode != 0 {
		t.Fatalf("exit %d: %s", res.ExitCode, res.Reason)
	}
	if len(res.metrics) != 60 {
		t.Fatalf("%d metrics lines, want one per step (60)", len(res.metrics))
	}
	for i, m := range res.metrics {
		if m.Step != int64(i+1) || m.Tokens <= 0 || m.Loss <= 0 || m.MLXActive <= 0 {
			t.Fatalf("metrics line %d: %+v", i+1, m)
		}
	}
	var first, last float64
	for _, name := range []string{"result.json", "recipe.yaml", "run.log"} {
		if _, err := os.Stat(filepath.Join(res.RunDir, name)); err != nil {
			t.Errorf("run directory lacks %s", name)
		}
	}
	// run.log holds one JSON object per line; validation lines carry val_loss.
	log, _ := os.ReadFile(filepath.Join(res.RunDir, "run.log"))
	for _, line := range strings.Split(strings.TrimSpace(string(log)), "\n") {
		var rec struct {
			Msg     string  `json:"msg"`
			ValLoss float64 `json:"val_loss"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("run.log line %q: %v", line, err)
		}
		if rec.Msg == "validation" {
			if first == 0 {
				first = rec.ValLoss
			}
			last = rec.ValLoss
		}
	}
	if first == 0 || !(last < first-0.2) {
		t.Errorf("validation loss %v → %v: no visible drop", first, last)
	}

	// The adapters load back into the model, in yai as in mlx-lm's layout.
	adapters := filepath.Join(res.RunDir, "adapters")
	cfg, err := lora.ReadConfig(adapters)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Rank != 8 || cfg.NumLayers != 2 || cfg.Scale != 2 {
		t.Errorf("adapter_config.json: %+v", cfg)
	}
	m, err := model.Load(tinyModel(t), model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	a, err := lora.Load(m.Layers, adapters)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := train.NewTrainerWithAdapters(m, a, defaultOptim(t), train.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if len(a.Names) != 4 {
		t.Errorf("%d adapted modules, want 4", len(a.Names))
	}

	again := runRecipe(t, runs, string(src), nil, append(sets, "steps=2")...)
	if again.ExitCode != 0 || again.RunDir == res.RunDir {
		t.Fatalf("second run: exit %d dir %s", again.ExitCode, again.RunDir)
	}
	entries, _ := os.ReadDir(runs)
	if len(entries) != 2 {
		t.Errorf("%d run directories after two runs", len(entries))
	}
}

func defaultOptim(t *testing.T) optim.Config {
	t.Helper()
	cfg, err := optimizerConfig(defaultStep(), 10)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
