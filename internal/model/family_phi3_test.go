package model

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/yai-dev/yai/mlx"
	"github.com/yai-dev/yai/modeldir"
)

// phi3Config is a small Phi-3 whose su/longrope scaling is in force: original context 8, so
// the 9-token rows compareLogits runs go past it, and max_position_embeddings 1024, so the
// mscale is √(1 + ln 128 / ln 8). The long factors differ from the short ones, which mlx-lm
// reads but never uses.
func phi3Config(kind string, partial float64, extra map[string]any) map[string]any {
	headDim := 128 / 4
	n := int(float64(headDim)*partial) / 2
	short, long := make([]float64, n), make([]float64, n)
	for i := range n {
		short[i], long[i] = 1+0.01*float64(i), 1+0.37*float64(i)
	}
	c := baseConfig(map[string]any{"model_type": "phi3", "original_max_position_embeddings": 8,
		"partial_rotary_factor": partial, "head_dim": 7, // phi3.py ignores head_dim
		"rope_scaling": map[string]any{"type": kind, "short_factor": short, "long_factor": long}})
	for k, v := range extra {
		c[k] = v
	}
	return c
}

// Phi-3 models written by mlx-lm's phi3.py: fused qkv_proj and gate_up_proj, SuScaledRoPE
// (long factors, mscale on the rotated features), partial rotary dimensions and tied
// embeddings as in Phi-4-mini.
func TestPhi3MatchesMLXLM(t *testing.T) {
	fused := func(t *testing.T, m *Model) {
		a, mlp := m.Layers[0].Attn, m.Layers[0].FF.(*MLP)
		if a.QKV == nil || a.Q != nil || mlp.GateUp == nil || mlp.Gate != nil {
			t.Errorf("want fused qkv_proj and gate_up_proj only")
		}
		if want := math.Sqrt(1 + math.Log(128)/math.Log(8)); a.RoPE.Freqs == nil || a.RoPE.InputScale != want {
			t.Errorf("rope %+v: want precomputed frequencies and mscale %v", a.RoPE, want)
		}
	}
	partial := func(t *testing.T, m *Model) {
		fused(t, m)
		if m.LMHead != nil || m.Layers[0].Attn.RoPE.Dims != 24 || m.Layers[0].Attn.HeadDim != 32 {
			t.Errorf("want tied embeddings and 24 of 32 features rotated, got head_dim %d, %d rotated", m.Layers[0].Attn.HeadDim, m.Layers[0].Attn.RoPE.Dims)
		}
	}
	bf16 := []string{"--bits", "4", "--group-size", "64", "--dtype", "bfloat16"}
	f32 := []string{"--dtype", "float32"}
	tied := map[string]any{"tie_word_embeddings": true}
	checkReferenceModels(t, []referenceModel{
		{name: "phi3-float32-longrope", config: phi3Config("longrope", 1, nil), flags: f32, check: fused},
		{name: "phi3-4bit-bf16-su", config: phi3Config("su", 1, nil), flags: bf16, check: fused},
		{name: "phi4-mini-float32-partial-tied", config: phi3Config("longrope", 0.75, tied), flags: f32, check: partial},
		{name: "phi4-mini-4bit-bf16-partial-tied", config: phi3Config("longrope", 0.75, tied), flags: bf16, check: partial},
		{name: "phi3-float16-no-scaling", config: phi3Config("longrope", 1, map[string]any{"rope_scaling": nil}), flags: []string{"--dtype", "float16"}},
	})
}

// Every rope_scaling type modeldir accepts is one newRoPE builds.
func TestNewRoPEBuildsEveryKind(t *testing.T) {
	for _, kind := range modeldir.RopeKinds() {
		t.Run(kind, func(t *testing.T) {
			s := &RopeScaling{Type: kind, Factor: 2, LongFactor: modeldir.Factors{1, 2}}
			r := newRoPE(modeldir.Rope{Dims: 4, Base: 10000, Scaling: s, MaxPositions: 64, OriginalMaxPositions: 8})
			r.Freqs.Free()
		})
	}
}

// SuScaledRoPE at an offset: a Phi-3 run as a prefill and then one token at a time, and two
// examples packed into one row, get the logits of the whole sequences.
func TestPhi3CachedAndPackedMatchWholeSequence(t *testing.T) {
	dir := t.TempDir()
	cfg, err := json.Marshal(phi3Config("longrope", 0.75, map[string]any{"tie_word_embeddings": true}))
	if err != nil {
		t.Fatal(err)
	}
	reference(t, "write", dir, string(cfg), "5", "--dtype", "float32")
	m := mustLoad(t, dir)
	defer m.Free()
	const n = 12
	rows := randomTokens(8, 1, n, m.Config.VocabSize)
	want, _, _ := logits(t, m, rows)
	wantB, _, _ := logits(t, m, [][]int32{rows[0][:5]})
	v := m.Config.VocabSize
	var cached, packed []float32
	err = mlx.Do(func() error {
		s := mlx.NewScope()
		defer s.Close()
		caches := m.NewCaches()
		defer caches.Free()
		at := 0
		for _, l := range append([]int{4}, ones(n-4)...) {
			cached = append(cached, m.Forward(tokenArray([][]int32{rows[0][at : at+l]}), caches...).Floats()...)
			at += l
		}
		// rows[0] then its first 5 tokens again, as a second example.
		tokens := append(append([]int32{}, rows[0]...), rows[0][:5]...)
		segs, pos := make([]int32, len(tokens)), make([]int32, len(tokens))
		for j := range tokens {
			if j >= n {
				segs[j], pos[j] = 1, int32(j-n)
			} else {
				pos[j] = int32(j)
			}
		}
		p := NewPacking(mlx.FromSlice(segs, 1, len(tokens)), mlx.FromSlice(pos, len(tokens)))
		h := m.Embed(mlx.FromSlice(tokens, 1, len(tokens)))
		for _, blk := range m.Layers {
			h = blk.Forward(h, nil, p)
		}
		packed = m.Head(h).Floats()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct{ got, want []float32 }{
		"cached": {cached, want}, "packed first": {packed[:n*v], want}, "packed second": {packed[n*v:], wantB}} {
		diff, scale := maxAbsDiff(c.got, c.want)
		t.Logf("%s: largest difference %g over logits up to %g", name, diff, scale)
		if diff > 1e-5*max(1, scale) {
			t.Errorf("%s logits differ from the whole sequence's by %g", name, diff)
		}
	}
}
