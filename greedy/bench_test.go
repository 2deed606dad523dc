package greedy

import (
	"testing"

	"github.com/yai-dev/yai/ggufimport"
	"github.com/yai-dev/yai/internal/testenv"
	"github.com/yai-dev/yai/model"
	"github.com/yai-dev/yai/tokenizer"
)

// BenchmarkGenerateSmolLM2 times a 32-token greedy answer of the quickstart's 4-bit SmolLM2
// (prefill of the chat prompt included) and reports tokens per second.
func BenchmarkGenerateSmolLM2(b *testing.B) {
	opts := ggufimport.DefaultOptions()
	opts.GroupSize = 32
	dir := b.TempDir() + "/m"
	if _, err := ggufimport.Import(testenv.SmolLM2GGUF(b), dir, opts); err != nil {
		b.Fatal(err)
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		b.Fatal(err)
	}
	m, err := model.Load(dir, model.LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Free()
	text, _ := tok.ApplyChatTemplate([]tokenizer.Message{{"role": "user", "content": "Write a long story."}}, nil, true)
	prompt := tok.Encode(text, false)
	const n = 32
	for b.Loop() {
		if _, err := Generate(m, prompt, Options{MaxTokens: n}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "tok/s")
}
