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

// Llama3Factors is convert_hf_to_gguf.py's computation of rope_freqs for rope_type llama3
// (ggufexport writes them, the importer reads the parameters back).
func Llama3Factors(base float64, dim int, factor, low, high, orig float64) []float64 {
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
		want := Llama3Factors(h.ropeTheta, h.headDim, factor, c[0], c[1], c[2])
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
	if low, high, orig, ok := fitLlama3(got, h.ropeTheta, h.headDim, factor); ok {
		h.ropeScaling = map[string]any{"rope_type": "llama3", "factor": factor, "low_freq_factor": low,
			"high_freq_factor": high, "original_max_position_embeddings": int(orig)}
		return nil
	}
	return fail("rotary frequency factors match no Llama 3 rope scaling")
}

// fitLlama3 finds low_freq_factor and high_freq_factor that reproduce factors for an
// original context of 8192 when no release's parameters do. The factors depend on the three
// parameters only through orig/low and orig/high, so fixing orig loses nothing: mlx-lm
// computes the same frequencies from the fitted ones. Each factor is 1 (u > high), factor
// (u < low) or between, where 1/f = (1 − s)/factor + s and s = (u − low)/(high − low), with
// u = orig / wavelength.
func fitLlama3(got []float32, base float64, dim int, factor float64) (low, high, orig float64, ok bool) {
	orig = 8192
	if factor <= 1 {
		return 0, 0, 0, false
	}
	ones, scaled := math.Inf(1), 0.0 // the smallest u of a factor 1, the largest of a factor `factor`
	var us, ss []float64             // the transitional frequencies' u and s
	for i, f := range got {
		freq := 1 / math.Pow(base, float64(float32(2*i))/float64(dim))
		u := orig / (2 * math.Pi / freq)
		switch {
		case math.Abs(float64(f)-1) <= 1e-6:
			ones = min(ones, u)
		case math.Abs(float64(f)-factor) <= 1e-6*factor:
			scaled = max(scaled, u)
		default:
			us = append(us, u)
			ss = append(ss, (1/float64(f)-1/factor)/(1-1/factor))
		}
	}
	switch len(us) {
	case 0: // any band between the two groups
		if math.IsInf(ones, 1) {
			ones = 2 * max(scaled, 1)
		}
		low, high = scaled+(ones-scaled)/3, scaled+2*(ones-scaled)/3
	case 1: // a band around the one point, inside the two groups
		u, s := us[0], ss[0]
		dHigh := u
		if !math.IsInf(ones, 1) {
			dHigh = (ones - u) / 2
		}
		if s > 0 {
			dHigh = min(dHigh, (u-scaled)*(1-s)/(2*s))
		}
		high, low = u+dHigh, u-s*dHigh/(1-s)
	default: // s is linear in u
		a := (ss[len(ss)-1] - ss[0]) / (us[len(us)-1] - us[0])
		if a == 0 {
			return 0, 0, 0, false
		}
		low = -(ss[0] - a*us[0]) / a
		high = low + 1/a
	}
	if !(low > 0 && high > low) {
		return 0, 0, 0, false
	}
	want := Llama3Factors(base, dim, factor, low, high, orig)
	for i := range want {
		if math.Abs(float64(got[i])-want[i]) > 1e-5*want[i] {
			return 0, 0, 0, false
		}
	}
	return low, high, orig, true
}
