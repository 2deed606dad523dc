package model

import (
	"math"
	"testing"

	"github.com/yai-dev/yai/modeldir"
)

// parameters counts the values of every module of the layout, as a model card counts them.
func parameters(l *modeldir.Layout) int {
	n := 0
	for _, m := range l.Modules() {
		size := m.Out * max(m.In, 1)
		if m.Experts > 0 {
			size *= m.Experts
		}
		if m.Bias {
			size += m.Out * max(m.Experts, 1)
		}
		n += size
	}
	return n
}

// The presets of published sizes have the parameter counts their model cards state (to 2%:
// the cards round to two or three digits), so a mistyped dimension shows without writing
// gigabytes.
func TestPublishedPresetsHavePublishedSizes(t *testing.T) {
	for preset, published := range map[string]float64{
		"llama-3.1-8b":  8.03e9,  // meta-llama/Llama-3.1-8B: 8.03B
		"qwen3-8b":      8.2e9,   // Qwen/Qwen3-8B: 8.2B
		"smollm2-135m":  0.135e9, // HuggingFaceTB/SmolLM2-135M: 135M
		"phi-4-mini":    3.8e9,   // microsoft/Phi-4-mini-instruct: 3.8B
		"mixtral-8x7b":  46.7e9,  // mistralai/Mixtral-8x7B-v0.1: 46.7B
		"qwen3-30b-a3b": 30.5e9,  // Qwen/Qwen3-30B-A3B: 30.5B
	} {
		spec, ok := TinyPresets[preset]
		if !ok {
			t.Errorf("no preset %s", preset)
			continue
		}
		cfg, err := TinyConfigJSON(spec)
		if err != nil {
			t.Fatal(err)
		}
		c, err := ParseConfig(cfg)
		if err != nil {
			t.Fatalf("%s: %v", preset, err)
		}
		n := parameters(c.Layout())
		t.Logf("%s: %d parameters (published %.3g)", preset, n, published)
		if math.Abs(float64(n)-published) > 0.02*published {
			t.Errorf("%s has %d parameters, its model card %.3g", preset, n, published)
		}
	}
}
