package mlxbackend

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/yai-dev/yai/internal/data"
	"github.com/yai-dev/yai/internal/evaluate"
	"github.com/yai-dev/yai/internal/generate"
)

// An eval stage with split: test notes test_loss and test_ppl in the step's metrics line,
// equal to evaluating the saved adapters on test.jsonl outside the run.
func TestEvalStageTestSplit(t *testing.T) {
	dataDir := t.TempDir()
	for _, f := range []string{"train.jsonl", "valid.jsonl"} {
		rows, err := os.ReadFile(filepath.Join(quickstartData(), f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dataDir, f), rows, 0o644)
		if f == "valid.jsonl" {
			os.WriteFile(filepath.Join(dataDir, "test.jsonl"), rows, 0o644)
		}
	}
	src := `version: 1
name: test-split
model: m
data: d
steps: 4
memory: {limit: 2GB}
stages:
  - {id: load, kind: load-4bit}
  - {id: lora, kind: attach-lora, after: [load], with: {rank: 4, alpha: 8, layers: 2, keys: [self_attn.q_proj]}}
  - {id: data, kind: data, after: [load], with: {batch_size: 4, max_seq_length: 128}}
  - {id: train, kind: step, with: {lr: 1e-2}}
  - {id: test, kind: eval, every: 4, with: {split: test, batches: 1000}}
  - {id: save, kind: save-adapter, on: teardown}
`
	res := runRecipe(t, t.TempDir(), src, "model="+tinyModel(t), "data="+dataDir)
	if res.ExitCode != 0 {
		t.Fatalf("exit %d: %s", res.ExitCode, res.Reason)
	}
	last := res.metrics[len(res.metrics)-1]
	loss, ok1 := last.Notes["test_loss"].(float64)
	ppl, ok2 := last.Notes["test_ppl"].(float64)
	if !ok1 || !ok2 || last.ValLoss != nil {
		t.Fatalf("step %d notes %v, val_loss %v: want test_loss and test_ppl, no val_loss", last.Step, last.Notes, last.ValLoss)
	}
	l, err := generate.Load(tinyModel(t), filepath.Join(res.RunDir, "adapters"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Free()
	ds, err := data.LoadFile(filepath.Join(dataDir, "test.jsonl"), l.Tokenizer, data.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want, err := evaluate.Dataset(l.Model, ds, evaluate.Options{BatchSize: 4, MaxSeqLength: 128})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("run: test_loss %.6f test_ppl %.3f; yai eval: %.6f %.3f", loss, ppl, want.Loss, want.Perplexity)
	if math.Abs(loss-want.Loss) > 1e-5*want.Loss || math.Abs(ppl-math.Exp(loss)) > 1e-9*ppl {
		t.Errorf("stage test_loss %v (ppl %v), evaluate %v", loss, ppl, want.Loss)
	}
}
