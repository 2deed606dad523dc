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
// chunks MLX holds at once); family-…: each family's block terms (see budgetSweep); long-…:
// rows long enough that the plan computes attention, and the MLP, in sequence chunks.
//
// One group at a time: -bench 'BudgetSweep/family-'.
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
	// The terms of the other families' blocks, at the same base with head_dim 32: each
	// family's base and one thing varied at a time. The gelu, softcap and post-norm terms
	// are fitted on Gemma's peaks less Llama's at the same settings (the llama-… cases),
	// the mixture's on its own peaks.
	varyFamily := func(family string, extra map[string]any, keys []string, name string, f func(*budgetCase)) {
		c := fam
		c.family, c.keys, c.extra = family, keys, map[string]any{"head_dim": 32}
		for k, v := range extra {
			c.extra[k] = v
		}
		if f != nil {
			f(&c)
		}
		add("family-"+family+"-"+name, c)
	}
	moreInter := func(c *budgetCase) { c.inter = 1536 }
	fourBlocks := func(c *budgetCase) { c.loraLayers = 4 }
	longer := func(c *budgetCase) { c.seq, c.batch = 384, 1 }
	tied := func(f func(*budgetCase)) func(*budgetCase) {
		return func(c *budgetCase) {
			c.tied = true
			if f != nil {
				f(c)
			}
		}
	}
	varyFamily("llama", nil, nil, "inter1536", moreInter)
	varyFamily("llama", nil, nil, "adapted4", fourBlocks)
	varyFamily("llama", nil, nil, "seq384", longer)
	gemma3 := map[string]any{"sliding_window": 512, "sliding_window_pattern": 2, "query_pre_attn_scalar": 32}
	varyFamily("gemma3_text", gemma3, nil, "base", tied(nil))
	varyFamily("gemma3_text", gemma3, nil, "inter1536", tied(moreInter))
	varyFamily("gemma3_text", gemma3, nil, "adapted4", tied(fourBlocks))
	varyFamily("gemma3_text", map[string]any{"sliding_window": 64, "sliding_window_pattern": 2, "query_pre_attn_scalar": 32}, nil, "window64", tied(nil))
	gemma2 := map[string]any{"query_pre_attn_scalar": 32}
	varyFamily("gemma2", gemma2, nil, "base", tied(nil))
	varyFamily("gemma2", gemma2, nil, "seq384", tied(longer))
	varyFamily("gemma2", gemma2, nil, "adapted4", tied(fourBlocks))
	varyFamily("gemma2", gemma2, nil, "vocab12000", tied(func(c *budgetCase) { c.vocab = 12000 }))
	qkv := []string{"self_attn.qkv_proj"}
	varyFamily("phi3", nil, qkv, "base", nil)
	varyFamily("phi3", nil, qkv, "inter1536", moreInter)
	varyFamily("phi3", nil, qkv, "adapted4", fourBlocks)
	mixtral := func(perToken int) map[string]any {
		return map[string]any{"num_local_experts": 4, "num_experts_per_tok": perToken}
	}
	varyFamily("mixtral", mixtral(2), nil, "base", nil)
	varyFamily("mixtral", mixtral(1), nil, "top1", nil)
	varyFamily("mixtral", mixtral(2), nil, "inter1536", moreInter)
	varyFamily("mixtral", mixtral(2), nil, "adapted4", fourBlocks)
	varyFamily("mixtral", mixtral(1), nil, "adapted4-top1", fourBlocks)
	varyFamily("mixtral", mixtral(2), nil, "batch4", func(c *budgetCase) { c.batch = 4 })
	varyFamily("mixtral", mixtral(2), nil, "seq384", longer)
	varyFamily("mixtral", mixtral(2), nil, "heads4-seq128", func(c *budgetCase) {
		c.heads, c.inter, c.layers, c.seq = 4, 384, 3, 128
	})
	qwen3MoE := map[string]any{"num_experts": 8, "num_experts_per_tok": 2, "moe_intermediate_size": 256, "decoder_sparse_step": 1,
		"mlp_only_layers": []int{}, "norm_topk_prob": true}
	varyFamily("qwen3_moe", qwen3MoE, nil, "base", nil)
	varyFamily("qwen3_moe", qwen3MoE, []string{"self_attn.q_proj", "switch_mlp.up_proj"}, "experts-adapted", nil)
	varyFamily("qwen3_moe", qwen3MoE, nil, "heads4-seq128", func(c *budgetCase) {
		c.heads, c.inter, c.layers, c.seq, c.extra["head_dim"], c.extra["moe_intermediate_size"] = 4, 512, 3, 128, 64, 128
	})
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
	// long-…: rows whose whole attention scores (and, at intermediate 3,072, MLP tensors)
	// pass memplan's chunkFrom, so the plan chunks them: the seed's q_proj adapter, with and
	// without checkpointing.
	long := budgetCase{hidden: 256, inter: 768, vocab: 1000, heads: 8, kv: 2, layers: 4, loraLayers: 2, rank: 8, batch: 1, seq: 4096,
		chunk: 512, ckpt: true, keys: []string{"self_attn.q_proj"}}
	for _, v := range []struct {
		name string
		f    func(*budgetCase)
	}{
		{"attn-4096", func(*budgetCase) {}},
		{"attn-4096-nockpt", func(c *budgetCase) { c.ckpt = false }},
		{"attn-8192", func(c *budgetCase) { c.seq = 8192 }},
		{"attn-8192-adapted4", func(c *budgetCase) { c.seq, c.loraLayers, c.layers = 8192, 4, 6 }},
		{"mlp-8192", func(c *budgetCase) { c.seq, c.inter = 8192, 3072 }},
		{"mlp-8192-hidden512", func(c *budgetCase) { c.seq, c.inter, c.hidden = 8192, 3072, 512 }},
	} {
		c := long
		v.f(&c)
		add("long-"+v.name, c)
	}
	return cases
}
