package ggufimport

import (
	"math"
	"testing"
)

// Rope factors of any Llama 3 scaling, not only the releases', are read back as parameters
// that give the same factors (and so the same frequencies in mlx-lm).
func TestFitLlama3ReproducesTheFactors(t *testing.T) {
	for _, c := range []struct {
		name                    string
		base                    float64
		dim                     int
		factor, low, high, orig float64
	}{
		{"llama-3.1", 500000, 128, 8, 1, 4, 8192},
		{"tiny preset", 500000, 32, 8, 1, 4, 1024},
		{"llama-3.2 factor 32", 500000, 64, 32, 1, 4, 8192},
		{"narrow band", 10000, 64, 4, 2, 3, 4096},
		{"wide band", 1000000, 128, 16, 0.5, 16, 32768},
		{"one frequency in the band", 10000, 16, 8, 1, 4, 8192},
		{"no frequency in the band", 10000, 16, 8, 1, 1.2, 8192},
	} {
		stored := Llama3Factors(c.base, c.dim, c.factor, c.low, c.high, c.orig)
		got := make([]float32, len(stored))
		for i, f := range stored {
			got[i] = float32(f)
		}
		low, high, orig, ok := fitLlama3(got, c.base, c.dim, c.factor)
		if !ok {
			t.Errorf("%s: no fit for %v", c.name, got)
			continue
		}
		again := Llama3Factors(c.base, c.dim, c.factor, low, high, orig)
		for i := range again {
			if math.Abs(again[i]-stored[i]) > 1e-5*stored[i] {
				t.Errorf("%s: factor %d is %v from the fit (low %v, high %v, orig %v), %v stored", c.name, i, again[i], low, high, orig, stored[i])
			}
		}
	}
	if _, _, _, ok := fitLlama3([]float32{1, 1.5, 1.2, 3, 2}, 10000, 10, 3); ok {
		t.Error("factors no Llama 3 scaling gives were fitted")
	}
}
