package model

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/yai-dev/yai/mlx"
	"github.com/yai-dev/yai/modeldir"
)

// Both sides run the same MLX build (0.32.4) with the same ops in the same order; on the
// CPU backend the logits come out bit-identical (measured difference 0). The tolerance
// leaves room for kernels that fuse differently elsewhere: relative to the largest logit,
// 1e-5 for float32 models, 2⁻¹⁰ (one float16 ulp at 1.0) for float16 and 2⁻⁷ for bfloat16.
func tolerance(dt mlx.Dtype) float64 {
	switch dt {
	case mlx.Float32:
		return 1e-5
	case mlx.Float16:
		return 1.0 / 1024
	default:
		return 1.0 / 128
	}
}

func compareLogits(t *testing.T, m *Model, dir string) {
	t.Helper()
	rows := randomTokens(7, 2, 9, m.Config.VocabSize)
	got, gotShape, gotDtype := logits(t, m, rows)
	want, wantShape, wantDtype := referenceLogits(t, dir, rows)
	if !slices.Equal(gotShape, wantShape) || gotDtype != wantDtype {
		t.Fatalf("logits %v %s, mlx-lm %v %s", gotShape, gotDtype, wantShape, wantDtype)
	}
	diff, scale := maxAbsDiff(got, want)
	tol := tolerance(wantDtype) * scale
	t.Logf("max |yai - mlx-lm| = %.3g (largest logit %.3g, tolerance %.3g, %s)", diff, scale, tol, wantDtype)
	if diff > tol {
		t.Errorf("logits differ from mlx-lm by %g > %g", diff, tol)
	}
}

type referenceModel struct {
	name   string
	config map[string]any
	flags  []string // quantization, dtype, overrides, sharding for mlxlm_reference.py write
	check  func(t *testing.T, m *Model)
}

func baseConfig(extra map[string]any) map[string]any {
	c := map[string]any{
		"model_type": "llama", "hidden_size": 128, "num_hidden_layers": 2, "intermediate_size": 256,
		"num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 320, "rms_norm_eps": 1e-5,
		"rope_theta": 10000.0, "tie_word_embeddings": false, "max_position_embeddings": 1024,
	}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

func isQuantized(l Linear) bool { _, ok := l.(*QuantizedLinear); return ok }

// TestLoadsModelsWrittenByMLXLM builds models with mlx-lm (random weights, quantized as
// mlx_lm.convert does) and checks that yai reads them and computes the same logits.
func TestLoadsModelsWrittenByMLXLM(t *testing.T) {
	llama3 := map[string]any{"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 256}
	cases := []referenceModel{
		{name: "4bit-g64-untied-gqa-f16", config: baseConfig(nil), flags: []string{"--bits", "4", "--group-size", "64", "--dtype", "float16"},
			check: func(t *testing.T, m *Model) {
				if !m.Embedding.Packed || m.Embedding.Quant.Bits != 4 || m.Embedding.Quant.GroupSize != 64 || !isQuantized(m.LMHead) {
					t.Errorf("embedding %+v, lm_head %T: want both 4-bit group 64", m.Embedding.Quant, m.LMHead)
				}
			}},
		{name: "4bit-g32-tied-llama3-bf16", config: baseConfig(map[string]any{"tie_word_embeddings": true, "rope_scaling": llama3, "rope_theta": 500000.0}),
			flags: []string{"--bits", "4", "--group-size", "32", "--dtype", "bfloat16"},
			check: func(t *testing.T, m *Model) {
				if m.LMHead != nil || m.Layers[0].Attn.RoPE.Freqs == nil {
					t.Errorf("want tied embeddings and precomputed llama3 frequencies")
				}
			}},
		{name: "8bit-overrides-sharded-f16", config: baseConfig(map[string]any{"num_key_value_heads": 1}),
			flags: []string{"--bits", "8", "--group-size", "64", "--dtype", "float16", "--shard-bytes", "60000",
				"--override", "model.layers.1.mlp.down_proj=4:32", "--override", "lm_head=none"},
			check: func(t *testing.T, m *Model) {
				down := m.Layers[1].FF.(*MLP).Down.(*QuantizedLinear)
				if down.Quant.Bits != 4 || down.Quant.GroupSize != 32 || isQuantized(m.LMHead) || m.Layers[0].FF.(*MLP).Down.(*QuantizedLinear).Quant.Bits != 8 {
					t.Errorf("per-layer quantization not applied: down_proj %+v, lm_head %T", down.Quant, m.LMHead)
				}
			}},
		{name: "float16-tied-linear-rope", config: baseConfig(map[string]any{"tie_word_embeddings": true, "rope_scaling": map[string]any{"type": "linear", "factor": 2.0}}),
			flags: []string{"--dtype", "float16"},
			check: func(t *testing.T, m *Model) {
				if m.Embedding.Packed || isQuantized(m.Layers[0].Attn.Q) {
					t.Errorf("want a plain model")
				}
			}},
		{name: "mistral-float32-mha", config: baseConfig(map[string]any{"model_type": "mistral", "num_key_value_heads": 4, "head_dim": 48}),
			flags: []string{"--dtype", "float32"}},
		{name: "llama-sliding-window-bf16", config: baseConfig(map[string]any{"layer_types": []string{"sliding_attention", "full_attention"}, "sliding_window": 4}),
			flags: []string{"--dtype", "bfloat16"},
			check: func(t *testing.T, m *Model) {
				if m.Layers[0].Attn.Window != 4 || m.Layers[1].Attn.Window != 0 {
					t.Errorf("windows %d, %d: want 4, 0", m.Layers[0].Attn.Window, m.Layers[1].Attn.Window)
				}
			}},
		{name: "qwen2-4bit-biases", config: baseConfig(map[string]any{"model_type": "qwen2", "tie_word_embeddings": true}),
			flags: []string{"--bits", "4", "--group-size", "64", "--dtype", "bfloat16"},
			check: func(t *testing.T, m *Model) {
				if m.Layers[0].Attn.Q.Arrays()["bias"] == nil || m.Layers[0].Attn.O.Arrays()["bias"] != nil {
					t.Errorf("qwen2 wants q/k/v biases and no o_proj bias")
				}
			}},
	}
	checkReferenceModels(t, cases)
}

// checkReferenceModels writes each case's model with mlx-lm's own module, loads it, runs the
// case's check and compares the logits with mlx-lm's.
func checkReferenceModels(t *testing.T, cases []referenceModel) {
	t.Helper()
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg, err := json.Marshal(tc.config)
			if err != nil {
				t.Fatal(err)
			}
			reference(t, append([]string{"write", dir, string(cfg), fmt.Sprint(i + 1)}, tc.flags...)...)
			// The dry run binds the same layout through the headers: no problems either.
			info, err := modeldir.Inspect(dir)
			if err != nil {
				t.Fatal(err)
			}
			if ps := append(info.Problems, info.Check()...); len(ps) > 0 {
				t.Errorf("the dry run's check finds problems: %v", ps)
			}
			m := mustLoad(t, dir)
			defer m.Free()
			if tc.check != nil {
				tc.check(t, m)
			}
			compareLogits(t, m, dir)
		})
	}
}

