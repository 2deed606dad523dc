package model

import (
	"slices"
	"testing"

	"github.com/yai-dev/yai/mlx"
)

// Dequantized products compute what MLX's quantized kernels compute: logits and the head's
// transpose agree to float32 rounding for inputs of DenseMinRows rows or more (tied and
// untied heads; on the CPU backend bit for bit, as its quantized matmul dequantizes too),
// the dequantized copies show in the peak, fewer rows keep the quantized kernels, and the
// choice survives a selective reload.
func TestDenseProductsMatchQuantized(t *testing.T) {
	for _, preset := range []string{"tiny", "micro"} {
		t.Run(preset, func(t *testing.T) {
			dir := t.TempDir()
			if err := WriteTiny(dir, TinyPresets[preset]); err != nil {
				t.Fatal(err)
			}
			m, err := Load(dir, LoadOptions{ComputeDtype: mlx.Float32})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Free()
			long := randomTokens(5, 2, 40, m.Config.VocabSize) // 80 rows
			short := randomTokens(6, 1, DenseMinRows-1, m.Config.VocabSize)
			quantLong, _, _ := logits(t, m, long)
			quantPeak := forwardPeak(t, m, long)
			quantShort, _, _ := logits(t, m, short)
			quantBack := projectBack(t, m)

			m.SetDenseProducts(len(m.Layers), true)
			// On a GPU float32 GEMMs run on TF32 tensor cores, MLX's quantized kernels in
			// float32.
			tol := 1e-5
			if mlx.DefaultDevice().Type == mlx.GPU {
				tol = 5e-3
			}
			check := func(when string) {
				t.Helper()
				denseLong, _, _ := logits(t, m, long)
				if diff, scale := maxAbsDiff(denseLong, quantLong); diff > tol*max(1, scale) {
					t.Errorf("%slogits through dequantized weights differ by %g (scale %g)", when, diff, scale)
				}
				if p := forwardPeak(t, m, long); p <= quantPeak {
					t.Errorf("%sforward peak %d, %d with quantized kernels: no dequantized copy was made", when, p, quantPeak)
				}
				if diff, scale := maxAbsDiff(projectBack(t, m), quantBack); diff > tol*max(1, scale) {
					t.Errorf("%sthe head's transpose differs by %g (scale %g)", when, diff, scale)
				}
				if denseShort, _, _ := logits(t, m, short); !slices.Equal(denseShort, quantShort) {
					t.Errorf("%s%d rows did not keep the quantized kernels", when, DenseMinRows-1)
				}
			}
			check("")
			all := func(string) bool { return true }
			m.FreeTensors(all)
			if err := m.Reload(dir, all); err != nil {
				t.Fatal(err)
			}
			check("after a reload: ")
		})
	}
}

// projectBack is the head's transpose applied to a fixed (64, vocab) gradient.
func projectBack(t *testing.T, m *Model) (values []float32) {
	t.Helper()
	if err := mlx.Do(func() error {
		s := mlx.NewScope()
		defer s.Close()
		g := mlx.Normal(mlx.RandomKey(7), []int{64, m.Config.VocabSize}, mlx.Float32, 0, 1)
		values = m.ProjectBack(g).Floats()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return values
}

// forwardPeak is MLX's peak above the memory active before a forward pass over rows.
func forwardPeak(t *testing.T, m *Model, rows [][]int32) (peak uint64) {
	t.Helper()
	if err := mlx.Do(func() error {
		mlx.ClearCache()
		mlx.ResetPeakMemory()
		before := mlx.Memory().Active
		s := mlx.NewScope()
		defer s.Close()
		mlx.Eval(m.Forward(tokenArray(rows)))
		peak = mlx.Memory().Peak - before
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return peak
}
