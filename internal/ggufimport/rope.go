package ggufimport

import (
	"fmt"
	"math"

	"github.com/yai-dev/yai/internal/gguf"
)

// ropeFreqsTensor holds Llama 3.1-style rotary frequency factors. llama.cpp's converter
// computes it from config.json's rope_scaling (rope_type llama3) and stores no parameters,
// so the importer finds the parameters that reproduce it.
const ropeFreqsTensor = "rope_freqs.weight"

// llama3Candidates are the (low_freq_factor, high_freq_factor, original context) triples
// Llama 3.x releases use; the factor is read off the tensor (its largest value).
var llama3Candidates = [][3]float64{{1, 4, 8192}}

// llama3Factors is convert_hf_to_gguf.py's computation of rope_freqs for rope_type llama3.
func llama3Factors(base float64, dim int, factor, low, high, orig float64) []float64 {
	lowWavelen, highWavelen := orig/low, orig/high
	var out []float64
	for i := 0; i < dim; i += 2 {
		freq := 1 / math.Pow(base, float64(float32(i))/float64(dim))
		wavelen := 2 * math.Pi / freq
		switch {
		case wavelen < highWavelen:
			out = append(out, 1)
		case wavelen > lowWavelen:
			out = append(out, factor)
		default:
			smooth := (orig/wavelen - low) / (high - low)
			out = append(out, 1/((1-smooth)/factor+smooth))
		}
	}
	return out
}

// readLlama3Scaling recovers rope_scaling from the rope_freqs tensor.
func (h *hyper) readLlama3Scaling(g *gguf.File, t gguf.TensorInfo) error {
	fail := func(problem string) error {
		return &gguf.TensorError{File: g.Path, Tensor: t.Name, Problem: problem}
	}
	if len(t.Dims) != 1 || int(t.Dims[0]) != h.headDim/2 {
		return fail(fmt.Sprintf("shape %v, expected [%d]", t.Shape(), h.headDim/2))
	}
	got, err := g.ReadFloat32(t)
	if err != nil {
		return err
	}
	factor := 0.0
	for _, f := range got {
		factor = max(factor, float64(f))
	}
	for _, c := range llama3Candidates {
		want := llama3Factors(h.ropeTheta, h.headDim, factor, c[0], c[1], c[2])
		match := true
		for i := range want {
			if math.Abs(float64(got[i])-want[i]) > 1e-5*math.Abs(want[i]) {
				match = false
				break
			}
		}
		if match {
			h.ropeScaling = map[string]any{"rope_type": "llama3", "factor": factor, "low_freq_factor": c[0],
				"high_freq_factor": c[1], "original_max_position_embeddings": int(c[2])}
			return nil
		}
	}
	return fail("rotary frequency factors match no known Llama 3 rope scaling")
}
