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
		var seq struct {
			Normalizers []json.RawMessage `json:"normalizers"`
		}
		if err := f.decode(raw, path, &seq); err != nil {
			return nil, err
		}
		var steps []normalizer
		for i, item := range seq.Normalizers {
			step, err := f.parseNormalizer(item, fmt.Sprintf("%s.normalizers[%d]", path, i))
			if err != nil {
				return nil, err
			}
			if step != nil {
				steps = append(steps, step)
			}
		}
		return func(s string) string {
			for _, step := range steps {
				s = step(s)
			}
			return s
		}, nil
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
		var r struct {
			Pattern patternJSON `json:"pattern"`
			Content string      `json:"content"`
		}
		if err := f.decode(raw, path, &r); err != nil {
			return nil, err
		}
		if r.Pattern.String == nil {
			return nil, f.errorf(path+".pattern", "only String patterns are supported in Replace")
		}
		from, to := *r.Pattern.String, r.Content
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