// TestMLXLMReadsGeneratedModels writes models with WriteTiny and checks that mlx-lm loads
// them and computes the logits yai computes.
func TestMLXLMReadsGeneratedModels(t *testing.T) {
	small := TinyPresets["tiny"]
	small.Config.NumHiddenLayers = 2
	small.Dtype = mlx.BFloat16
	small.ShardBytes = 60000

	micro16 := TinyPresets["micro"]
	micro16.Dtype = mlx.Float16

	mixed := micro16
	mixed.Config.TieWordEmbeddings = false
	mixed.Quant = &mlx.Quantization{GroupSize: 64, Bits: 8, Mode: "affine"}
	mixed.LayerQuant = map[string]*mlx.Quantization{
		"model.layers.0.self_attn.q_proj": {GroupSize: 32, Bits: 4, Mode: "affine"},
		"lm_head":                         nil,
	}

	plain := micro16
	plain.Quant = nil

	cases := map[string]TinySpec{
		"micro-4bit-g32-tied-f16":          micro16,
		"quickstart-tiny-f32":              TinyPresets["tiny"],
		"tiny-4bit-g64-llama3-bf16-shards": small,
		"8bit-with-overrides":              mixed,
		"float16-plain":                    plain,
	}
	// Every small preset as it is, the family ones included (the cross-checks of the
	// commands use them).
	for name, spec := range TinyPresets {
		if name == "micro" || strings.HasPrefix(name, "tiny-") {
			cases["preset-"+name] = spec
		}
	}
	for name, spec := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := WriteTiny(dir, spec); err != nil {
				t.Fatal(err)
			}
			if spec.ShardBytes > 0 {
				if files, _ := filepath.Glob(filepath.Join(dir, "model-*-of-*.safetensors")); len(files) < 2 {
					t.Errorf("want several shards, got %v", files)
				}
			}
			m := mustLoad(t, dir)
			defer m.Free()
			compareLogits(t, m, dir)
		})
	}
}
