package model

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/yai-dev/yai/mlx"
)

// gemmaText is a small gemma3_text config: 3 layers, sliding_window_pattern 2 (layers 0 and
// 2 slide over a window of 4, layer 1 is global), so the test's 9-token rows run past the
// window; linear rope_scaling applies to the global layer only.
func gemmaText(extra map[string]any) map[string]any {
	c := map[string]any{
		"model_type": "gemma3_text", "hidden_size": 128, "num_hidden_layers": 3, "intermediate_size": 256,
		"num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 32, "vocab_size": 320, "rms_norm_eps": 1e-6,
		"query_pre_attn_scalar": 48, "sliding_window": 4, "sliding_window_pattern": 2, "rope_theta": 1000000.0,
		"rope_local_base_freq": 10000.0, "rope_scaling": map[string]any{"rope_type": "linear", "factor": 2.0},
	}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

// gemma3Wrapped puts a gemma3_text config inside a multimodal gemma3 one, as Hugging Face's
// Gemma 3 checkpoints are (the outer vocab_size wins).
func gemma3Wrapped(text map[string]any) map[string]any {
	return map[string]any{"model_type": "gemma3", "vocab_size": text["vocab_size"], "text_config": text,
		"vision_config": map[string]any{"hidden_size": 16}}
}

func gemma2Config(extra map[string]any) map[string]any {
	c := baseConfig(map[string]any{"model_type": "gemma2", "head_dim": 32, "query_pre_attn_scalar": 48.0,
		"attn_logit_softcapping": 5.0, "final_logit_softcapping": 8.0, "rms_norm_eps": 1e-6,
		"sliding_window": 4}) // mlx-lm's gemma2 ignores sliding_window
	for k, v := range extra {
		c[k] = v
	}
	return c
}

func checkGemma3Layers(t *testing.T, m *Model, tied bool) {
	t.Helper()
	want := []int{4, 0, 4}
	for i, b := range m.Layers {
		if b.Attn.Window != want[i] || b.Attn.QNorm == nil || b.PostFFNorm == nil || !b.ClipResidual {
			t.Errorf("layer %d: window %d (want %d), q norm %v, post-FF norm %v", i, b.Attn.Window, want[i], b.Attn.QNorm != nil, b.PostFFNorm != nil)
		}
	}
	if m.Layers[0].Attn.RoPE.Base != 10000 || m.Layers[1].Attn.RoPE.Base != 1000000 || m.Layers[1].Attn.RoPE.Scale != 0.5 || m.Layers[0].Attn.RoPE.Scale != 1 {
		t.Errorf("local rope %+v, global rope %+v", m.Layers[0].Attn.RoPE, m.Layers[1].Attn.RoPE)
	}
	if (m.LMHead == nil) != tied {
		t.Errorf("lm_head %T, want tied %v", m.LMHead, tied)
	}
}

// Gemma 2 models written by mlx-lm's gemma2.py: softcapped attention scores (computed by
// hand) and logits, four (1 + w) norms, GeGLU, the embedding scaled by √hidden and always
// tied; no sliding windows.
func TestGemma2MatchesMLXLM(t *testing.T) {
	check := func(t *testing.T, m *Model) {
		for _, b := range m.Layers {
			if b.Attn.Softcap != 5 || b.Attn.Window != 0 || b.PostAttnNorm == nil {
				t.Errorf("attention softcap %v, window %d", b.Attn.Softcap, b.Attn.Window)
			}
		}
		if m.LMHead != nil || m.Config.FinalSoftcap != 8 {
			t.Errorf("want a tied head and a final softcap of 8")
		}
	}
	checkReferenceModels(t, []referenceModel{
		{name: "gemma2-float32", config: gemma2Config(nil), flags: []string{"--dtype", "float32"}, check: check},
		{name: "gemma2-bf16-mha", config: gemma2Config(map[string]any{"num_key_value_heads": 4}), flags: []string{"--dtype", "bfloat16"}},
		{name: "gemma2-4bit-bf16", config: gemma2Config(nil), flags: []string{"--bits", "4", "--group-size", "64", "--dtype", "bfloat16"}, check: check},
		{name: "gemma2-float16-default-caps", config: withoutKeys(gemma2Config(nil), "attn_logit_softcapping", "final_logit_softcapping", "query_pre_attn_scalar"),
			flags: []string{"--dtype", "float16"}},
	})
}

// Gemma 3 models written by mlx-lm's gemma3_text.py and, inside a multimodal config, its
// gemma3.py (tensors under language_model.*, a vision tower's tensors dropped): sliding and
// global layers, per-head norms, clipped float16 residuals, a tied or separate head.
func TestGemma3MatchesMLXLM(t *testing.T) {
	untied := func(t *testing.T, m *Model) { checkGemma3Layers(t, m, false) }
	tied := func(t *testing.T, m *Model) { checkGemma3Layers(t, m, true) }
	checkReferenceModels(t, []referenceModel{
		{name: "gemma3_text-float32", config: gemmaText(nil), flags: []string{"--dtype", "float32"}, check: untied},
		{name: "gemma3_text-bf16-tied", config: gemmaText(nil), flags: []string{"--dtype", "bfloat16", "--tie"}, check: tied},
		{name: "gemma3_text-4bit-bf16", config: gemmaText(nil), flags: []string{"--bits", "4", "--group-size", "64", "--dtype", "bfloat16"}, check: untied},
		{name: "gemma3_text-float16", config: gemmaText(nil), flags: []string{"--dtype", "float16"}, check: untied},
		{name: "gemma3-float32-tied", config: gemma3Wrapped(gemmaText(nil)), flags: []string{"--dtype", "float32", "--tie",
			"--extra", "vision_tower.vision_model.embeddings.patch_embedding.weight", "--extra", "multi_modal_projector.mm_soft_emb_norm.weight"},
			check: func(t *testing.T, m *Model) {
				tied(t, m)
				if _, ok := m.Parameters()["language_model.model.layers.0.self_attn.q_norm.weight"]; !ok {
					t.Errorf("want the text model's tensors under language_model.*, got %v", m.TensorNames()[:3])
				}
			}},
		{name: "gemma3-bf16", config: gemma3Wrapped(gemmaText(nil)), flags: []string{"--dtype", "bfloat16"}, check: untied},
		{name: "gemma3-4bit-bf16", config: gemma3Wrapped(gemmaText(nil)), flags: []string{"--bits", "4", "--group-size", "64", "--dtype", "bfloat16",
			"--override", "language_model.model.layers.1.mlp.down_proj=8:32"},
			check: func(t *testing.T, m *Model) {
				untied(t, m)
				if q := m.Layers[1].FF.(*MLP).Down.(*QuantizedLinear).Quant; q.Bits != 8 {
					t.Errorf("per-layer quantization under language_model.* not applied: %+v", q)
				}
			}},
	})
}

// A packed row of two examples gives each the logits it has alone with sliding windows (the
// packing mask and the window combined) and with gemma2's softcapped scores.
func TestGemmaPackedRowsMatchSeparateRows(t *testing.T) {
	for _, tc := range []struct {
		name   string
		config map[string]any
	}{{"gemma3_text", gemmaText(nil)}, {"gemma2", gemma2Config(nil)}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeReference(t, dir, tc.config, 5, "--dtype", "float32")
			m := mustLoad(t, dir)
			defer m.Free()
			rows := randomTokens(4, 2, 9, m.Config.VocabSize)
			packedMatchesSeparate(t, m, rows[0], rows[1][:7])
		})
	}
}

