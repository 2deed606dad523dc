package ggufexport

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
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

// Hugging Face pre-tokenizer patterns and the GGUF pre-tokenizer names llama.cpp gives
// them (ggufimport maps the names back onto the same patterns).
var prePatterns = map[string]string{
	`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`: "llama-bpe",
	`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`:      "qwen2",
}

// hfTokenizer is the part of tokenizer.json, tokenizer_config.json and
// generation_config.json the GGUF tokenizer keys come from.
type hfTokenizer struct {
	Model struct {
		Type         string          `json:"type"`
		Vocab        map[string]int  `json:"vocab"`
		Merges       json.RawMessage `json:"merges"`
		ByteFallback bool            `json:"byte_fallback"`
		UNK          string          `json:"unk_token"`
	} `json:"model"`
	AddedTokens []struct {
		ID      int    `json:"id"`
		Content string `json:"content"`
		Special bool   `json:"special"`
	} `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
}

// postProcessor is a tokenizer.json post_processor, as far as the BOS and EOS it adds.
type postProcessor struct {
	Type       string          `json:"type"`
	Processors []postProcessor `json:"processors"`
	Single     []struct {
		SpecialToken *struct {
			ID string `json:"id"`
		} `json:"SpecialToken"`
	} `json:"single"`
}

// templateEnds are the special tokens a TemplateProcessing post-processor puts before and
// after a single sequence ("" for none), as llama.cpp's SpecialVocab reads them (only from a
// template of more than the sequence).
func templateEnds(raw json.RawMessage) (first, last string) {
	var p postProcessor
	if len(raw) == 0 || json.Unmarshal(raw, &p) != nil {
		return "", ""
	}
	steps := []postProcessor{p}
	if p.Type == "Sequence" {
		steps = p.Processors
	}
	for _, s := range steps {
		if s.Type != "TemplateProcessing" || len(s.Single) < 2 {
			continue
		}
		if t := s.Single[0].SpecialToken; t != nil {
			first = t.ID
		}
		if t := s.Single[len(s.Single)-1].SpecialToken; t != nil {
			last = t.ID
		}
		return first, last
	}
	return "", ""
}

// preTokenizer is a tokenizer.json pre_tokenizer, as far as naming it needs.
type preTokenizer struct {
	Type          string         `json:"type"`
	Pretokenizers []preTokenizer `json:"pretokenizers"`
	Pattern       struct {
		Regex string `json:"Regex"`
	} `json:"pattern"`
	IndividualDigits bool `json:"individual_digits"`
	UseRegex         bool `json:"use_regex"`
}

// preName names a byte-level BPE pre-tokenizer as llama.cpp does (tokenizer.ggml.pre).
func preName(raw json.RawMessage) (string, error) {
	var p preTokenizer
	if err := json.Unmarshal(raw, &p); err != nil {
		return "", err
	}
	steps := []preTokenizer{p}
	if p.Type == "Sequence" {
		steps = p.Pretokenizers
	}
	if len(steps) == 1 && steps[0].Type == "ByteLevel" && steps[0].UseRegex {
		return "gpt-2", nil
	}
	if len(steps) == 2 && steps[1].Type == "ByteLevel" {
		first := steps[0]
		switch {
		case first.Type == "Split" && prePatterns[first.Pattern.Regex] != "" && !steps[1].UseRegex:
			return prePatterns[first.Pattern.Regex], nil
		case steps[1].UseRegex && (first.Type == "Digits" && first.IndividualDigits ||
			first.Type == "Split" && first.Pattern.Regex == `\p{N}`):
			return "smollm", nil // every digit alone, then GPT-2's split
		}
	}
	return "", fmt.Errorf("pre-tokenizer %s is not one llama.cpp names (supported: GPT-2's, Llama 3's, Qwen2's, SmolLM's)", raw)
}

// tokenizerKeys are the tokenizer.* metadata of the model directory's tokenizer, as
// llama.cpp's converter writes them for a byte-level BPE vocabulary ("gpt2") or a
// SentencePiece one ("llama", see spm.go).
func tokenizerKeys(dir string, vocabSize int) ([]gguf.KV, error) {
	var tj hfTokenizer
	if err := readJSON(filepath.Join(dir, "tokenizer.json"), &tj); err != nil {
		return nil, err
	}
	if tj.Model.Type != "BPE" {
		return nil, fmt.Errorf("%s: only BPE tokenizers (byte-level: Llama 3, Qwen, SmolLM, GPT-2; SentencePiece with byte fallback: Llama 2, Mistral, Phi-3, Gemma) are exported, not %s",
			filepath.Join(dir, "tokenizer.json"), tj.Model.Type)
	}
	var pre string
	spacePrefix := false
	var err error
	if tj.Model.ByteFallback {
		if spacePrefix, err = spmSpacePrefix(tj.Normalizer, tj.PreTokenizer); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "tokenizer.json"), err)
		}
	} else if pre, err = preName(tj.PreTokenizer); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "tokenizer.json"), err)
	}
	size := vocabSize
	for _, id := range tj.Model.Vocab {
		size = max(size, id+1)
	}
	for _, a := range tj.AddedTokens {
		size = max(size, a.ID+1)
	}
	if size > vocabSize {
		return nil, fmt.Errorf("%s: token ids reach %d, but the model's vocabulary has %d rows", dir, size-1, vocabSize)
	}
	tokens := make([]string, vocabSize)
	types := make([]int32, vocabSize)
	set := make([]bool, vocabSize)
	for tok, id := range tj.Model.Vocab {
		tokens[id], types[id], set[id] = tok, tokenNormal, true
	}
	for _, a := range tj.AddedTokens {
		tokens[a.ID], set[a.ID] = a.Content, true
		types[a.ID] = tokenUserDefined
		if a.Special {
			types[a.ID] = tokenControl
		}
	}
	for id := range tokens { // rows the tokenizer never produces, named as the converter names them
		if !set[id] {
			tokens[id], types[id] = fmt.Sprintf("[PAD%d]", id), tokenUnused
		}
	}
	merges, err := mergeStrings(tj.Model.Merges)
	if err != nil {
		return nil, fmt.Errorf("%s: merges: %w", filepath.Join(dir, "tokenizer.json"), err)
	}
	var kvs []gguf.KV
	if tj.Model.ByteFallback {
		kvs = spmKeys(tokens, types, set, merges, tj.Model.UNK, spacePrefix)
	} else {
		kvs = []gguf.KV{
			{Key: "tokenizer.ggml.model", Value: "gpt2"},
			{Key: "tokenizer.ggml.pre", Value: pre},
			{Key: "tokenizer.ggml.tokens", Value: tokens},
			{Key: "tokenizer.ggml.token_type", Value: types},
			{Key: "tokenizer.ggml.merges", Value: merges},
		}
	}
	special, err := specialKeys(dir, tokens, tj.PostProcessor)
	if err != nil {
		return nil, err
	}
	return append(kvs, special...), nil
}

// mergeStrings turns tokenizer.json merges, ["a b", …] or [["a", "b"], …], into the GGUF's
// "a b" strings.
func mergeStrings(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 {
		return []string{}, nil
	}
	var s []string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var pairs [][2]string
	if err := json.Unmarshal(raw, &pairs); err != nil {
		return nil, err
	}
	out := make([]string, len(pairs))
	for i, p := range pairs {
		if strings.Contains(p[0], " ") || strings.Contains(p[1], " ") {
			return nil, fmt.Errorf("merge %d %q holds a space, which GGUF's \"a b\" form cannot", i, p)
		}
		out[i] = p[0] + " " + p[1]
	}
	return out, nil
}

// tokenizerConfig is the part of tokenizer_config.json llama.cpp's SpecialVocab reads.
type tokenizerConfig struct {
	AddBOS       *bool           `json:"add_bos_token"`
	AddEOS       *bool           `json:"add_eos_token"`
	BOS          json.RawMessage `json:"bos_token"`
	EOS          json.RawMessage `json:"eos_token"`
	UNK          json.RawMessage `json:"unk_token"`
	PAD          json.RawMessage `json:"pad_token"`
	ChatTemplate json.RawMessage `json:"chat_template"`
}

// tokenText is a special token of tokenizer_config.json: a string, or {"content": …}.
func tokenText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var o struct {
		Content string `json:"content"`
	}
	json.Unmarshal(raw, &o)
	return o.Content
}

// specialKeys are the special token ids, BOS/EOS insertion and the chat template. As
// llama.cpp's SpecialVocab, a TemplateProcessing post-processor (Llama 3's, which adds
// <|begin_of_text|>) decides BOS and EOS insertion over tokenizer_config.json's flags.
func specialKeys(dir string, tokens []string, post json.RawMessage) ([]gguf.KV, error) {
	var tc tokenizerConfig
	if err := readJSON(filepath.Join(dir, "tokenizer_config.json"), &tc); err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	if first, last := templateEnds(post); first != "" || last != "" {
		if first != "" {
			bos := first == tokenText(tc.BOS)
			tc.AddBOS = &bos
		}
		if last != "" {
			eos := last == tokenText(tc.EOS)
			tc.AddEOS = &eos
		}
	}
	ids := map[string]int{}
	for id, t := range tokens {
		if _, dup := ids[t]; !dup {
			ids[t] = id
		}
	}
	var kvs []gguf.KV
	eos := -1
	for _, s := range []struct {
		key string
		raw json.RawMessage
	}{{"bos", tc.BOS}, {"eos", tc.EOS}, {"unknown", tc.UNK}, {"padding", tc.PAD}} {
		text := tokenText(s.raw)
		if text == "" {
			continue
		}
		id, ok := ids[text]
		if !ok {
			return nil, fmt.Errorf("%s: %s token %q is not in the vocabulary", filepath.Join(dir, "tokenizer_config.json"), s.key, text)
		}
		if s.key == "eos" {
			eos = id
		}
		kvs = append(kvs, gguf.KV{Key: "tokenizer.ggml." + s.key + "_token_id", Value: uint32(id)})
	}
	// generation_config.json may end turns on more ids (Llama 3's <|eot_id|>): the first
	// other one becomes llama.cpp's end-of-turn token.
	var gc struct {
		EOS json.RawMessage `json:"eos_token_id"`
	}
	if err := readJSON(filepath.Join(dir, "generation_config.json"), &gc); err == nil && len(gc.EOS) > 0 {
		var list []int
		if json.Unmarshal(gc.EOS, &list) != nil {
			var one int
			if json.Unmarshal(gc.EOS, &one) == nil {
				list = []int{one}
			}
		}
		for _, id := range list {
			if id != eos && id >= 0 && id < len(tokens) {
				kvs = append(kvs, gguf.KV{Key: "tokenizer.ggml.eot_token_id", Value: uint32(id)})
				break
			}
		}
	}
	if tc.AddBOS != nil {
		kvs = append(kvs, gguf.KV{Key: "tokenizer.ggml.add_bos_token", Value: *tc.AddBOS})
	}
	if tc.AddEOS != nil {
		kvs = append(kvs, gguf.KV{Key: "tokenizer.ggml.add_eos_token", Value: *tc.AddEOS})
	}
	tmpl, err := chatTemplate(dir, tc.ChatTemplate)
	if err != nil {
		return nil, err
	}
	if tmpl != "" {
		kvs = append(kvs, gguf.KV{Key: "tokenizer.chat_template", Value: tmpl})
	}
	return kvs, nil
}

// readChatTemplate is the model directory's default chat template ("" when it has none).
func readChatTemplate(dir string) (string, error) {
	var tc tokenizerConfig
	if err := readJSON(filepath.Join(dir, "tokenizer_config.json"), &tc); err != nil && !os.IsNotExist(err) {
		return "", err
	}
	return chatTemplate(dir, tc.ChatTemplate)
}

// chatTemplate is the default chat template: tokenizer_config.json's chat_template (a
// string, or a list of named ones), else chat_template.jinja beside it.
func chatTemplate(dir string, raw json.RawMessage) (string, error) {
	if len(raw) > 0 && string(raw) != "null" {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s, nil
		}
		var named []struct {
			Name     string `json:"name"`
			Template string `json:"template"`
		}
		if err := json.Unmarshal(raw, &named); err != nil {
			return "", fmt.Errorf("%s: chat_template: %w", filepath.Join(dir, "tokenizer_config.json"), err)
		}
		sort.SliceStable(named, func(i, j int) bool { return named[i].Name == "default" && named[j].Name != "default" })
		if len(named) > 0 {
			return named[0].Template, nil
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "chat_template.jinja"))
	if os.IsNotExist(err) {
		return "", nil
	}
	return string(b), err
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
