package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/dlclark/regexp2/v2"
)

// piece is a stretch of text on its way to the model. atStart marks a piece that begins at the
// very start of the input, which Metaspace's prepend_scheme "first" needs to know.
type piece struct {
	text    string
	atStart bool
}

// preTokenizer cuts a piece into the words BPE runs on.
type preTokenizer interface {
	split(dst []piece, p piece) []piece
}

// pipeline holds what the pre-tokenizer section of tokenizer.json produced.
type preTokenizerSpec struct {
	steps     []preTokenizer
	byteLevel bool // a ByteLevel step is present: the model works on raw bytes
}

func (f *jsonFile) parsePreTokenizer(raw json.RawMessage, path string, spec *preTokenizerSpec) error {
	if isNull(raw) {
		return nil
	}
	kind, err := f.componentType(raw, path)
	if err != nil {
		return err
	}
	if spec.byteLevel {
		// Steps after ByteLevel would see its byte-to-char mapping, which this package skips.
		return f.errorf(path+".type", "pre-tokenizer %q after ByteLevel is not supported", kind)
	}
	switch kind {
	case "Sequence":
		var seq struct {
			PreTokenizers []json.RawMessage `json:"pretokenizers"`
		}
		if err := f.decode(raw, path, &seq); err != nil {
			return err
		}
		for i, item := range seq.PreTokenizers {
			if err := f.parsePreTokenizer(item, fmt.Sprintf("%s.pretokenizers[%d]", path, i), spec); err != nil {
				return err
			}
		}
		return nil
	case "ByteLevel":
		var bl struct {
			AddPrefixSpace bool  `json:"add_prefix_space"`
			UseRegex       *bool `json:"use_regex"`
		}
		if err := f.decode(raw, path, &bl); err != nil {
			return err
		}
		useRegex := bl.UseRegex == nil || *bl.UseRegex
		spec.steps = append(spec.steps, byteLevelSplit{addPrefixSpace: bl.AddPrefixSpace, useRegex: useRegex})
		spec.byteLevel = true
		return nil
	case "Split":
		var sp struct {
			Pattern  patternJSON `json:"pattern"`
			Behavior string      `json:"behavior"`
			Invert   bool        `json:"invert"`
		}
		if err := f.decode(raw, path, &sp); err != nil {
			return err
		}
		if sp.Invert {
			return f.errorf(path+".invert", "inverted Split is not supported")
		}
		if sp.Behavior != "Isolated" && sp.Behavior != "Removed" {
			return f.errorf(path+".behavior", "Split behavior %q is not supported (Isolated, Removed)", sp.Behavior)
		}
		step, err := f.newSplit(sp.Pattern, sp.Behavior == "Removed", path+".pattern")
		if err != nil {
			return err
		}
		spec.steps = append(spec.steps, step)
		return nil
	case "Metaspace":
		var ms struct {
			Replacement    string  `json:"replacement"`
			PrependScheme  *string `json:"prepend_scheme"`
			AddPrefixSpace *bool   `json:"add_prefix_space"`
			Split          *bool   `json:"split"`
		}
		if err := f.decode(raw, path, &ms); err != nil {
			return err
		}
		scheme, err := f.prependScheme(ms.PrependScheme, ms.AddPrefixSpace, path)
		if err != nil {
			return err
		}
		if ms.Replacement == "" {
			ms.Replacement = "▁"
		}
		spec.steps = append(spec.steps, metaspaceSplit{
			replacement: ms.Replacement,
			scheme:      scheme,
			splitWords:  ms.Split == nil || *ms.Split,
		})
		return nil
	default:
		return f.errorf(path+".type", "unsupported pre-tokenizer %q", kind)
	}
}

// prependScheme reads Metaspace's prepend_scheme, or the older add_prefix_space flag.
func (f *jsonFile) prependScheme(scheme *string, addPrefixSpace *bool, path string) (string, error) {
	if scheme == nil {
		if addPrefixSpace != nil && !*addPrefixSpace {
			return "never", nil
		}
		return "always", nil
	}
	switch *scheme {
	case "always", "first", "never":
		return *scheme, nil
	}
	return "", f.errorf(path+".prepend_scheme", "unknown prepend_scheme %q", *scheme)
}

