package mlxrun

import (
	"fmt"
	"math/rand"
	"path/filepath"
	"testing"

	"github.com/yai-dev/yai/lora"
	"github.com/yai-dev/yai/mlx"
	"github.com/yai-dev/yai/model"
	"github.com/yai-dev/yai/optim"
	"github.com/yai-dev/yai/recipe"
	"github.com/yai-dev/yai/stages"
	"github.com/yai-dev/yai/train"
)

// budgetCase is a tiny model and the recipe settings trained on it.
type budgetCase struct {
	name                                    string
	hidden, inter, vocab, heads, kv, layers int
	loraLayers, rank, batch, seq            int
	ckpt                                    bool
}

func (c budgetCase) recipe(modelDir string) string {
	return fmt.Sprintf(`version: 1
name: %s
model: %s
memory: {limit: 2GB}
stages:
  - {id: load, kind: load-4bit}
  - id: lora
    kind: attach-lora
    after: [load]
    with: {rank: %d, alpha: 16, layers: %d, keys: [self_attn.q_proj, self_attn.v_proj]}
  - id: data
    kind: data
    after: [load]
    with: {batch_size: %d, max_seq_length: %d}
  - id: train
    kind: step
    with: {optimizer: adamw, grad_checkpoint: %v}
`, c.name, modelDir, c.rank, c.loraLayers, c.batch, c.seq, c.ckpt)
}

// measure trains three steps of full-length batches the way the step stage does and returns
// the MLX peak above what was active before the model was loaded.
func (c budgetCase) measure(t *testing.T, dir string) int64 {
	t.Helper()
	before := mlx.Memory().Active
	m, err := model.Load(dir, model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	mlx.ResetPeakMemory()
	tr, err := train.NewTrainer(m, lora.Config{Keys: []string{"self_attn.q_proj", "self_attn.v_proj"}, NumLayers: c.loraLayers, Rank: c.rank, Alpha: 16},
		optim.DefaultConfig(), train.Options{GradCheckpoint: c.ckpt, LossChunk: stages.Step.Defaults().LossChunk})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	rng := rand.New(rand.NewSource(1))
	for range 3 {
		b := train.Batch{Rows: c.batch, Cols: c.seq + 1, Tokens: make([]int32, c.batch*(c.seq+1)), Lengths: make([]int, c.batch)}
		for i := range b.Tokens {
			b.Tokens[i] = int32(rng.Intn(c.vocab))
		}
		for i := range b.Lengths {
			b.Lengths[i] = c.seq
		}
		if _, err := tr.Step(b); err != nil {
			t.Fatal(err)
		}
	}
	return int64(mlx.Memory().Peak - before)
}

// The dry-run peak is within ±10% of the MLX peak of real training steps on three tiny
// configs that differ in checkpointing, rank, adapted layers, sequence length and batch.
func TestBudgetMatchesMeasuredPeak(t *testing.T) {
	cases := []budgetCase{
		{name: "wide-seq256", hidden: 512, inter: 1024, vocab: 2000, heads: 8, kv: 4, layers: 4, loraLayers: 2, rank: 8, batch: 2, seq: 256},
		{name: "ckpt-seq512", hidden: 256, inter: 512, vocab: 2000, heads: 4, kv: 2, layers: 6, loraLayers: 4, rank: 8, batch: 2, seq: 512, ckpt: true},
		{name: "ckpt-batch4", hidden: 256, inter: 1024, vocab: 3000, heads: 4, kv: 4, layers: 4, loraLayers: 3, rank: 16, batch: 4, seq: 128, ckpt: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "model")
			err := model.WriteTiny(dir, model.TinySpec{Config: model.Config{ModelType: "llama", HiddenSize: c.hidden, NumHiddenLayers: c.layers,
				IntermediateSize: c.inter, NumAttentionHeads: c.heads, NumKeyValueHeads: c.kv, VocabSize: c.vocab, HeadDim: c.hidden / c.heads,
				RMSNormEps: 1e-5, RopeTheta: 10000, MaxPositionEmbeddings: 4096},
				Seed: 1, Dtype: mlx.Float32, Quant: &mlx.Quantization{GroupSize: 64, Bits: 4, Mode: "affine"}})
			if err != nil {
				t.Fatal(err)
			}
			p, ds := recipe.ValidateSource("budget.yaml", []byte(c.recipe(dir)), nil, recipe.ValidateOptions{})
			if p == nil || p.Budget == nil {
				t.Fatalf("recipe invalid or no budget:\n%s", ds.Format())
			}
			est := p.Budget.Peak()
			got := c.measure(t, dir)
			off := float64(est-got) / float64(got)
			t.Logf("%-12s estimated %8.2f MB  measured %8.2f MB  %+5.1f%%", c.name, float64(est)/1e6, float64(got)/1e6, 100*off)
			if off < -0.10 || off > 0.10 {
				t.Errorf("estimated peak %d is %+.1f%% off the measured MLX peak %d\n%s", est, 100*off, got, p.Budget.Describe(p.Limit))
			}
		})
	}
}
