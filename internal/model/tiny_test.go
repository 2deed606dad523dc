package model

import (
	"math"
	"strings"
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
		"gemma-2-2b":    2.61e9,  // google/gemma-2-2b: 2.61B
		"gemma-3-1b":    1.0e9,   // google/gemma-3-1b-it: 1B
		"gemma-3-4b":    3.884e9, // Gemma 3 report, table 1: 675M embedding + 3,209M other (vision tower apart)
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

// Every block of every preset is named by its path, and its modules under it: adapters and
// fused tensors are named from the block's path.
func TestPresetBlocksNameTheirModules(t *testing.T) {
	for name, spec := range TinyPresets {
		cfg, err := TinyConfigJSON(spec)
		if err != nil {
			t.Fatal(err)
		}
		c, err := ParseConfig(cfg)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for i, l := range c.Layout().Layers {
			if l.Path != c.LayerPath(i) {
				t.Errorf("%s: block %d is named %q, want %q", name, i, l.Path, c.LayerPath(i))
			}
			for _, m := range l.Modules() {
				if !strings.HasPrefix(m.Path, l.Path+".") {
					t.Errorf("%s: block %d's module %s is not under %s", name, i, m.Path, l.Path)
				}
			}
		}
	}
}
