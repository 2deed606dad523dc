package ggufimport

import (
	"slices"
	"sort"
)

// SentencePiece vocabularies (tokenizer.ggml.model "llama": Llama 2, Mistral 7B) carry
// scores instead of merges. Hugging Face runs them as BPE with byte fallback; the merges
// are derived from the scores the way its SentencePieceExtractor does: every split of a
// piece into two pieces of the vocabulary is a merge, ranked by the score of the piece
// it makes (highest first), ties kept in vocabulary order.

// spmMerges derives BPE merges from a SentencePiece vocabulary and its scores.
func spmMerges(tokens []string, scores []float64) [][2]string {
	ids := make(map[string]int, len(tokens))
	for id, tok := range tokens {
		if _, dup := ids[tok]; !dup {
			ids[tok] = id
		}
	}
	type merge struct {
		left, right string
		lid, rid    int
		score       float64
	}
	var merges []merge
	for _, piece := range tokens {
		var local []merge
		for i := 1; i < len(piece); i++ {
			l, r := piece[:i], piece[i:]
			lid, okL := ids[l]
			rid, okR := ids[r]
			if okL && okR {
				local = append(local, merge{l, r, lid, rid, scores[ids[piece]]})
			}
		}
		slices.SortStableFunc(local, func(a, b merge) int {
			if a.lid != b.lid {
				return a.lid - b.lid
			}
			return a.rid - b.rid
		})
		merges = append(merges, local...)
	}
	sort.SliceStable(merges, func(i, j int) bool { return merges[i].score > merges[j].score })
	out := make([][2]string, len(merges))
	for i, m := range merges {
		out[i] = [2]string{m.left, m.right}
	}
	return out
}

// spmTokenizerJSON is the tokenizer.json of Hugging Face's Llama tokenizer (legacy mode)
// for a SentencePiece vocabulary: spaces become ▁, a ▁ is prepended unless the GGUF says
// tokenizer.ggml.add_space_prefix false, unknown bytes fall back to <0xXX> tokens.
func (t *tokenizerSpec) spmTokenizerJSON(vocab map[string]int, added []map[string]any) map[string]any {
	replace := func(from, to string) map[string]any {
		return map[string]any{"type": "Replace", "pattern": map[string]any{"String": from}, "content": to}
	}
	normalizers := []any{replace(" ", "▁")}
	decoders := []any{replace("▁", " "), map[string]any{"type": "ByteFallback"}, map[string]any{"type": "Fuse"}}
	if t.addSpacePrefix {
		normalizers = append([]any{map[string]any{"type": "Prepend", "prepend": "▁"}}, normalizers...)
		decoders = append(decoders, map[string]any{"type": "Strip", "content": " ", "start": 1, "stop": 0})
	}
	var unk any
	if t.unk >= 0 {
		unk = t.tokens[t.unk]
	}
	return map[string]any{
		"version":        "1.0",
		"truncation":     nil,
		"padding":        nil,
		"added_tokens":   added,
		"normalizer":     map[string]any{"type": "Sequence", "normalizers": normalizers},
		"pre_tokenizer":  nil,
		"post_processor": t.postProcessor(),
		"decoder":        map[string]any{"type": "Sequence", "decoders": decoders},
		"model": map[string]any{
			"type": "BPE", "dropout": nil, "unk_token": unk, "continuing_subword_prefix": nil,
			"end_of_word_suffix": nil, "fuse_unk": true, "byte_fallback": true, "ignore_merges": false,
			"vocab": vocab, "merges": spmMerges(t.tokens, t.scores),
		},
	}
}
