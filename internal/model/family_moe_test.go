package model

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
)

// Mixtures of experts written by mlx-lm's mixtral.py and qwen3_moe.py: 4 experts, 2 per
// token. Each model is compared on a short batch (36 token-expert pairs: SwitchGLU runs them
// unsorted) and a long one (160 pairs: sorted by expert), both paths of mlx-lm's SwitchGLU.
func TestMixtralMatchesMLXLM(t *testing.T) {
	mixtral := baseConfig(map[string]any{"model_type": "mixtral", "num_local_experts": 4, "num_experts_per_tok": 2, "rope_theta": 1e6})
	checkMoEModels(t, []referenceModel{
		{name: "mixtral-float32", config: mixtral, flags: []string{"--dtype", "float32"}},
		{name: "mixtral-4bit-bf16", config: mixtral, flags: []string{"--bits", "4", "--group-size", "64", "--dtype", "bfloat16"},
			check: func(t *testing.T, m *Model) {
				moe := m.Layers[1].FF.(*MoE)
				if _, ok := moe.Experts.Down.(*QuantizedSwitchLinear); !ok || !isQuantized(moe.Router) || moe.SoftmaxFirst {
					t.Errorf("want 4-bit experts and router, mixtral routing: %T %T", moe.Experts.Down, moe.Router)
				}
			}},
	})
}

// Qwen3-MoE mixes dense blocks in (decoder_sparse_step, mlp_only_layers); its router
// renormalizes the top probabilities or not (norm_topk_prob), and mlx_lm.convert keeps it at
// 8 bits in a 4-bit model.
func TestQwen3MoEMatchesMLXLM(t *testing.T) {
	qwen3MoE := func(extra map[string]any) map[string]any {
		c := baseConfig(map[string]any{"model_type": "qwen3_moe", "head_dim": 48, "num_hidden_layers": 4, "num_experts": 4,
			"num_experts_per_tok": 2, "moe_intermediate_size": 64, "decoder_sparse_step": 2, "mlp_only_layers": []int{},
			"norm_topk_prob": true, "rope_theta": 1e6})
		for k, v := range extra {
			c[k] = v
		}
		return c
	}
	sparse := func(want ...bool) func(t *testing.T, m *Model) {
		return func(t *testing.T, m *Model) {
			var got []bool
			for _, b := range m.Layers {
				_, ok := b.FF.(*MoE)
				got = append(got, ok)
			}
			if !slices.Equal(got, want) {
				t.Errorf("sparse blocks %v, want %v", got, want)
			}
		}
	}
	checkMoEModels(t, []referenceModel{
		{name: "qwen3moe-float32-norm-topk-step2", config: qwen3MoE(nil), flags: []string{"--dtype", "float32"}, check: sparse(false, true, false, true)},
		{name: "qwen3moe-float32-no-norm-mlp-only", config: qwen3MoE(map[string]any{"norm_topk_prob": false, "decoder_sparse_step": 1, "mlp_only_layers": []int{2}}),
			flags: []string{"--dtype", "float32"}, check: sparse(true, true, false, true)},
		{name: "qwen3moe-4bit-bf16-norm-topk", config: qwen3MoE(map[string]any{"tie_word_embeddings": true}),
			flags: []string{"--bits", "4", "--group-size", "64", "--dtype", "bfloat16"},
			check: func(t *testing.T, m *Model) {
				sparse(false, true, false, true)(t, m)
				r := m.Layers[1].FF.(*MoE).Router.(*QuantizedLinear)
				if r.Quant.Bits != 8 {
					t.Errorf("router quantized to %d bits, mlx_lm.convert's qwen3_moe predicate keeps 8", r.Quant.Bits)
				}
			}},
		{name: "qwen3moe-4bit-bf16-no-norm", config: qwen3MoE(map[string]any{"norm_topk_prob": false, "mlp_only_layers": []int{1}}),
			flags: []string{"--bits", "4", "--group-size", "64", "--dtype", "bfloat16"}, check: sparse(false, false, false, true)},
	})
}

// checkMoEModels is checkReferenceModels on a short and a long batch.
func checkMoEModels(t *testing.T, cases []referenceModel) {
	t.Helper()
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg, err := json.Marshal(tc.config)
			if err != nil {
				t.Fatal(err)
			}
			reference(t, append([]string{"write", dir, string(cfg), fmt.Sprint(100 + i)}, tc.flags...)...)
			m := mustLoad(t, dir)
			defer m.Free()
			if tc.check != nil {
				tc.check(t, m)
			}
			for _, rows := range [][][]int32{randomTokens(7, 2, 9, m.Config.VocabSize), randomTokens(8, 2, 40, m.Config.VocabSize)} {
				compareRows(t, m, dir, rows)
			}
		})
	}
}

// compareRows compares yai's logits for rows with mlx-lm's.
func compareRows(t *testing.T, m *Model, dir string, rows [][]int32) {
	t.Helper()
	got, gotShape, gotDtype := logits(t, m, rows)
	want, wantShape, wantDtype := referenceLogits(t, dir, rows)
	if !slices.Equal(gotShape, wantShape) || gotDtype != wantDtype {
		t.Fatalf("logits %v %s, mlx-lm %v %s", gotShape, gotDtype, wantShape, wantDtype)
	}
	diff, scale := maxAbsDiff(got, want)
	tol := tolerance(wantDtype) * scale
	t.Logf("%d×%d tokens: max |yai - mlx-lm| = %.3g (largest logit %.3g, tolerance %.3g, %s)", len(rows), len(rows[0]), diff, scale, tol, wantDtype)
	if diff > tol {
		t.Errorf("logits differ from mlx-lm by %g > %g", diff, tol)
	}
}