// packedMatchesSeparate packs a and b into one row with padding after them and compares
// each example's logits with its own forward pass.
func packedMatchesSeparate(t *testing.T, m *Model, a, b []int32) {
	t.Helper()
	wantA, _, _ := logits(t, m, [][]int32{a})
	wantB, _, _ := logits(t, m, [][]int32{b})
	width := len(a) + len(b) + 3
	var got []float32
	err := mlx.Do(func() error {
		s := mlx.NewScope()
		defer s.Close()
		tokens := make([]int32, width)
		segs := make([]int32, width)
		pos := make([]int32, width)
		copy(tokens, a)
		copy(tokens[len(a):], b)
		for j := range width {
			switch {
			case j < len(a):
				segs[j], pos[j] = 0, int32(j)
			case j < len(a)+len(b):
				segs[j], pos[j] = 1, int32(j-len(a))
			default:
				segs[j], pos[j] = 2, int32(j-len(a)-len(b))
			}
		}
		p := NewPacking(mlx.FromSlice(segs, 1, width), mlx.FromSlice(pos, width))
		h := m.Embed(mlx.FromSlice(tokens, 1, width))
		for _, blk := range m.Layers {
			h = blk.Forward(h, nil, p)
		}
		got = m.Head(h).Floats()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	v := m.Config.VocabSize
	na, nb := len(a)*v, len(b)*v
	da, sa := maxAbsDiff(got[:na], wantA)
	db, sb := maxAbsDiff(got[na:na+nb], wantB)
	t.Logf("packed vs alone: max diff %.3g and %.3g (largest logits %.3g, %.3g)", da, db, sa, sb)
	if da > 1e-5*max(1, sa) || db > 1e-5*max(1, sb) {
		t.Errorf("packed logits differ from separate ones by %g and %g", da, db)
	}
}

func withoutKeys(c map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		delete(c, k)
	}
	return c
}

// writeReference writes a random model of config with mlx-lm's own module into dir.
func writeReference(t testing.TB, dir string, config map[string]any, seed int, flags ...string) {
	t.Helper()
	js, err := json.Marshal(config)
	if err != nil {
		t.Fatal(err)
	}
	reference(t, append([]string{"write", dir, string(js), fmt.Sprint(seed)}, flags...)...)
}

// Decoding through the caches (a RotatingKVCache on sliding layers) gives the logits of one
// pass over the whole sequence, whatever the chunks: several positions at once after the
// cache has rotated take its temporal-order path, single positions overwrite its oldest slot.
func TestWindowCachesMatchFullForward(t *testing.T) {
	dir := t.TempDir()
	writeReference(t, dir, gemmaText(nil), 6, "--dtype", "float32")
	m := mustLoad(t, dir)
	defer m.Free()
	rows := randomTokens(9, 1, 19, m.Config.VocabSize)
	want, _, _ := logits(t, m, rows)
	v := m.Config.VocabSize
	err := mlx.Do(func() error {
		caches := m.NewCaches()
		defer caches.Free()
		if _, ok := caches[0].(*RotatingKVCache); !ok {
			t.Fatalf("layer 0 slides, its cache is %T", caches[0])
		}
		at := 0
		for _, n := range []int{5, 1, 1, 1, 3, 1, 6, 1} {
			s := mlx.NewScope()
			got := m.Forward(tokenArray([][]int32{rows[0][at : at+n]}), caches...).Floats()
			mlx.Eval(caches.State()...)
			s.Close()
			if d, scale := maxAbsDiff(got, want[at*v:(at+n)*v]); d > 1e-5*max(1, scale) {
				t.Errorf("positions %d..%d through the caches differ from the whole pass by %g", at, at+n-1, d)
			}
			at += n
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
