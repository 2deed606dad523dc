package mlxbackend

import (
	"fmt"
	"testing"
)

// BenchmarkBudgetSweep trains the configurations memplan/budget.go's coefficients were fitted
// on and reports, for each, MLX's measured peak, the dry run's estimate and how far off it
// is. Rerun it after an MLX upgrade or a change to the step, then refit:
//
//	go test ./stages/mlxbackend -run '^$' -bench BudgetSweep -benchtime 1x -timeout 60m
//
// blocks-…: one thing varied at a time at a 32-position loss chunk and vocabulary 1,000 (the
// blocks' backward dominates; fits the kept and working-set coefficients); vocab-…: three
// vocabularies at one 512-position chunk (the loss term's slope, and that it adds to the
// blocks' backward); chunks-…: loss chunks 32–512 over 512 and 1,024 positions (how many
// chunks MLX holds at once).
func BenchmarkBudgetSweep(b *testing.B) {
	for _, c := range budgetSweep() {
		b.Run(c.name, func(b *testing.B) {
			var est, got int64
			for b.Loop() {
				budget, peak, _ := c.estimateAndMeasure(b)
				est, got = budget.Peak(), peak
			}
			b.ReportMetric(float64(got)/1e6, "measured-MB")
			b.ReportMetric(float64(est)/1e6, "estimated-MB")
			b.ReportMetric(100*float64(est-got)/float64(got), "off-%")
		})
	}
}

// budgetSweep lists the fitting configurations.
func budgetSweep() []budgetCase {
	var cases []budgetCase
	add := func(name string, c budgetCase) {
		c.name = name
		cases = append(cases, c)
	}
	base := budgetCase{hidden: 384, inter: 768, vocab: 1000, heads: 6, kv: 6, layers: 4, loraLayers: 2, rank: 8, batch: 2, seq: 128, chunk: 32}
	for _, ckpt := range []bool{false, true} {
		suffix := ""
		if ckpt {
			suffix = "-ckpt"
		}
		vary := func(name string, f func(*budgetCase)) {
			c := base
			c.ckpt = ckpt
			f(&c)
			add("blocks-"+name+suffix, c)
		}
		vary("base", func(*budgetCase) {})
		vary("hidden768", func(c *budgetCase) { c.hidden, c.heads, c.kv = 768, 12, 12 })
		vary("inter2048", func(c *budgetCase) { c.inter = 2048 })
		vary("kv1", func(c *budgetCase) { c.kv = 1 })
		vary("seq256", func(c *budgetCase) { c.seq = 256 })
		vary("seq512", func(c *budgetCase) { c.seq, c.batch = 512, 1 })
		vary("batch4", func(c *budgetCase) { c.batch = 4 })
		vary("adapted4", func(c *budgetCase) { c.loraLayers, c.layers = 4, 6 })
		vary("heads12", func(c *budgetCase) { c.heads, c.kv = 12, 12 })
	}
	deep := base
	deep.layers = 6
	for _, v := range []struct {
		name string
		f    func(*budgetCase)
	}{
		{"adapted1", func(c *budgetCase) { c.loraLayers = 1 }},
		{"adapted3", func(c *budgetCase) { c.loraLayers = 3 }},
		{"adapted6", func(c *budgetCase) { c.loraLayers = 6 }},
		{"adapted1-seq512", func(c *budgetCase) { c.loraLayers, c.seq, c.batch = 1, 512, 1 }},
		{"adapted4-seq512", func(c *budgetCase) { c.loraLayers, c.seq, c.batch = 4, 512, 1 }},
		{"adapted1-inter2048", func(c *budgetCase) { c.loraLayers, c.inter = 1, 2048 }},
		{"adapted4-inter2048", func(c *budgetCase) { c.loraLayers, c.inter = 4, 2048 }},
		{"adapted1-kv1", func(c *budgetCase) { c.loraLayers, c.kv = 1, 1 }},
		{"adapted4-kv1", func(c *budgetCase) { c.loraLayers, c.kv = 4, 1 }},
		{"adapted6-ckpt", func(c *budgetCase) { c.loraLayers, c.ckpt = 6, true }},
	} {
		c := deep
		v.f(&c)
		add("blocks-"+v.name, c)
	}
	// family-…: the family terms (workWideQ, keptQKNorm), blocks of head_dim 32 and 64 at
	// hidden 256 with 8 heads, written by mlx-lm's module for the family.
	fam := budgetCase{hidden: 256, inter: 768, vocab: 3000, heads: 8, kv: 2, layers: 5, loraLayers: 2, rank: 8, batch: 2, seq: 192}
	for _, f := range []struct {
		family          string
		headDim, blocks int
	}{{"llama", 32, 2}, {"llama", 64, 2}, {"llama", 64, 4}, {"qwen3", 32, 2}, {"qwen3", 64, 4}} {
		c := fam
		c.family, c.extra, c.loraLayers = f.family, map[string]any{"head_dim": f.headDim}, f.blocks
		add(fmt.Sprintf("family-%s-headdim%d-adapted%d", f.family, f.headDim, f.blocks), c)
	}
	small := budgetCase{hidden: 256, inter: 512, heads: 4, kv: 2, layers: 4, loraLayers: 2, rank: 8, batch: 2, seq: 256}
	for _, ckpt := range []bool{false, true} {
		for _, vocab := range []int{2000, 8000, 16000} {
			c := small
			c.ckpt, c.vocab, c.chunk = ckpt, vocab, 512
			add(fmt.Sprintf("vocab-%d-ckpt=%v", vocab, ckpt), c)
		}
		for _, bc := range []struct{ batch, chunk int }{{2, 32}, {2, 64}, {2, 128}, {2, 256}, {4, 64}, {4, 128}, {4, 256}, {4, 512}} {
			c := small
			c.ckpt, c.vocab, c.batch, c.chunk = ckpt, 16000, bc.batch, bc.chunk
			add(fmt.Sprintf("chunks-%d-positions-%d-ckpt=%v", 256*bc.batch, bc.chunk, ckpt), c)
		}
	}
	return cases
}
