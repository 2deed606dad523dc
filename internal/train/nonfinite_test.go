package train

import (
	"math"
	"math/rand"
	"slices"
	"testing"

	"github.com/yai-dev/yai/internal/lora"
	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/optim"
	"github.com/yai-dev/yai/mlx"
)

// maskedBatch is a batch whose every target is masked: the loss is 0/0.
func maskedBatch(rng *rand.Rand) Batch {
	b := randomBatch(rng, 2, 40)
	for i, n := range b.Lengths {
		b.Offsets[i] = n + 1 // targets run from offset to length, so none is left
	}
	return b
}

// A non-finite step is caught before anything is applied: parameters, optimizer state and the
// accumulated gradients keep their values bit for bit, no update is counted, and training
// goes on exactly as if the batch had not been there.
func TestNonFiniteStepIsNeverApplied(t *testing.T) {
	modelDir, _ := makeModel(t, "float32", 3, 64, 0)
	m, err := model.Load(modelDir, model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	cfg := lora.Config{Keys: []string{"self_attn.q_proj"}, NumLayers: 2, Rank: 4, Scale: 2}
	optCfg := optim.DefaultConfig()
	optCfg.LearningRate = 1e-2
	rng := rand.New(rand.NewSource(5))
	good := []Batch{randomBatch(rng, 2, 40), randomBatch(rng, 2, 40), randomBatch(rng, 2, 40), randomBatch(rng, 2, 40)}
	bad := maskedBatch(rng)

	for _, accumulation := range []int{1, 2} {
		opts := Options{GradAccumulation: accumulation, Seed: 1}
		clean, err := NewTrainer(m, cfg, optCfg, opts)
		if err != nil {
			t.Fatal(err)
		}
		var want []float64
		for _, b := range good {
			r, err := clean.Step(b)
			if err != nil || !r.Finite {
				t.Fatalf("good step: %+v, %v", r, err)
			}
			want = append(want, r.Loss)
		}
		wantParams := snapshot(clean.Adapters().Params())
		clean.Close()

		tr, err := NewTrainer(m, cfg, optCfg, opts)
		if err != nil {
			t.Fatal(err)
		}
		var got []float64
		for i, b := range good {
			if i == 1 || i == 3 { // once mid-window, once where an update is due
				before, updates := snapshot(tr.Adapters().Params()), tr.Updates()
				r, err := tr.Step(bad)
				if err != nil {
					t.Fatal(err)
				}
				if r.Finite || r.Updated || !math.IsNaN(r.Loss) || r.Tokens != 0 {
					t.Errorf("accumulation %d: masked batch gave %+v; want a non-finite, unapplied step", accumulation, r)
				}
				if !slices.EqualFunc(before, snapshot(tr.Adapters().Params()), slices.Equal) || tr.Updates() != updates {
					t.Errorf("accumulation %d: the non-finite step changed the adapters or the update count", accumulation)
				}
			}
			r, err := tr.Step(b)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, r.Loss)
		}
		if accumulation == 1 {
			// Without accumulation the skipped batches leave no trace at all.
			if !slices.Equal(want, got) || !slices.EqualFunc(wantParams, snapshot(tr.Adapters().Params()), slices.Equal) {
				t.Errorf("losses %v, want %v; or the final adapters differ", got, want)
			}
		}
		tr.Close()
	}
}

func snapshot(ps []*mlx.Array) [][]float32 {
	out := make([][]float32, len(ps))
	for i, p := range ps {
		out[i] = p.Floats()
	}
	return out
}
