package model

import (
	"testing"

	"github.com/yai-dev/yai/mlx"
)

// Two examples packed into one row give each the logits it has alone (the tiny Llama-3
// model: RoPE with precomputed frequencies, grouped-query attention), and the padding after
// them changes nothing.
func TestPackedRowsMatchSeparateRows(t *testing.T) {
	dir := t.TempDir()
	if err := WriteTiny(dir, TinyPresets["tiny"]); err != nil {
		t.Fatal(err)
	}
	m := mustLoad(t, dir)
	defer m.Free()
	rows := randomTokens(4, 2, 9, m.Config.VocabSize)
	a, b := rows[0], rows[1][:6]
	wantA, _, _ := logits(t, m, [][]int32{a})
	wantB, _, _ := logits(t, m, [][]int32{b})
	var got []float32
	err := mlx.Do(func() error {
		s := mlx.NewScope()
		defer s.Close()
		const width = 20 // 9 + 6 tokens, then padding
		tokens := make([]int32, width)
		segs := make([]int32, width)
		pos := make([]int32, width)
		copy(tokens, a)
		copy(tokens[9:], b)
		for j := range width {
			switch {
			case j < 9:
				segs[j], pos[j] = 0, int32(j)
			case j < 15:
				segs[j], pos[j] = 1, int32(j-9)
			default:
				segs[j], pos[j] = 2, int32(j-15)
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
	if diff, scale := maxAbsDiff(got[:9*v], wantA); diff > 1e-5*max(1, scale) {
		t.Errorf("first example's logits differ by %g when packed", diff)
	}
	if diff, scale := maxAbsDiff(got[9*v:15*v], wantB); diff > 1e-5*max(1, scale) {
		t.Errorf("second example's logits differ by %g when packed", diff)
	}
}
