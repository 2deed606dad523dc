package train

import (
	"fmt"
	"math/rand"
	"path/filepath"
	"testing"

	"github.com/yai-dev/yai/internal/lora"
	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/optim"
	"github.com/yai-dev/yai/mlx"
)

// randomBatch makes a batch of rows random sequences no longer than maxLen, padded the way
// mlx-lm pads.
func randomBatch(rng *rand.Rand, rows, maxLen int) Batch {
	lengths := make([]int, rows)
	longest := 0
	for i := range lengths {
		lengths[i] = 8 + rng.Intn(maxLen-8)
		longest = max(longest, lengths[i])
	}
	cols := Bucket(longest + 1)
	b := Batch{Tokens: make([]int32, rows*cols), Rows: rows, Cols: cols, Lengths: lengths, Offsets: make([]int, rows)}
	for r, n := range lengths {
		for j := range n {
			b.Tokens[r*cols+j] = int32(rng.Intn(512))
		}
		b.Offsets[r] = rng.Intn(n / 2)
	}
	return b
}

// TestMemoryFlat runs 300 steps (accumulation, checkpointing, dropout, two sequence-length
// buckets, evaluations and a state save) and requires that, after warm-up, neither live
// array handles nor MLX active memory grow; with MLX's quantized kernels and with dequantized
// products.
func TestMemoryFlat(t *testing.T) {
	modelDir, _ := makeModel(t, "float32", 4, 64, 0)
	for _, dense := range []bool{false, true} {
		t.Run(fmt.Sprintf("dequantized=%v", dense), func(t *testing.T) { memoryFlat(t, modelDir, dense) })
	}
}

func memoryFlat(t *testing.T, modelDir string, dense bool) {
	m, err := model.Load(modelDir, model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	blocks := 0
	if dense {
		blocks = len(m.Layers)
	}
	m.SetDenseProducts(blocks, dense)
	before := mlx.LiveArrays()
	tr, err := NewTrainer(m, lora.Config{Keys: []string{"self_attn.q_proj", "self_attn.k_proj"}, NumLayers: 2, Rank: 8, Alpha: 16, Dropout: 0.1},
		optim.DefaultConfig(), Options{GradAccumulation: 2, GradCheckpoint: true, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(1))
	valid := []Batch{randomBatch(rng, 2, 30), randomBatch(rng, 2, 60)}
	var live int64
	var active uint64
	traces := 0
	for i := range 300 {
		if _, err := tr.Step(randomBatch(rng, 2, 60)); err != nil {
			t.Fatal(err)
		}
		if i%50 == 49 {
			if _, err := tr.Evaluate(valid); err != nil {
				t.Fatal(err)
			}
		}
		// A trace first met after the warm-up holds its own few constants (bytes, no
		// handles): measure from the last new trace on. There are few: 2 widths × 3 counts of
		// loss positions × 2 functions, plus the validation's. Measured after updates only: an
		// accumulation step leaves its gradient sum alive.
		if i%2 == 1 && (i == 99 || (i > 99 && tr.Traces() > traces)) {
			live, active, traces = mlx.LiveArrays(), mlx.Memory().Active, tr.Traces()
		}
	}
	if traces > 14 {
		t.Errorf("%d compiled traces; want at most 14", traces)
	}
	if err := tr.SaveState(filepath.Join(t.TempDir(), "ckpt")); err != nil {
		t.Fatal(err)
	}
	if now := mlx.LiveArrays(); now != live {
		t.Errorf("live arrays grew from %d after warm-up to %d after 300 steps", live, now)
	}
	if now := mlx.Memory().Active; now > active {
		t.Errorf("MLX active memory grew from %d after warm-up to %d after 300 steps", active, now)
	}
	tr.Close()
	if now := mlx.LiveArrays(); now != before {
		t.Errorf("Close left %d arrays behind", now-before)
	}
}

// TestResumeMatchesUninterrupted saves state mid-accumulation, resumes in a new trainer and
// checks the losses equal those of a run that never stopped; a model reload in between
// steps must not change them either.
func TestResumeMatchesUninterrupted(t *testing.T) {
	modelDir, _ := makeModel(t, "float32", 4, 64, 0)
	m, err := model.Load(modelDir, model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	cfg := lora.Config{Keys: []string{"self_attn.q_proj"}, NumLayers: 2, Rank: 4, Scale: 2, Dropout: 0.05}
	opts := Options{GradAccumulation: 2, Seed: 4}
	optCfg := optim.DefaultConfig()
	optCfg.LearningRate = 1e-3
	rng := rand.New(rand.NewSource(2))
	batches := make([]Batch, 9)
	for i := range batches {
		batches[i] = randomBatch(rng, 2, 40)
	}
	run := func(tr *Trainer, bs []Batch) []float64 {
		var out []float64
		for _, b := range bs {
			r, err := tr.Step(b)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, r.Loss)
		}
		return out
	}
	a, err := NewTrainer(m, cfg, optCfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	straight := run(a, batches)
	a.Close()

	b, err := NewTrainer(m, cfg, optCfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	first := run(b, batches[:5]) // 5 steps: ends mid-accumulation
	dir := filepath.Join(t.TempDir(), "ckpt")
	if err := b.SaveState(dir); err != nil {
		t.Fatal(err)
	}
	b.Close()

	c, err := NewTrainer(m, cfg, optCfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.LoadState(dir); err != nil {
		t.Fatal(err)
	}
	second := run(c, batches[5:7])
	if err := m.Reload(modelDir, func(name string) bool { return true }); err != nil {
		t.Fatal(err)
	}
	second = append(second, run(c, batches[7:])...)
	resumed := append(first, second...)
	for i := range straight {
		if resumed[i] != straight[i] {
			t.Errorf("step %d: resumed loss %v, uninterrupted %v", i+1, resumed[i], straight[i])
		}
	}
	if c.Updates() != 4 || c.Steps() != 9 {
		t.Errorf("counters after resume: %d steps, %d updates; want 9 and 4", c.Steps(), c.Updates())
	}
}
