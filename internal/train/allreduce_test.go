package train

import (
	"math"
	"math/rand"
	"testing"

	"github.com/yai-dev/yai/internal/lora"
	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/optim"
	"github.com/yai-dev/yai/mlx"
)

// A data-parallel trainer reduces through MLX's all_sum. Over a group of one it is the plain
// trainer; over two identical ranks (the sums doubled) the token-weighted mean is unchanged
// while the tokens double; and a batch whose loss is not finite is still never applied.
func TestAllReduceIsTheTokenWeightedMean(t *testing.T) {
	modelDir, _ := makeModel(t, "float32", 3, 64, 0)
	m, err := model.Load(modelDir, model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	alone, err := mlx.InitDistributed("any", false)
	if err != nil {
		t.Fatal(err)
	}
	defer alone.Free()
	if alone.Size() != 1 {
		t.Fatalf("a test process joined a group of %d", alone.Size())
	}
	twins := func(xs []*mlx.Array) []*mlx.Array {
		out := make([]*mlx.Array, len(xs))
		for i, x := range AllSumOver(alone)(xs) {
			out[i] = mlx.MulScalar(x, 2)
		}
		return out
	}
	cfg := lora.Config{Keys: []string{"self_attn.q_proj", "self_attn.v_proj"}, NumLayers: 2, Rank: 4, Scale: 2}
	optCfg := optim.DefaultConfig()
	optCfg.LearningRate = 1e-2
	rng := rand.New(rand.NewSource(9))
	batches := []Batch{randomBatch(rng, 2, 40), maskedBatch(rng), randomBatch(rng, 3, 50), randomBatch(rng, 2, 33)}

	train := func(reduce func([]*mlx.Array) []*mlx.Array) ([]StepResult, [][]float32) {
		tr, err := NewTrainer(m, cfg, optCfg, Options{Seed: 1, AllReduce: reduce})
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		var rs []StepResult
		for _, b := range batches {
			r, err := tr.Step(b)
			if err != nil {
				t.Fatal(err)
			}
			rs = append(rs, r)
		}
		return rs, snapshot(tr.Adapters().Params())
	}
	plain, want := train(nil)
	for name, reduce := range map[string]func([]*mlx.Array) []*mlx.Array{"group of one": AllSumOver(alone), "two identical ranks": twins} {
		got, params := train(reduce)
		factor := 1
		if name == "two identical ranks" {
			factor = 2
		}
		for i := range got {
			p, g := plain[i], got[i]
			if g.Finite != p.Finite || g.Updated != p.Updated || g.Tokens != factor*p.Tokens {
				t.Errorf("%s, step %d: %+v, alone %+v", name, i+1, g, p)
			}
			if p.Finite && math.Abs(g.Loss-p.Loss) > 1e-6*math.Abs(p.Loss) {
				t.Errorf("%s, step %d: loss %v, alone %v", name, i+1, g.Loss, p.Loss)
			}
		}
		for i := range params {
			var diff, norm float64
			for j := range params[i] {
				d := float64(params[i][j] - want[i][j])
				diff += d * d
				norm += float64(want[i][j]) * float64(want[i][j])
			}
			// the same sums in another order: float32 rounding, no more
			if rel := math.Sqrt(diff / norm); rel > 1e-5 {
				t.Errorf("%s: parameter %d differs by %.3g (relative)", name, i, rel)
			} else {
				t.Logf("%s: parameter %d within %.3g", name, i, rel)
			}
		}
	}
	if _, err := NewTrainer(m, cfg, optCfg, Options{GradAccumulation: 2, AllReduce: twins}); err == nil {
		t.Error("a data-parallel trainer accepted accumulation it cannot weight by tokens")
	}
}
