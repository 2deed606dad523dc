package ggufexport

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/yai-dev/yai/internal/gguf"
)

// SentencePiece tokenizers, as Hugging Face converts them (Llama 2, Mistral, Phi-3, Gemma):
// BPE with byte fallback over ▁-for-space pieces, no pre-tokenizer split. llama.cpp runs
// them as its "llama" vocabulary, which merges by the score of the piece a pair makes
// (highest first, leftmost on a tie) where Hugging Face merges by the rank of the pair. With
// no tokenizer.model beside it, each piece's score is minus the rank of the first merge that
// makes it: the same order, so llama.cpp splits text as the merges do. (llama.cpp's
// converter, from tokenizer.json alone, gives every piece -1000, which loses the order.)

var byteToken = regexp.MustCompile(`^<0x[0-9A-Fa-f]{2}>$`)

// spmKeys are the tokenizer keys of a SentencePiece vocabulary; tokens and types are those
// of the vocabulary and its added tokens (set: the rows either names).
func spmKeys(tokens []string, types []int32, set []bool, merges []string, unk string, spacePrefix bool) []gguf.KV {
	rank := make(map[string]int, len(merges))
	for i, m := range merges {
		piece := strings.Replace(m, " ", "", 1)
		if _, ok := rank[piece]; !ok {
			rank[piece] = i
		}
	}
	scores := make([]float32, len(tokens))
	for id, tok := range tokens {
		switch {
		case !set[id]:
			scores[id] = -10000 // as the converter's unused rows
		case types[id] == tokenControl || types[id] == tokenUserDefined:
			scores[id] = -1000 // as the converter's added tokens
			if types[id] == tokenUserDefined {
				tokens[id] = strings.ReplaceAll(tok, "▁", " ") // user-defined spaces pre-normalized, as the converter
			}
		case tok == unk:
			types[id], scores[id] = tokenUnknown, 0
		case byteToken.MatchString(tok):
			types[id], scores[id] = tokenByte, 0
		default:
			scores[id] = -float32(len(merges)) // a piece no merge makes: last
			if r, ok := rank[tok]; ok {
				scores[id] = -float32(r)
			}
		}
	}
	for id, tok := range tokens { // the unknown token may be an added special one (<unk>)
		if tok == unk && unk != "" && set[id] {
			types[id], scores[id] = tokenUnknown, 0
		}
	}
	kvs := []gguf.KV{
		{Key: "tokenizer.ggml.model", Value: "llama"},
		{Key: "tokenizer.ggml.pre", Value: "default"},
		{Key: "tokenizer.ggml.tokens", Value: tokens},
		{Key: "tokenizer.ggml.scores", Value: scores},
		{Key: "tokenizer.ggml.token_type", Value: types},
	}
	if !spacePrefix {
		kvs = append(kvs, gguf.KV{Key: "tokenizer.ggml.add_space_prefix", Value: false})
	}
	return kvs
}

// spmNormal is a tokenizer.json normalizer or pre-tokenizer, as far as SentencePiece's
// space handling goes.
type spmNormal struct {
	Type        string      `json:"type"`
	Normalizers []spmNormal `json:"normalizers"`
	Prepend     string      `json:"prepend"`
	Pattern     struct {
		String string `json:"String"`
	} `json:"pattern"`
	Content       string `json:"content"`
	Replacement   string `json:"replacement"`
	PrependScheme string `json:"prepend_scheme"`
	AddPrefix     *bool  `json:"add_prefix_space"`
	Split         *bool  `json:"split"`
}

// spmSpacePrefix says whether a SentencePiece tokenizer puts ▁ before the text (llama.cpp's
// tokenizer.ggml.add_space_prefix): Llama 2's normalizer prepends it and turns spaces into
// ▁, Gemma's only turns spaces into ▁, the tokenizer.json transformers now writes for a
// Llama tokenizer does both in a Metaspace pre-tokenizer. Anything else is refused.
//
// A Metaspace pre-tokenizer prepends no ▁ to a text (or a text after a special token) that
// already begins with a space; llama.cpp, as SentencePiece itself, always does. Such texts
// get one ▁ more in llama.cpp than in Hugging Face's tokenizer (and yai's).
func spmSpacePrefix(normalizer, pre json.RawMessage) (bool, error) {
	var n, p spmNormal
	if len(normalizer) > 0 && string(normalizer) != "null" {
		if err := json.Unmarshal(normalizer, &n); err != nil {
			return false, err
		}
	}
	if len(pre) > 0 && string(pre) != "null" {
		if err := json.Unmarshal(pre, &p); err != nil {
			return false, err
		}
	}
	steps := []spmNormal{n}
	if n.Type == "Sequence" {
		steps = n.Normalizers
	}
	isSpace := func(s spmNormal) bool { return s.Type == "Replace" && s.Pattern.String == " " && s.Content == "▁" }
	if p.Type == "Split" && p.Pattern.String == " " && len(steps) > 0 && isSpace(steps[len(steps)-1]) {
		p = spmNormal{} // splits at spaces the normalizer has already replaced (transformers' Gemma): none
	}
	switch {
	case p.Type == "" && len(steps) == 2 && steps[0].Type == "Prepend" && steps[0].Prepend == "▁" && isSpace(steps[1]):
		return true, nil
	case p.Type == "" && len(steps) == 1 && isSpace(steps[0]):
		return false, nil
	case n.Type == "" && p.Type == "Metaspace" && p.Replacement == "▁" && (p.Split == nil || !*p.Split):
		switch {
		case p.PrependScheme == "first" || p.PrependScheme == "always":
			return true, nil
		case p.PrependScheme == "never":
			return false, nil
		case p.PrependScheme == "" && p.AddPrefix != nil:
			return *p.AddPrefix, nil
		}
	}
	return false, fmt.Errorf("SentencePiece normalizer %s and pre-tokenizer %s are not ones llama.cpp's vocabulary runs (supported: Llama 2's, Gemma's, a Metaspace that does not split)", normalizer, pre)
}
