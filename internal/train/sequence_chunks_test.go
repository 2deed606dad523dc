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

// Long rows computed a slice of the sequence at a time (attention 16 queries, the MLP 16
// rows) train what whole rows train: the same loss and gradients, with and without
// gradient checkpointing, on plain and packed rows, with adapters on attention (the MLP's
// chunks then run under their own checkpoint) and on the MLP (whose chunks then do not).
func TestSequenceChunksMatchWholeRows(t *testing.T) {
	modelDir, _ := makeModel(t, "float32", 3, 64, 0)
	m, err := model.Load(modelDir, model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	exs := longerExamples(true)
	for _, keys := range [][]string{{"self_attn.q_proj", "self_attn.v_proj"}, {"mlp.down_proj", "mlp.up_proj"}} {
		for _, ckpt := range []bool{false, true} {
			tr, err := NewTrainer(m, lora.Config{Keys: keys, NumLayers: 2, Rank: 4, Scale: 2, Seed: 5},
				optim.DefaultConfig(), Options{GradCheckpoint: ckpt, LossChunk: 32})
			if err != nil {
				t.Fatal(err)
			}
			randomizeB(t, tr)
			for _, packed := range []bool{false, true} {
				batch := func() Batch {
					if packed {
						return packedBatch(exs, 160)
					}
					return plainBatch(exs)
				}
				m.SetSequenceChunks(0, 0)
				wantLoss, wantTokens, want, err := tr.Gradients(batch())
				if err != nil {
					t.Fatal(err)
				}
				m.SetSequenceChunks(16, 16)
				loss, tokens, got, err := tr.Gradients(batch())
				m.SetSequenceChunks(0, 0)
				if err != nil {
					t.Fatal(err)
				}
				if tokens != wantTokens || math.Abs(loss-wantLoss)/wantLoss > 1e-5 {
					t.Errorf("%v, checkpointing %v, packed %v: chunked loss %v over %d tokens, whole rows %v over %d",
						keys, ckpt, packed, loss, tokens, wantLoss, wantTokens)
				}
				if len(got) != len(want) {
					t.Fatalf("%d gradients chunked, %d whole", len(got), len(want))
				}
				for name, g := range got {
					if d := relativeToMax(g, want[name]); d > 1e-5 || math.IsNaN(d) {
						t.Errorf("%v, checkpointing %v, packed %v: gradient of %s differs by %g chunked", keys, ckpt, packed, name, d)
					}
				}
				freeMap(got)
				freeMap(want)
			}
			tr.Close()
		}
	}
}

// The compiled training step runs chunked attention and MLP too: three steps with chunks
// give the losses and the adapters three steps on whole rows give.
func TestCompiledStepWithSequenceChunks(t *testing.T) {
	modelDir, _ := makeModel(t, "float32", 3, 64, 0)
	m, err := model.Load(modelDir, model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	exs := longerExamples(false)
	var losses [2][]float64
	var adapters [2][]float32
	for k, chunk := range []int{0, 16} {
		tr, err := NewTrainer(m, lora.Config{Keys: []string{"self_attn.q_proj", "self_attn.k_proj"}, NumLayers: 2, Rank: 4, Scale: 2, Seed: 5},
			optim.DefaultConfig(), Options{GradCheckpoint: true, LossChunk: 32})
		if err != nil {
			t.Fatal(err)
		}
		randomizeB(t, tr)
		m.SetSequenceChunks(chunk, chunk)
		for range 3 {
			r, err := tr.Step(plainBatch(exs))
			if err != nil {
				t.Fatal(err)
			}
			losses[k] = append(losses[k], r.Loss)
		}
		if err := mlx.Do(func() error {
			for _, l := range tr.adapters.Layers {
				adapters[k] = append(append(adapters[k], l.A.Floats()...), l.B.Floats()...)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		tr.Close()
	}
	m.SetSequenceChunks(0, 0)
	for i := range losses[0] {
		if math.Abs(losses[1][i]-losses[0][i]) > 1e-5*math.Abs(losses[0][i]) {
			t.Fatalf("losses of three steps: whole rows %v, chunked %v", losses[0], losses[1])
		}
	}
	if d := maxDiffValues(adapters[1], adapters[0]); len(adapters[0]) == 0 || d > 1e-5 {
		t.Errorf("adapters after three steps differ by %g chunked", d)
	}
}

// longerExamples are three rows of 70, 33 and 51 random tokens, longer than the tests' chunks
// of 16, with a masked prompt of up to a third of each where prompts is set.
func longerExamples(prompts bool) []example {
	rng := rand.New(rand.NewSource(3))
	var exs []example
	for _, n := range []int{70, 33, 51} {
		e := example{tokens: make([]int32, n)}
		if prompts {
			e.offset = rng.Intn(n / 3)
		}
		for j := range e.tokens {
			e.tokens[j] = int32(1 + rng.Intn(500))
		}
		exs = append(exs, e)
	}
	return exs
}
