package mlxbackend

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/yai-dev/yai/internal/data"
	"github.com/yai-dev/yai/internal/lora"
	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/optim"
	"github.com/yai-dev/yai/internal/tokenizer"
	"github.com/yai-dev/yai/internal/train"
	"github.com/yai-dev/yai/stages"
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
	res := runRecipe(t, runs, string(src), sets...)
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

	again := runRecipe(t, runs, string(src), append(sets, "steps=2")...)
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
	cfg, err := optimizerConfig(stages.Step.Defaults(), 10)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// With shuffle: false the data stage serves file order, and the adapters a run saves carry
// the values it trained: loaded back into a fresh model, they reproduce, bit for bit, the
// validation loss the run's final eval reported over the first validation batches.
func TestSavedAdaptersReproduceFinalValLoss(t *testing.T) {
	src, err := os.ReadFile(repoPath("recipes", "quickstart-tiny.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	res := runRecipe(t, t.TempDir(), string(src), "model="+tinyModel(t), "data="+quickstartData(),
		"steps=15", "stages.data.with.shuffle=false")
	if res.ExitCode != 0 {
		t.Fatalf("exit %d: %s", res.ExitCode, res.Reason)
	}
	var final float64
	log, _ := os.ReadFile(filepath.Join(res.RunDir, "run.log"))
	for line := range strings.Lines(string(log)) {
		var rec struct {
			Msg     string  `json:"msg"`
			Stage   string  `json:"stage"`
			ValLoss float64 `json:"val_loss"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "validation" && rec.Stage == "final" {
			final = rec.ValLoss
		}
	}
	if final == 0 {
		t.Fatal("run.log has no final validation line")
	}

	m, err := model.Load(tinyModel(t), model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	a, err := lora.Load(m.Layers, filepath.Join(res.RunDir, "adapters"))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := train.NewTrainerWithAdapters(m, a, defaultOptim(t), train.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	for i, p := range a.Params() {
		if i%2 == 1 && slices.Max(p.Floats()) == 0 && slices.Min(p.Floats()) == 0 {
			t.Errorf("%s is all zeros: the saved adapters are the untrained initialisation", a.ParamNames()[i])
		}
	}
	tok, err := tokenizer.Load(tinyModel(t))
	if err != nil {
		t.Fatal(err)
	}
	valid, err := data.LoadFile(filepath.Join(quickstartData(), "valid.jsonl"), tok, data.Options{})
	if err != nil {
		t.Fatal(err)
	}
	it, err := data.NewBatches(valid, data.BatchConfig{BatchSize: 4, MaxSeqLength: 128, KeepOrder: true})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var batches []train.Batch
	for range 4 {
		b, ok := it.Next()
		if !ok {
			t.Fatal("fewer than 4 validation batches")
		}
		batches = append(batches, toTrainBatch(b))
	}
	got, err := tr.Evaluate(batches)
	if err != nil {
		t.Fatal(err)
	}
	if got != final {
		t.Errorf("loaded adapters give val_loss %v over the first 4 validation batches; the run reported %v", got, final)
	}
}
