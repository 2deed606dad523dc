package train

import (
	"math"
	"math/rand"
	"testing"

	"github.com/yai-dev/yai/internal/lora"
	"github.com/yai-dev/yai/internal/optim"
)

// Options.Eager runs the very functions the trainer otherwise compiles: its losses, with
// dropout, accumulation and an evaluation, equal the compiled ones up to the rounding of
// fused kernels, and it holds no compiled trace.
func TestEagerMatchesCompiled(t *testing.T) {
	m := loadModel(t, 3)
	cfg := lora.Config{NumLayers: 2, Rank: 4, Scale: 2, Dropout: 0.1, Seed: 3}
	run := func(eager bool) (losses []float64, traces int) {
		tr, err := NewTrainer(m, cfg, optim.DefaultConfig(), Options{Eager: eager, GradAccumulation: 2, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		rng := rand.New(rand.NewSource(4))
		for range 4 {
			r, err := tr.Step(randomBatch(rng, 2, 40))
			if err != nil {
				t.Fatal(err)
			}
			losses = append(losses, r.Loss)
		}
		l, err := tr.Evaluate([]Batch{randomBatch(rng, 2, 40)})
		if err != nil {
			t.Fatal(err)
		}
		return append(losses, l), tr.Traces()
	}
	compiled, traces := run(false)
	eager, eagerTraces := run(true)
	for i := range compiled {
		if d := math.Abs(eager[i]-compiled[i]) / compiled[i]; d > 1e-5 {
			t.Errorf("loss %d: eager %v, compiled %v (%.2g relative)", i, eager[i], compiled[i], d)
		}
	}
	if traces == 0 || eagerTraces != 0 {
		t.Errorf("compiled traces %d (want some), eager %d (want none)", traces, eagerTraces)
	}
}
