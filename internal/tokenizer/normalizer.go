package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"

	"golang.org/x/text/unicode/norm"
)

// normalizer rewrites one stretch of text between added tokens before it is pre-tokenized.
type normalizer func(string) string

func (f *jsonFile) parseNormalizer(raw json.RawMessage, path string) (normalizer, error) {
	if isNull(raw) {
		return nil, nil
	}
	kind, err := f.componentType(raw, path)
	if err != nil {
		return nil, err
	}
	switch kind {
	case "Sequence":
		return parseSequence(f, raw, path, "normalizers", f.parseNormalizer)
	case "NFC":
		return norm.NFC.String, nil
	case "NFD":
		return norm.NFD.String, nil
	case "NFKC":
		return norm.NFKC.String, nil
	case "NFKD":
		return norm.NFKD.String, nil
	case "Lowercase":
		return strings.ToLower, nil
	case "Prepend":
		var p struct {
			Prepend string `json:"prepend"`
		}
		if err := f.decode(raw, path, &p); err != nil {
			return nil, err
		}
		return func(s string) string {
			if s == "" {
				return s
			}
			return p.Prepend + s
		}, nil
	case "Replace":
		from, to, err := f.replacement(raw, path)
		if err != nil {
			return nil, err
		}
		return func(s string) string { return strings.ReplaceAll(s, from, to) }, nil
	case "Strip":
		var st struct {
			Left  bool `json:"strip_left"`
			Right bool `json:"strip_right"`
		}
		if err := f.decode(raw, path, &st); err != nil {
			return nil, err
		}
		return func(s string) string {
			if st.Left {
				s = strings.TrimLeftFunc(s, isWhitespace)
			}
			if st.Right {
				s = strings.TrimRightFunc(s, isWhitespace)
			}
			return s
		}, nil
	default:
		return nil, f.errorf(path+".type", "unsupported normalizer %q", kind)
	}
}

// parseSequence reads a Sequence component (normalizers or decoders, named by key) and
// returns its steps chained in order. Null steps are dropped.
func parseSequence[F ~func(T) T, T any](f *jsonFile, raw json.RawMessage, path, key string, parse func(json.RawMessage, string) (F, error)) (F, error) {
	var seq map[string]json.RawMessage
	if err := f.decode(raw, path, &seq); err != nil {
		return nil, err
	}
	var items []json.RawMessage
	if list, ok := seq[key]; ok && !isNull(list) {
		if err := f.decode(list, path+"."+key, &items); err != nil {
			return nil, err
		}
	}
	var steps []F
	for i, item := range items {
		step, err := parse(item, fmt.Sprintf("%s.%s[%d]", path, key, i))
		if err != nil {
			return nil, err
		}
		if step != nil {
			steps = append(steps, step)
		}
	}
	return func(v T) T {
		for _, step := range steps {
			v = step(v)
		}
		return v
	}, nil
}