func (f *jsonFile) newSplit(p patternJSON, remove bool, path string) (preTokenizer, error) {
	switch {
	case p.Regex != nil && *p.Regex == llama3Pattern:
		return scannerSplit{match: func(s string, i int) int { return matchLlama3(s, i, 3) }, remove: remove}, nil
	case p.Regex != nil && *p.Regex == qwen2Pattern:
		return scannerSplit{match: func(s string, i int) int { return matchLlama3(s, i, 1) }, remove: remove}, nil
	case p.Regex != nil && *p.Regex == gpt2Pattern:
		return scannerSplit{match: matchGPT2, remove: remove}, nil
	case p.Regex != nil:
		re, err := regexp2.Compile(*p.Regex, regexp2.Unicode)
		if err != nil {
			return nil, f.errorf(path+".Regex", "bad regex: %v", err)
		}
		return regexSplit{re: re, remove: remove}, nil
	case p.String != nil && *p.String != "":
		return stringSplit{sep: *p.String, remove: remove}, nil
	}
	return nil, f.errorf(path, "expected a String or Regex pattern")
}

// scannerSplit splits with a hand-written scanner (Isolated: every match is its own word).
type scannerSplit struct {
	match  func(string, int) int
	remove bool
}

func (s scannerSplit) split(dst []piece, p piece) []piece {
	start := p.atStart
	for i := 0; i < len(p.text); {
		n := s.match(p.text, i)
		if !s.remove {
			dst = append(dst, piece{text: p.text[i : i+n], atStart: start})
		}
		start = false
		i += n
	}
	return dst
}

// regexSplit handles split patterns that have no scanner, with a backtracking regex engine.
type regexSplit struct {
	re     *regexp2.Regexp
	remove bool
}

func (s regexSplit) split(dst []piece, p piece) []piece {
	// Byte offsets of every match; a pattern that fails to run leaves the piece whole.
	matches, err := s.re.FindAllStringIndex(p.text, -1)
	if err != nil {
		return append(dst, p)
	}
	last := 0
	emit := func(from, to int, isMatch bool) {
		if from == to || (isMatch && s.remove) {
			return
		}
		dst = append(dst, piece{text: p.text[from:to], atStart: p.atStart && from == 0})
	}
	for _, m := range matches {
		emit(last, m[0], false)
		emit(m[0], m[1], true)
		last = m[1]
	}
	emit(last, len(p.text), false)
	return dst
}

type stringSplit struct {
	sep    string
	remove bool
}

func (s stringSplit) split(dst []piece, p piece) []piece {
	text, offset := p.text, 0
	for {
		i := strings.Index(text, s.sep)
		if i < 0 {
			break
		}
		if i > 0 {
			dst = append(dst, piece{text: text[:i], atStart: p.atStart && offset == 0})
		}
		if !s.remove {
			dst = append(dst, piece{text: s.sep, atStart: p.atStart && offset+i == 0})
		}
		text, offset = text[i+len(s.sep):], offset+i+len(s.sep)
	}
	if text != "" {
		dst = append(dst, piece{text: text, atStart: p.atStart && offset == 0})
	}
	return dst
}

// byteLevelSplit is the ByteLevel pre-tokenizer. Its byte-to-char mapping is not applied:
// the BPE model of a byte-level tokenizer works on raw bytes directly.
type byteLevelSplit struct {
	addPrefixSpace bool
	useRegex       bool
}

func (b byteLevelSplit) split(dst []piece, p piece) []piece {
	if b.addPrefixSpace && !strings.HasPrefix(p.text, " ") {
		p.text = " " + p.text
	}
	if !b.useRegex {
		return append(dst, p)
	}
	return scannerSplit{match: matchGPT2}.split(dst, p)
}

// metaspaceSplit replaces spaces by the replacement (▁), prepends one, and cuts before each.
type metaspaceSplit struct {
	replacement string
	scheme      string // always, first or never
	splitWords  bool
}

func (m metaspaceSplit) split(dst []piece, p piece) []piece {
	text := strings.ReplaceAll(p.text, " ", m.replacement)
	if !strings.HasPrefix(text, m.replacement) && (m.scheme == "always" || m.scheme == "first" && p.atStart) {
		text = m.replacement + text
	}
	if !m.splitWords {
		return append(dst, piece{text: text, atStart: p.atStart})
	}
	// MergedWithNext: each replacement starts a new word.
	start := 0
	for i := 0; i < len(text); {
		j := strings.Index(text[i:], m.replacement)
		if j < 0 {
			break
		}
		at := i + j
		if at > start {
			dst = append(dst, piece{text: text[start:at], atStart: p.atStart && start == 0})
			start = at
		}
		i = at + len(m.replacement)
	}
	if start < len(text) {
		dst = append(dst, piece{text: text[start:], atStart: p.atStart && start == 0})
	}
	return dst
}
