package generate

import (
	"fmt"
	"slices"
	"testing"
)

// BenchmarkGenerateVsMLXLM generates greedily from the same tiny model and prompt (256
// prompt tokens, 256 new tokens) with yai and with mlx_lm's stream_generate in the same run,
// and reports both tokens/s figures of each and their ratios (yai / mlx_lm; above 1 is
// faster). Medians over the runs; mlx_lm's first run is a warm-up and is dropped.
func BenchmarkGenerateVsMLXLM(b *testing.B) {
	dir := tinyModel(b, "tiny")
	l := mustLoad(b, dir, "")
	defer l.Free()
	prompt := randomPrompt(21, 256, 1000)
	const maxTokens = 256
	collect(b, l, prompt, maxTokens) // warm-up
	var promptTPS, genTPS []float64
	var tokens []int32
	b.ResetTimer()
	for b.Loop() {
		var st Stats
		tokens, st = collect(b, l, prompt, maxTokens)
		promptTPS = append(promptTPS, st.PromptTPS)
		genTPS = append(genTPS, st.GenerationTPS)
	}
	b.StopTimer()
	var ref referenceRun
	reference(b, &ref, "generate", dir, "-", idsArg(prompt), fmt.Sprint(maxTokens), "6")
	if !slices.Equal(tokens, ref.Tokens) {
		b.Fatalf("yai and mlx_lm generated different tokens")
	}
	refPrompt, refGen := median(ref.AllPromptTPS[1:]), median(ref.AllGenTPS[1:])
	p, g := median(promptTPS), median(genTPS)
	b.ReportMetric(p, "prompt_tok/s")
	b.ReportMetric(g, "gen_tok/s")
	b.ReportMetric(refPrompt, "mlxlm_prompt_tok/s")
	b.ReportMetric(refGen, "mlxlm_gen_tok/s")
	b.ReportMetric(p/refPrompt, "prompt_x")
	b.ReportMetric(g/refGen, "gen_x")
	b.Logf("%d generated tokens; yai prompt %.0f tok/s, generation %.0f tok/s; mlx_lm prompt %.0f tok/s, generation %.0f tok/s; ratios %.2fx, %.2fx",
		len(tokens), p, g, refPrompt, refGen, p/refPrompt, g/refGen)
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}
