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

// SetDenseProducts(n, …) dequantizes the products of the first n blocks only (the frozen
// blocks below the adapted ones), and the logits still equal the quantized kernels'.
func TestDenseProductsOfLeadingBlocks(t *testing.T) {
	dir := t.TempDir()
	if err := WriteTiny(dir, TinyPresets["tiny"]); err != nil {
		t.Fatal(err)
	}
	m, err := Load(dir, LoadOptions{ComputeDtype: mlx.Float32})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	if len(m.Layers) < 2 {
		t.Fatalf("the tiny model has %d blocks; the test needs two", len(m.Layers))
	}
	rows := randomTokens(5, 2, 40, m.Config.VocabSize)
	want, _, _ := logits(t, m, rows)
	n := len(m.Layers) - 1
	m.SetDenseProducts(n, false)
	for i, b := range m.Layers {
		for name, slot := range b.Linears() {
			if q, ok := (*slot).(*QuantizedLinear); ok && q.Dense != (i < n) {
				t.Errorf("block %d %s: dense %v, want %v", i, name, q.Dense, i < n)
			}
		}
	}
	if l, ok := m.LMHead.(*QuantizedLinear); (ok && l.Dense) || m.Embedding.Dense {
		t.Error("the head multiplies through its dequantized weight; only the blocks were asked for")
	}
	got, _, _ := logits(t, m, rows)
	if diff, scale := maxAbsDiff(got, want); diff > 1e-5*max(1, scale) {
		t.Errorf("logits with the first %d blocks dequantized differ by %g (scale %g)", n, diff, scale)
	}
}
