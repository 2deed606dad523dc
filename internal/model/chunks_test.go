package model

import (
	"fmt"
	"math"
	"testing"

	"github.com/yai-dev/yai/mlx"
)

// attentionGrads runs causal attention over q (1, 8, l, 32) and k, v (1, 4, l, 32), chunk
// queries at a time (0: all at once), and returns the output and its gradients with respect
// to q, k and v for a random cotangent, evaluated, and the MLX peak the backward took above
// what was live before it.
func attentionGrads(t *testing.T, l, chunk int, softcap float32, window int) (out, dq, dk, dv []float32, peak uint64) {
	t.Helper()
	err := mlx.Do(func() error {
		s := mlx.NewScope()
		defer s.Close()
		key := mlx.RandomKey(uint64(l))
		keys := mlx.RandomSplit(key, 4)
		draw := func(i, heads int) *mlx.Array {
			k := mlx.Take(keys, mlx.Scalar(float64(i), mlx.Int32), 0)
			return mlx.Normal(k, []int{1, heads, l, 32}, mlx.Float32, 0, 1)
		}
		q, k, v, cot := draw(0, 8), draw(1, 4), draw(2, 4), draw(3, 8)
		mlx.Eval(q, k, v, cot)
		a := &Attention{Scale: attentionScale(32), Chunk: chunk, Softcap: softcap, Window: window}
		fn := func(in []*mlx.Array) []*mlx.Array {
			if chunk > 0 {
				return []*mlx.Array{a.chunkedAttend(in[0], in[1], in[2], nil)}
			}
			mode, mask := a.mask(l, 0, nil, nil)
			if a.Softcap > 0 {
				return []*mlx.Array{a.softcapped(in[0], in[1], in[2], mask)}
			}
			return []*mlx.Array{mlx.ScaledDotProductAttention(in[0], in[1], in[2], a.Scale, mode, mask)}
		}
		mlx.ClearCache()
		before := mlx.Memory().Active
		mlx.ResetPeakMemory()
		outs, grads := mlx.VJP(fn, []*mlx.Array{q, k, v}, []*mlx.Array{cot})
		mlx.Eval(append(outs, grads...)...)
		peak = mlx.Memory().Peak - before
		out, dq, dk, dv = outs[0].Floats(), grads[0].Floats(), grads[1].Floats(), grads[2].Floats()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return
}

// Attention a chunk of queries at a time, under a checkpoint, computes what attention over
// the whole row computes, forward and backward: plain causal attention, a sliding window
// that cuts into the keys, and Gemma 2's capped scores; chunks that divide the row and
// chunks that do not.
func TestChunkedAttentionMatchesWhole(t *testing.T) {
	for _, c := range []struct {
		name     string
		l, chunk int
		softcap  float32
		window   int
	}{
		{"causal", 256, 64, 0, 0},
		{"causal, ragged chunks", 250, 48, 0, 0},
		{"window", 256, 40, 0, 100},
		{"softcap", 192, 64, 50, 0},
		{"softcap and window", 200, 64, 50, 72},
	} {
		t.Run(c.name, func(t *testing.T) {
			wo, wq, wk, wv, _ := attentionGrads(t, c.l, 0, c.softcap, c.window)
			go_, gq, gk, gv, _ := attentionGrads(t, c.l, c.chunk, c.softcap, c.window)
			for _, p := range []struct {
				what      string
				got, want []float32
			}{{"output", go_, wo}, {"dq", gq, wq}, {"dk", gk, wk}, {"dv", gv, wv}} {
				if len(p.got) != len(p.want) {
					t.Fatalf("%s: %d values, want %d", p.what, len(p.got), len(p.want))
				}
				if d, _ := maxAbsDiff(p.got, p.want); d > 1e-5 || math.IsNaN(d) {
					t.Errorf("%s: chunked differs from whole by %.3g (tolerance 1e-5)", p.what, d)
				}
			}
		})
	}
}

// The backward of chunked attention holds one chunk's scores at a time: its peak grows
// linearly with the row (doubling the row about doubles it), where attention over the whole
// row grows with the square of it.
func TestChunkedAttentionMemoryIsLinear(t *testing.T) {
	peaks := map[string][]uint64{}
	lengths := []int{512, 1024, 2048}
	for _, l := range lengths {
		_, _, _, _, whole := attentionGrads(t, l, 0, 0, 0)
		_, _, _, _, chunked := attentionGrads(t, l, 64, 0, 0)
		peaks["whole"] = append(peaks["whole"], whole)
		peaks["chunked"] = append(peaks["chunked"], chunked)
	}
	t.Logf("MLX peak of the backward by row length %v: whole %v, chunked %v", lengths, peaks["whole"], peaks["chunked"])
	ratio := func(p []uint64, i int) float64 { return float64(p[i+1]) / float64(p[i]) }
	for i := range len(lengths) - 1 {
		if r := ratio(peaks["chunked"], i); r > 2.3 {
			t.Errorf("chunked: peak grew %.2f× from %d to %d tokens; linear growth doubles it", r, lengths[i], lengths[i+1])
		}
		// The check can tell the two apart: the whole row's scores quadruple.
		if r := ratio(peaks["whole"], i); r < 3 {
			t.Errorf("whole: peak grew only %.2f× from %d to %d tokens (the scores should quadruple)", r, lengths[i], lengths[i+1])
		}
	}
	if c, w := peaks["chunked"][2], peaks["whole"][2]; c*4 > w {
		t.Errorf("at 2,048 tokens chunked attention peaked at %s, not under a quarter of the whole row's %s", fmt.Sprint(c), fmt.Sprint(w))
	}
}
