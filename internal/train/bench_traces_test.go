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

// BenchmarkTracesOverRandomLengths runs 5,000 steps over batches of random lengths (8 to 256
// tokens, random prompt masks) and reports the compiled traces the step holds, against their
// bound (8 widths × 5 counts of loss positions under a 512 chunk), and the growth of live
// arrays and MLX active memory from step 1,000 to the end. Targets: traces within the bound,
// no growth once every trace exists.
func BenchmarkTracesOverRandomLengths(b *testing.B) {
	const steps, from, bound = 5000, 1000, 8 * 5
	modelDir, _ := makeModel(b, "float32", 2, 64, 0)
	m, err := model.Load(modelDir, model.LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Free()
	for range b.N {
		tr, err := NewTrainer(m, lora.Config{Keys: []string{"self_attn.q_proj"}, NumLayers: 1, Rank: 4, Scale: 2},
			optim.DefaultConfig(), Options{LossChunk: 512})
		if err != nil {
			b.Fatal(err)
		}
		rng := rand.New(rand.NewSource(9))
		var live, lastLive int64
		var active, lastActive uint64
		traces, tracesAt := 0, 0
		for i := range steps {
			if _, err := tr.Step(randomBatch(rng, 2, 256)); err != nil {
				b.Fatal(err)
			}
			if tr.Traces() > traces {
				traces, tracesAt = tr.Traces(), i+1
			}
			if i+1 == from {
				live, active = mlx.LiveArrays(), mlx.Memory().Active
			}
		}
		lastLive, lastActive = mlx.LiveArrays(), mlx.Memory().Active
		tr.Close()
		b.ReportMetric(float64(traces), "traces")
		b.ReportMetric(float64(int64(lastActive)-int64(active)), "active-growth-bytes")
		b.ReportMetric(float64(lastLive-live), "live-array-growth")
		fmt.Printf("\n%d steps over random lengths: %d traces (bound %d, last new at step %d); from step %d: live arrays %+d, MLX active %+d bytes\n",
			steps, traces, bound, tracesAt, from, lastLive-live, int64(lastActive)-int64(active))
		if traces > bound {
			b.Errorf("%d traces, bound %d", traces, bound)
		}
		if lastLive != live || (tracesAt <= from && lastActive > active) {
			b.Errorf("memory grew after step %d: live arrays %d → %d, active %d → %d", from, live, lastLive, active, lastActive)
		}
	}
}
