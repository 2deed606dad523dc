package train

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/yai-dev/yai/internal/lora"
	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/optim"
	"github.com/yai-dev/yai/mlx"
)

// With the frozen prefix cached, three epochs over the same batches (accumulation, plain and
// packed rows, a cache too small for every batch) give losses bit-identical to an uncached
// run; epochs 2 and 3 start at the first adapted block and hold no more arrays than epoch 2
// began with.
func TestPrefixCacheIsExact(t *testing.T) {
	m := prefixModel(t)
	defer m.Free()
	epoch := prefixEpoch(12, 6, 50)
	for i := range epoch {
		epoch[i].Key = fmt.Sprint(i)
	}
	cfg := lora.Config{Keys: []string{"self_attn.q_proj", "mlp.down_proj"}, NumLayers: 2, Rank: 4, Scale: 2}
	optCfg := optim.DefaultConfig()
	optCfg.LearningRate = 1e-3
	train := func(cache int64) (losses []float64, bytes int64, live []int64) {
		tr, err := NewTrainer(m, cfg, optCfg, Options{GradAccumulation: 2, PrefixCache: cache, LossChunk: 32})
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		losses, live, _ = trainEpochs(t, tr, epoch, false)
		return losses, tr.PrefixCacheBytes(), live
	}
	want, _, _ := train(0)
	for _, cache := range []int64{1 << 30, 3 * 2 * 64 * 64 * 4} { // all batches; three of them
		got, bytes, live := train(cache)
		if bytes == 0 || bytes > cache {
			t.Errorf("cache of %d bytes holds %d", cache, bytes)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("cache %d: step %d (epoch %d): loss %v cached, %v uncached", cache, i+1, i/len(epoch)+1, got[i], want[i])
			}
		}
		if live[2] != live[1] {
			t.Errorf("cache %d: live arrays %d at epoch 2, %d at epoch 3", cache, live[1], live[2])
		}
	}
}

// SeparatePrefix evaluates the frozen prefix apart from the rest of the step, and of the
// evaluation, and changes nothing of what they compute: the losses over three epochs of plain
// and packed batches, updates and accumulation steps, and the validation loss after each,
// equal the one-graph step's, and the live arrays stay flat from epoch to epoch.
func TestSeparatePrefixIsExact(t *testing.T) {
	m := prefixModel(t)
	defer m.Free()
	epoch := prefixEpoch(5, 4, 40)
	cfg := lora.Config{Keys: []string{"self_attn.q_proj"}, NumLayers: 2, Rank: 4, Scale: 2}
	optCfg := optim.DefaultConfig()
	optCfg.LearningRate = 1e-3
	train := func(separate bool) (losses []float64, live []int64, traces int) {
		tr, err := NewTrainer(m, cfg, optCfg, Options{GradAccumulation: 2, SeparatePrefix: separate, LossChunk: 32, GradCheckpoint: true})
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		return trainEpochs(t, tr, epoch, true)
	}
	want, _, oneGraph := train(false)
	got, live, apart := train(true)
	if apart <= oneGraph { // the prefix's own traces, one per batch shape
		t.Errorf("%d traces with the prefix apart, %d in one graph: the prefix did not run apart", apart, oneGraph)
	}
	for i := range want {
		if d := math.Abs(got[i]-want[i]) / math.Abs(want[i]); d > 1e-6 {
			t.Errorf("loss %d (after each epoch's steps, its validation loss): %v with the prefix apart, %v in one graph (relative %.2g)", i+1, got[i], want[i], d)
		}
	}
	if live[2] != live[1] {
		t.Errorf("live arrays %d at epoch 2, %d at epoch 3", live[1], live[2])
	}
}

// prefixModel is the 4-block float32 test model the prefix tests train.
func prefixModel(t *testing.T) *model.Model {
	t.Helper()
	modelDir, _ := makeModel(t, "float32", 4, 64, 0)
	m, err := model.Load(modelDir, model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// prefixEpoch is n random batches of 2 rows of cols tokens, the last one packed instead.
func prefixEpoch(seed int64, n, cols int) []Batch {
	rng := rand.New(rand.NewSource(seed))
	var epoch []Batch
	for i := range n {
		b := randomBatch(rng, 2, cols)
		if i == n-1 {
			b = packedBatch([]example{{tokens: b.Tokens[:20], offset: 3}, {tokens: b.Tokens[30:45]}}, 64)
		}
		epoch = append(epoch, b)
	}
	return epoch
}

// trainEpochs trains three epochs of epoch and returns each step's loss (with validate, each
// epoch's validation loss after its steps), the live arrays at each epoch's start and the
// last step's trace count.
func trainEpochs(t *testing.T, tr *Trainer, epoch []Batch, validate bool) (losses []float64, live []int64, traces int) {
	t.Helper()
	for range 3 {
		live = append(live, mlx.LiveArrays())
		for _, b := range epoch {
			r, err := tr.Step(b)
			if err != nil {
				t.Fatal(err)
			}
			losses = append(losses, r.Loss)
			traces = r.Traces
		}
		if validate {
			val, err := tr.Evaluate(epoch)
			if err != nil {
				t.Fatal(err)
			}
			losses = append(losses, val)
		}
	}
	return losses, live, traces
}
