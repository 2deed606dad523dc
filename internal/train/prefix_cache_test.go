package train

import (
	"fmt"
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
	modelDir, _ := makeModel(t, "float32", 4, 64, 0)
	m, err := model.Load(modelDir, model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	rng := rand.New(rand.NewSource(12))
	var epoch []Batch
	for i := range 6 {
		b := randomBatch(rng, 2, 50)
		if i == 5 {
			b = packedBatch([]example{{tokens: b.Tokens[:20], offset: 3}, {tokens: b.Tokens[30:45]}}, 64)
		}
		b.Key = fmt.Sprint(i)
		epoch = append(epoch, b)
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
		for range 3 {
			live = append(live, mlx.LiveArrays())
			for _, b := range epoch {
				r, err := tr.Step(b)
				if err != nil {
					t.Fatal(err)
				}
				losses = append(losses, r.Loss)
			}
		}
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
