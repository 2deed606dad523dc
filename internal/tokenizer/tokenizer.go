package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode"
)

// Tokenizer encodes text to token ids and back, and renders chat templates.
type Tokenizer struct {
	model     *bpe
	tokens    []string // id → token as written in tokenizer.json
	added     addedVocab
	normalize normalizer
	pre       []preTokenizer
	decoder   decoder
	prefix    []int32 // ids the post-processor adds before the text
	suffix    []int32 // … and after it

	bos           int32 // -1 when there is none
	eos           []int32
	specialTokens map[string]string // bos_token, eos_token, … for chat templates
	chat          *chatTemplate
	turnEndState
}

// Load reads tokenizer.json and tokenizer_config.json from dir (tokenizer_config.json, the
// optional chat_template.jinja, generation_config.json and config.json supply BOS/EOS ids and
// the chat template).
func Load(dir string) (*Tokenizer, error) {
	path := filepath.Join(dir, "tokenizer.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t, err := parseTokenizerJSON(&jsonFile{name: path, data: data})
	if err != nil {
		return nil, err
	}
	if err := t.loadConfig(dir); err != nil {
		return nil, err
	}
	return t, nil
}

func parseTokenizerJSON(f *jsonFile) (*Tokenizer, error) {
	var top tokenizerJSON
	if err := f.decode(f.data, "$", &top); err != nil {
		return nil, err
	}
	t := &Tokenizer{bos: -1}
	var err error
	if t.normalize, err = f.parseNormalizer(top.Normalizer, "$.normalizer"); err != nil {
		return nil, err
	}
	var pre preTokenizerSpec
	if err := f.parsePreTokenizer(top.PreTokenizer, "$.pre_tokenizer", &pre); err != nil {
		return nil, err
	}
	t.pre = pre.steps
	if t.model, t.tokens, err = f.parseModel(top.Model, "$.model", pre.byteLevel); err != nil {
		return nil, err
	}
	if t.decoder, err = f.parseDecoder(top.Decoder, "$.decoder"); err != nil {
		return nil, err
	}
	for i, at := range top.AddedTokens {
		if at.Content == "" || at.ID < 0 {
			return nil, f.errorf(fmt.Sprintf("$.added_tokens[%d]", i), "an added token needs content and an id >= 0")
		}
		for int(at.ID) >= len(t.tokens) {
			t.tokens = append(t.tokens, "")
		}
		t.tokens[at.ID] = at.Content
		t.added.add(addedToken{content: at.Content, id: at.ID, special: at.Special, lstrip: at.LStrip, rstrip: at.RStrip})
	}
	if err := f.parsePostProcessor(top.PostProcessor, "$.post_processor", t); err != nil {
		return nil, err
	}
	return t, nil
}

func (f *jsonFile) parsePostProcessor(raw json.RawMessage, path string, t *Tokenizer) error {
	if isNull(raw) {
		return nil
	}
	kind, err := f.componentType(raw, path)
	if err != nil {
		return err
	}
	switch kind {
	case "ByteLevel":
		return nil // only adjusts offsets
	case "Sequence":
		var seq struct {
			Processors []json.RawMessage `json:"processors"`
		}
		if err := f.decode(raw, path, &seq); err != nil {
			return err
		}
		for i, item := range seq.Processors {
			if err := f.parsePostProcessor(item, fmt.Sprintf("%s.processors[%d]", path, i), t); err != nil {
				return err
			}
		}
		return nil
	case "TemplateProcessing":
		var tp struct {
			Single []struct {
				SpecialToken *struct {
					ID string `json:"id"`
				} `json:"SpecialToken"`
				Sequence *struct {
					ID string `json:"id"`
				} `json:"Sequence"`
			} `json:"single"`
			SpecialTokens map[string]struct {
				IDs []int32 `json:"ids"`
			} `json:"special_tokens"`
		}
		if err := f.decode(raw, path, &tp); err != nil {
			return err
		}
		t.prefix, t.suffix = nil, nil
		seenSequence := false
		for i, item := range tp.Single {
			switch {
			case item.Sequence != nil:
				seenSequence = true
			case item.SpecialToken != nil:
				special, ok := tp.SpecialTokens[item.SpecialToken.ID]
				if !ok {
					return f.errorf(fmt.Sprintf("%s.single[%d]", path, i), "special token %q is not in special_tokens", item.SpecialToken.ID)
				}
				if seenSequence {
					t.suffix = append(t.suffix, special.IDs...)
				} else {
					t.prefix = append(t.prefix, special.IDs...)
				}
			default:
				return f.errorf(fmt.Sprintf("%s.single[%d]", path, i), "expected SpecialToken or Sequence")
			}
		}
		return nil
	default:
		return f.errorf(path+".type", "unsupported post-processor %q", kind)
	}
}

// loadConfig reads the special tokens and chat template of tokenizer_config.json, and extra
// EOS ids from generation_config.json / config.json when present.
func (t *Tokenizer) loadConfig(dir string) error {
	t.specialTokens = map[string]string{}
	path := filepath.Join(dir, "tokenizer_config.json")
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	var cfg tokenizerConfigJSON
	f := &jsonFile{name: path, data: data}
	if err == nil {
		if err := f.decode(data, "$", &cfg); err != nil {
			return err
		}
	}
	for key, raw := range map[string]json.RawMessage{
		"bos_token": cfg.BOSToken, "eos_token": cfg.EOSToken, "unk_token": cfg.UNKToken, "pad_token": cfg.PADToken,
	} {
		content, ok, err := f.tokenString(raw, "$."+key)
		if err != nil {
			return err
		}
		if ok {
			t.specialTokens[key] = content
		}
	}
	if bos, ok := t.specialTokens["bos_token"]; ok {
		id, found := t.TokenID(bos)
		if !found {
			return f.errorf("$.bos_token", "token %q is not in the vocabulary", bos)
		}
		t.bos = id
	}
	if eos, ok := t.specialTokens["eos_token"]; ok {
		id, found := t.TokenID(eos)
		if !found {
			return f.errorf("$.eos_token", "token %q is not in the vocabulary", eos)
		}
		t.eos = append(t.eos, id)
	}
	for _, name := range []string{"generation_config.json", "config.json"} {
		ids, err := readEOSIDs(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		for _, id := range ids {
			if !slices.Contains(t.eos, id) {
				t.eos = append(t.eos, id)
			}
		}
	}
	source, err := chatTemplateSource(dir, f, cfg.ChatTemplate)
	if err != nil {
		return err
	}
	if source != "" {
		if t.chat, err = newChatTemplate(source, path); err != nil {
			return err
		}
	}
	return nil
}

// readEOSIDs reads "eos_token_id" (a number or a list) from a JSON file that may be missing.
func readEOSIDs(path string) ([]int32, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	f := &jsonFile{name: path, data: data}
	var cfg struct {
		EOS json.RawMessage `json:"eos_token_id"`
	}
	if err := f.decode(data, "$", &cfg); err != nil {
		return nil, err
	}
	if isNull(cfg.EOS) {
		return nil, nil
	}
	var one int32
	if json.Unmarshal(cfg.EOS, &one) == nil {
		return []int32{one}, nil
	}
	var many []int32
	if err := f.decode(cfg.EOS, "$.eos_token_id", &many); err != nil {
		return nil, err
	}
	return many, nil
}

// Encode returns the ids of text. With addSpecialTokens the post-processor's tokens (BOS for
// Llama) are added, as HF's encode(text, add_special_tokens=True) does.
func (t *Tokenizer) Encode(text string, addSpecialTokens bool) []int32 {
	ids := make([]int32, 0, len(text)/3+len(t.prefix)+len(t.suffix))
	if addSpecialTokens {
		ids = append(ids, t.prefix...)
	}
	t.added.split(text, func(segment string, start int, addedID int32) {
		if addedID >= 0 {
			ids = append(ids, addedID)
			return
		}
		ids = t.encodePlain(ids, segment, start == 0)
	})
	if addSpecialTokens {
		ids = append(ids, t.suffix...)
	}
	return ids
}

// encodePlain appends the ids of a stretch of text without added tokens; atStart says the
// stretch begins the text.
func (t *Tokenizer) encodePlain(ids []int32, segment string, atStart bool) []int32 {
	if t.normalize != nil {
		segment = t.normalize(segment)
	}
	words := []piece{{text: segment, atStart: atStart}}
	for _, step := range t.pre {
		var next []piece
		for _, w := range words {
			next = step.split(next, w)
		}
		words = next
	}
	for _, w := range words {
		ids = t.model.encodeWord(ids, w.text)
	}
	return ids
}

// EncodeSpans is Encode(text, false) that also maps byte spans of text (in order, not
// overlapping) to the tokens that overlap each of them, as transformers' char_to_token
// marks the tokens of assistant spans: a token that straddles a span's edge counts as
// inside it.
func (t *Tokenizer) EncodeSpans(text string, spans []Span) ([]int32, []Span) {
	ids := make([]int32, 0, len(text)/3)
	out := make([]Span, len(spans))
	// edges are the span boundaries in order: each start, then its end
	edges := make([]int, 0, 2*len(spans))
	for _, s := range spans {
		edges = append(edges, s.Start, s.End)
	}
	next := 0 // the first edge not yet mapped to a token index
	mapEdge := func(tokenIndex int) {
		if next%2 == 0 {
			out[next/2].Start = tokenIndex
		} else {
			out[next/2].End = tokenIndex
		}
		next++
	}
	t.added.split(text, func(segment string, start int, addedID int32) {
		end := start + len(segment)
		if addedID >= 0 {
			// an added token lies inside a span when it overlaps it
			for next < len(edges) && edges[next] < end {
				if next%2 == 1 && edges[next] > start {
					mapEdge(len(ids) + 1)
				} else {
					mapEdge(len(ids))
				}
			}
			ids = append(ids, addedID)
			return
		}
		first := len(ids)
		ids = t.encodePlain(ids, segment, start == 0)
		whole := ids[first:]
		for next < len(edges) && edges[next] < end {
			cut := edges[next] - start
			if cut <= 0 {
				mapEdge(first)
				continue
			}
			// The tokens of the text before the cut: those of the whole stretch they agree
			// with lie before it; where they part, a token straddles it.
			before := t.encodePlain(nil, segment[:cut], start == 0)
			k := commonIDs(before, whole)
			if k < len(before) && next%2 == 1 {
				k++ // a straddling token at a span's end is inside it
			}
			mapEdge(first + k)
		}
	})
	for next < len(edges) {
		mapEdge(len(ids))
	}
	return ids, out
}

func commonIDs(a, b []int32) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// Decode returns the text of ids; skipSpecial leaves out special tokens. Unknown ids are
// skipped. The result equals HF tokenizers' decode.
func (t *Tokenizer) Decode(ids []int32, skipSpecial bool) string {
	tokens := make([]string, 0, len(ids))
	for _, id := range ids {
		if id < 0 || int(id) >= len(t.tokens) || t.tokens[id] == "" {
			continue
		}
		if skipSpecial && t.added.isSpecial(id) {
			continue
		}
		tokens = append(tokens, t.tokens[id])
	}
	if t.decoder == nil {
		return strings.Join(tokens, " ")
	}
	return strings.Join(t.decoder(tokens), "")
}

// BOS returns the beginning-of-sequence id from tokenizer_config.json.
func (t *Tokenizer) BOS() (int32, bool) { return t.bos, t.bos >= 0 }

// EOS returns the end-of-sequence ids: tokenizer_config.json's eos_token first (the one
// mlx-lm appends to text rows), then extra ids from generation_config.json and config.json.
func (t *Tokenizer) EOS() []int32 { return slices.Clone(t.eos) }

// VocabSize counts the ids, added tokens included.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// TokenID returns the id of a token written as in the vocabulary (or an added token).
func (t *Tokenizer) TokenID(token string) (int32, bool) {
	if id, ok := t.added.ids[token]; ok {
		return id, true
	}
	id, ok := t.model.vocab[t.model.modelBytes(token)]
	return id, ok
}

// Token returns the vocabulary entry of id ("" when out of range).
func (t *Tokenizer) Token(id int32) string {
	if id < 0 || int(id) >= len(t.tokens) {
		return ""
	}
	return t.tokens[id]
}

// addedToken is a token matched in raw text before the model runs.
type addedToken struct {
	content        string
	id             int32
	special        bool
	lstrip, rstrip bool
}

type addedVocab struct {
	byFirstByte [256][]addedToken // longest first, for leftmost-longest matching
	ids         map[string]int32
	special     map[int32]bool
}

func (a *addedVocab) add(tok addedToken) {
	if a.ids == nil {
		a.ids, a.special = map[string]int32{}, map[int32]bool{}
	}
	a.ids[tok.content] = tok.id
	if tok.special {
		a.special[tok.id] = true
	}
	list := append(a.byFirstByte[tok.content[0]], tok)
	slices.SortStableFunc(list, func(x, y addedToken) int { return len(y.content) - len(x.content) })
	a.byFirstByte[tok.content[0]] = list
}

func (a *addedVocab) isSpecial(id int32) bool { return a.special[id] }

// split calls fn for each stretch of plain text (addedID -1) and each added token, in order.
// start is the byte offset of the stretch in text.
func (a *addedVocab) split(text string, fn func(segment string, start int, addedID int32)) {
	plainStart := 0
	for i := 0; i < len(text); i++ {
		candidates := a.byFirstByte[text[i]]
		if len(candidates) == 0 {
			continue
		}
		for _, tok := range candidates {
			if !strings.HasPrefix(text[i:], tok.content) {
				continue
			}
			matchStart, matchEnd := i, i+len(tok.content)
			if tok.lstrip {
				matchStart = plainStart + len(strings.TrimRightFunc(text[plainStart:matchStart], unicode.IsSpace))
			}
			if tok.rstrip {
				matchEnd = len(text) - len(strings.TrimLeftFunc(text[matchEnd:], unicode.IsSpace))
			}
			if matchStart > plainStart {
				fn(text[plainStart:matchStart], plainStart, -1)
			}
			fn(tok.content, matchStart, tok.id)
			plainStart = matchEnd
			i = matchEnd - 1
			break
		}
	}
	if plainStart < len(text) {
		fn(text[plainStart:], plainStart, -1)
	}
}
