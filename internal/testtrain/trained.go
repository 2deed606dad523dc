// Package testtrain trains small real adapters for tests: a short run with the trainer, so
// that their update is what training gives, not random numbers.
package testtrain

import (
	"path/filepath"
	"testing"

	"github.com/yai-dev/yai/internal/data"
	"github.com/yai-dev/yai/internal/generate"
	"github.com/yai-dev/yai/internal/lora"
	"github.com/yai-dev/yai/internal/optim"
	"github.com/yai-dev/yai/internal/testenv"
	"github.com/yai-dev/yai/internal/train"
)

// QuickstartData is the directory of the tiny quickstart's data (train.jsonl, valid.jsonl):
// short lines of text.
func QuickstartData(tb testing.TB) string {
	return filepath.Join(testenv.ModuleRoot(tb), "recipes", "data", "quickstart")
}

// TrainedAdapter trains rank-8 adapters (scale 2) on q_proj and v_proj of the last two
// blocks of the model in dir with Adam at learning rate lr for steps batches of 4 quickstart
// rows, and returns their directory. A small lr gives a real but small update, such as
// re-quantizing rounds away.
func TrainedAdapter(tb testing.TB, dir string, lr float64, steps int) string {
	tb.Helper()
	l, err := generate.Load(dir, "")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Free()
	ds, err := data.LoadFile(filepath.Join(QuickstartData(tb), "train.jsonl"), l.Tokenizer, data.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	opt := optim.DefaultConfig()
	opt.Name, opt.LearningRate = "adam", lr
	tr, err := train.NewTrainer(l.Model, lora.Config{Rank: 8, Scale: 2, NumLayers: 2, Seed: 1,
		Keys: []string{"self_attn.q_proj", "self_attn.v_proj"}}, opt, train.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	defer tr.Close()
	it, err := data.NewBatches(ds, data.BatchConfig{BatchSize: 4, MaxSeqLength: 128, Loop: true})
	if err != nil {
		tb.Fatal(err)
	}
	defer it.Close()
	for range steps {
		b, _ := it.Next()
		tb2 := train.Batch{Tokens: b.Tokens, Rows: b.Size, Cols: b.Width, Offsets: make([]int, b.Size), Lengths: make([]int, b.Size)}
		for i := range b.Size {
			tb2.Offsets[i], tb2.Lengths[i] = int(b.Offsets[i]), int(b.Lengths[i])
		}
		if _, err := tr.Step(tb2); err != nil {
			tb.Fatal(err)
		}
	}
	out := filepath.Join(tb.TempDir(), "adapters")
	if err := tr.SaveAdapters(out); err != nil {
		tb.Fatal(err)
	}
	return out
}
