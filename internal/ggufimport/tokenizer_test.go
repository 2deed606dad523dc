package ggufimport

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/yai-dev/yai/internal/tokenizer"
)

// corpus is every line of the multilingual test corpus, each whole file, and a few edge cases.
func corpus(t *testing.T) []string {
	t.Helper()
	var texts []string
	for _, f := range []string{"testdata/multilingual.txt", "testdata/whitespace.txt"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, string(b))
		texts = append(texts, strings.Split(string(b), "\n")...)
	}
	return append(texts, "", " ", "  x", "1234567890", "a\u00a0b", "<|im_start|><|im_end|>")
}

// The tokenizer.json written from the GGUF vocabulary encodes like HF tokenizers loading
// that same file, through yai's tokenizer.
func TestTokenizerEncodesLikeHFTokenizers(t *testing.T) {
	dir := importedSmolLM2(t)
	tok, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	texts := corpus(t)
	var want [][]int32
	python(t, "encode", dir, texts, &want)
	for i, text := range texts {
		got := tok.Encode(text, true)
		if !slices.Equal(got, want[i]) {
			t.Errorf("encode %q:\n%s", text, cmp.Diff(want[i], got))
		}
	}
	// Decoding gives the text back (byte-level BPE is lossless).
	for _, text := range texts {
		if got := tok.Decode(tok.Encode(text, false), false); got != text {
			t.Errorf("decode(encode(%q)) = %q", text, got)
		}
	}
}

// The chat template carried over from the GGUF renders like transformers' apply_chat_template.
func TestChatTemplateRendersLikeTransformers(t *testing.T) {
	dir := importedSmolLM2(t)
	tok, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	type conv = []tokenizer.Message
	cases := []struct {
		messages  conv
		genPrompt bool
	}{
		{conv{{"role": "user", "content": "What is the capital of France?"}}, true},
		{conv{{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}}, true},
		{conv{{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}, {"role": "user", "content": "Und 3+3? ¿Y 日本?"}}, false},
		{conv{{"role": "user", "content": "multi\nline\n\ttext"}, {"role": "assistant", "content": "ok"}}, false},
	}
	in := make([][2]any, len(cases))
	for i, c := range cases {
		in[i] = [2]any{c.messages, c.genPrompt}
	}
	var want []string
	python(t, "chat", dir, in, &want)
	for i, c := range cases {
		got, err := tok.ApplyChatTemplate(c.messages, nil, c.genPrompt)
		if err != nil {
			t.Fatal(err)
		}
		if got != want[i] {
			t.Errorf("conversation %d:\n%s", i, cmp.Diff(want[i], got))
		}
	}
	if !strings.Contains(want[0], "<|im_start|>assistant\n") {
		t.Errorf("rendered text lacks the ChatML generation prompt: %q", want[0])
	}
}
