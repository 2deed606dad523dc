package tokenizer

import (
	"testing"
)

// FuzzParseTokenizerJSON feeds arbitrary bytes to the tokenizer.json loader: a tokenizer or an
// error, never a panic; a tokenizer that loads can encode.
func FuzzParseTokenizerJSON(f *testing.F) {
	// small seeds (the checked-in corpus adds more): whole shipped tokenizers make each
	// mutation cost milliseconds
	f.Add([]byte(`{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}}`))
	f.Add([]byte(`{"model": {"type": "WordPiece"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := parseTokenizerJSON(&jsonFile{name: "tokenizer.json", data: data})
		if err != nil {
			return
		}
		tok.Encode("hello world, héllo 123", false)
	})
}
