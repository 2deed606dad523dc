package model

import (
	"testing"

	"github.com/yai-dev/yai/mlx"
)

// The cached forward pass is the uncached one computed piecewise: a 300-token sequence run
// as a 40-token prefill, a 200-token chunk and then one token at a time (the caches growing
// past their first CacheStep block) gives every position the logits the whole sequence gets
// in one pass, on the tiny Llama-3 model (precomputed RoPE frequencies, grouped-query
// attention). Freeing the caches leaves no array behind.
func TestCachedForwardMatchesWholeSequence(t *testing.T) {
	m := mustLoad(t, writeTinyPreset(t, "tiny"))
	defer m.Free()
	const n = 300
	rows := randomTokens(6, 2, n, m.Config.VocabSize)
	want, _, _ := logits(t, m, rows)
	v := m.Config.VocabSize
	before := mlx.LiveArrays()
	got := make([]float32, 2*n*v)
	err := mlx.Do(func() error {
		caches := m.NewCaches()
		defer caches.Free()
		at := 0
		for _, l := range append([]int{40, 200}, ones(n-240)...) {
			s := mlx.NewScope()
			chunk := [][]int32{rows[0][at : at+l], rows[1][at : at+l]}
			out := m.Forward(tokenArray(chunk), caches...).Floats()
			mlx.Eval(caches.State()...)
			s.Close()
			for r := range 2 {
				copy(got[(r*n+at)*v:(r*n+at+l)*v], out[r*l*v:(r+1)*l*v])
			}
			at += l
		}
		if off := caches[0].Offset(); off != n {
			t.Errorf("cache offset %d after %d positions", off, n)
		}
		if c := caches[0].(*KVCache); c.keys.Dim(2) != 2*CacheStep {
			t.Errorf("cache capacity %d after %d positions, want %d", c.keys.Dim(2), n, 2*CacheStep)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	diff, scale := maxAbsDiff(got, want)
	if diff > 1e-5*max(1, scale) {
		t.Errorf("cached logits differ from the whole sequence's by %g (largest %g)", diff, scale)
	}
	t.Logf("largest difference %g over logits up to %g", diff, scale)
	if live := mlx.LiveArrays(); live != before {
		t.Errorf("%d arrays live after the caches were freed, %d before", live, before)
	}
}

func ones(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = 1
	}
	return s
}
