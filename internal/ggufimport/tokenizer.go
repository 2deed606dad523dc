package ggufimport

import (
	"fmt"
	"strings"

	"github.com/yai-dev/yai/internal/gguf"
)

// GGUF token types (tokenizer.ggml.token_type), as llama.cpp writes them.
const (
	tokenNormal      = 1
	tokenUnknown     = 2
	tokenControl     = 3
	tokenUserDefined = 4
	tokenUnused      = 5
	tokenByte        = 6
)

// Hugging Face's pre-tokenizer patterns for the GGUF pre-tokenizer names (tokenizer.ggml.pre)
// that llama.cpp's converter derives from them.
const (
	llama3Pattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	qwen2Pattern  = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// tokenizerSpec is the GGUF vocabulary and its settings.
type tokenizerSpec struct {
	file               string
	model              string // tokenizer.ggml.model: gpt2 (byte-level BPE) or llama (SentencePiece)
	pre                string // tokenizer.ggml.pre
	tokens             []string
	types              []int64
	merges             []string
	scores             []float64 // SentencePiece only
	addSpacePrefix     bool      // SentencePiece only
	bos, eos, unk, pad int
	extraEOS           []int
	addBOS, addEOS     bool
	chatTemplate       string
	contextLen         int
}

// readTokenizer reads the tokenizer.ggml.* keys.
func readTokenizer(g *gguf.File, contextLen int) (*tokenizerSpec, error) {
	md := g.Metadata
	t := &tokenizerSpec{file: g.Path, bos: -1, eos: -1, unk: -1, pad: -1, contextLen: contextLen}
	var err error
	if t.model, err = md.String("tokenizer.ggml.model"); err != nil {
		return nil, err
	}
	if t.model != "gpt2" && t.model != "llama" {
		return nil, fmt.Errorf("%s: metadata key \"tokenizer.ggml.model\": tokenizer %q is not supported (supported: gpt2, the byte-level BPE of Llama 3, Qwen2, SmolLM; llama, the SentencePiece BPE of Llama 2 and Mistral)", g.Path, t.model)
	}
	if md.Has("tokenizer.ggml.pre") {
		if t.pre, err = md.String("tokenizer.ggml.pre"); err != nil {
			return nil, err
		}
	}
	if t.tokens, err = md.Strings("tokenizer.ggml.tokens"); err != nil {
		return nil, err
	}
	if md.Has("tokenizer.ggml.token_type") {
		if t.types, err = md.Ints("tokenizer.ggml.token_type"); err != nil {
			return nil, err
		}
		if len(t.types) != len(t.tokens) {
			return nil, fmt.Errorf("%s: metadata key \"tokenizer.ggml.token_type\": %d types for %d tokens", g.Path, len(t.types), len(t.tokens))
		}
	} else {
		t.types = make([]int64, len(t.tokens))
		for i := range t.types {
			t.types[i] = tokenNormal
		}
	}
	if t.model == "llama" {
		if t.scores, err = md.Floats("tokenizer.ggml.scores"); err != nil {
			return nil, err
		}
		if len(t.scores) != len(t.tokens) {
			return nil, fmt.Errorf("%s: metadata key \"tokenizer.ggml.scores\": %d scores for %d tokens", g.Path, len(t.scores), len(t.tokens))
		}
		t.addSpacePrefix = true
		if md.Has("tokenizer.ggml.add_space_prefix") {
			if t.addSpacePrefix, err = md.Bool("tokenizer.ggml.add_space_prefix"); err != nil {
				return nil, err
			}
		}
	} else if t.merges, err = md.Strings("tokenizer.ggml.merges"); err != nil {
		return nil, err
	}
	for key, dst := range map[string]*int{"bos_token_id": &t.bos, "eos_token_id": &t.eos,
		"unknown_token_id": &t.unk, "padding_token_id": &t.pad} {
		if err := t.readID(md, "tokenizer.ggml."+key, dst); err != nil {
			return nil, err
		}
	}
	for _, key := range []string{"eot_token_id", "eom_token_id"} {
		id := -1
		if err := t.readID(md, "tokenizer.ggml."+key, &id); err != nil {
			return nil, err
		}
		if id >= 0 && id != t.eos {
			t.extraEOS = append(t.extraEOS, id)
		}
	}
	for key, dst := range map[string]*bool{"add_bos_token": &t.addBOS, "add_eos_token": &t.addEOS} {
		if md.Has("tokenizer.ggml." + key) {
			if *dst, err = md.Bool("tokenizer.ggml." + key); err != nil {
				return nil, err
			}
		}
	}
	if t.addBOS && t.bos < 0 {
		return nil, fmt.Errorf("%s: metadata key \"tokenizer.ggml.add_bos_token\": set, but there is no tokenizer.ggml.bos_token_id", g.Path)
	}
	if md.Has("tokenizer.chat_template") {
		if t.chatTemplate, err = md.String("tokenizer.chat_template"); err != nil {
			return nil, err
		}
	}
	if t.model == "gpt2" {
		if _, err := t.preTokenizer(); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func (t *tokenizerSpec) readID(md *gguf.Metadata, key string, dst *int) error {
	if !md.Has(key) {
		return nil
	}
	id, err := md.Int(key, 1<<31-1)
	if err != nil {
		return err
	}
	if id >= len(t.tokens) {
		return fmt.Errorf("%s: metadata key %q: id %d is outside the vocabulary of %d tokens", t.file, key, id, len(t.tokens))
	}
	*dst = id
	return nil
}

// preTokenizer is the tokenizer.json pre_tokenizer for the GGUF pre-tokenizer name, with
// whether BPE ignores merges for words already in the vocabulary (Llama 3).
func (t *tokenizerSpec) preTokenizer() (spec map[string]any, err error) {
	byteLevel := func(useRegex bool) map[string]any {
		return map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": useRegex}
	}
	split := func(pattern string) map[string]any {
		return map[string]any{"type": "Split", "pattern": map[string]any{"Regex": pattern}, "behavior": "Isolated", "invert": false}
	}
	sequence := func(steps ...map[string]any) map[string]any {
		return map[string]any{"type": "Sequence", "pretokenizers": steps}
	}
	switch t.pre {
	case "gpt-2":
		return byteLevel(true), nil
	case "llama-bpe", "llama3":
		return sequence(split(llama3Pattern), byteLevel(false)), nil
	case "qwen2":
		return sequence(split(qwen2Pattern), byteLevel(false)), nil
	case "smollm", "starcoder", "refact", "codeshell", "command-r":
		// Every digit on its own, then GPT-2's byte-level split.
		return sequence(split(`\p{N}`), byteLevel(true)), nil
	}
	return nil, fmt.Errorf("%s: metadata key \"tokenizer.ggml.pre\": pre-tokenizer %q is not supported (supported: gpt-2, llama-bpe, qwen2, smollm, starcoder, refact, codeshell, command-r)", t.file, t.pre)
}

func (t *tokenizerSpec) ignoreMerges() bool { return t.pre == "llama-bpe" || t.pre == "llama3" }

// addedToken is one entry of tokenizer.json's added_tokens.
func (t *tokenizerSpec) addedToken(id int) map[string]any {
	return map[string]any{"id": id, "content": t.tokens[id], "single_word": false, "lstrip": false,
		"rstrip": false, "normalized": false, "special": t.types[id] == tokenControl || t.types[id] == tokenUnknown}
}

// isAdded: control and user-defined tokens (and SentencePiece's unknown token, as Hugging
// Face lists it) are matched before pre-tokenization.
func (t *tokenizerSpec) isAdded(id int) bool {
	typ := t.types[id]
	return typ == tokenControl || typ == tokenUserDefined || (t.model == "llama" && typ == tokenUnknown)
}

// tokenizerJSON is the Hugging Face tokenizer.json for the vocabulary.
func (t *tokenizerSpec) tokenizerJSON() (map[string]any, error) {
	vocab := make(map[string]int, len(t.tokens))
	var added []map[string]any
	for id, tok := range t.tokens {
		if prev, dup := vocab[tok]; dup {
			return nil, fmt.Errorf("%s: metadata key \"tokenizer.ggml.tokens\": token %q appears twice (ids %d and %d)", t.file, tok, prev, id)
		}
		vocab[tok] = id
		if t.isAdded(id) {
			added = append(added, t.addedToken(id))
		}
	}
	if t.model == "llama" {
		return t.spmTokenizerJSON(vocab, added), nil
	}
	pre, err := t.preTokenizer()
	if err != nil {
		return nil, err
	}
	merges := make([][2]string, len(t.merges))
	for i, m := range t.merges {
		left, right, ok := strings.Cut(m, " ")
		if !ok {
			return nil, fmt.Errorf("%s: metadata key \"tokenizer.ggml.merges\": merge %d %q is not two tokens", t.file, i, m)
		}
		merges[i] = [2]string{left, right}
	}
	var normalizer any
	if t.pre == "qwen2" {
		normalizer = map[string]any{"type": "NFC"}
	}
	return map[string]any{
		"version":        "1.0",
		"truncation":     nil,
		"padding":        nil,
		"added_tokens":   added,
		"normalizer":     normalizer,
		"pre_tokenizer":  pre,
		"post_processor": t.postProcessor(),
		"decoder":        map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
		"model": map[string]any{
			"type": "BPE", "dropout": nil, "unk_token": nil, "continuing_subword_prefix": nil,
			"end_of_word_suffix": nil, "fuse_unk": false, "byte_fallback": false,
			"ignore_merges": t.ignoreMerges(), "vocab": vocab, "merges": merges,
		},
	}, nil
}

// postProcessor adds BOS / EOS around encodings as the GGUF asks, else is the byte-level
// no-op Hugging Face gives GPT-2-style tokenizers.
func (t *tokenizerSpec) postProcessor() map[string]any {
	if !t.addBOS && !t.addEOS {
		return map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true}
	}
	specials := map[string]any{}
	var single, pair []any
	special := func(id int) map[string]any {
		tok := t.tokens[id]
		specials[tok] = map[string]any{"id": tok, "ids": []int{id}, "tokens": []string{tok}}
		return map[string]any{"SpecialToken": map[string]any{"id": tok, "type_id": 0}}
	}
	seq := func(id string) map[string]any {
		return map[string]any{"Sequence": map[string]any{"id": id, "type_id": 0}}
	}
	for _, part := range []string{"A", "B"} {
		var items []any
		if t.addBOS {
			items = append(items, special(t.bos))
		}
		items = append(items, seq(part))
		if t.addEOS && t.eos >= 0 {
			items = append(items, special(t.eos))
		}
		if part == "A" {
			single = items
		}
		pair = append(pair, items...)
	}
	return map[string]any{"type": "TemplateProcessing", "single": single, "pair": pair, "special_tokens": specials}
}

// tokenizerConfigJSON is tokenizer_config.json: special tokens and the chat template.
func (t *tokenizerSpec) tokenizerConfigJSON() map[string]any {
	name := func(id int) any {
		if id < 0 {
			return nil
		}
		return t.tokens[id]
	}
	decoder := map[string]any{}
	for id := range t.tokens {
		if t.isAdded(id) {
			e := t.addedToken(id)
			delete(e, "id")
			decoder[fmt.Sprint(id)] = e
		}
	}
	c := map[string]any{
		"add_bos_token":                t.addBOS,
		"add_eos_token":                t.addEOS,
		"bos_token":                    name(t.bos),
		"eos_token":                    name(t.eos),
		"unk_token":                    name(t.unk),
		"pad_token":                    name(t.pad),
		"clean_up_tokenization_spaces": false,
		"tokenizer_class":              "PreTrainedTokenizerFast",
		"added_tokens_decoder":         decoder,
	}
	if t.contextLen > 0 {
		c["model_max_length"] = t.contextLen
	}
	if t.chatTemplate != "" {
		c["chat_template"] = t.chatTemplate
	}
	return c
}

// generationConfigJSON lists every id that ends a turn (eos, plus eot / eom when set).
func (t *tokenizerSpec) generationConfigJSON() map[string]any {
	c := map[string]any{}
	if t.bos >= 0 {
		c["bos_token_id"] = t.bos
	}
	if t.eos >= 0 {
		c["eos_token_id"] = append([]int{t.eos}, t.extraEOS...)
	}
	return c
}
