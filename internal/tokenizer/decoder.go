package tokenizer

import (
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
)

// byteToChar is GPT-2's bytes_to_unicode table: printable bytes map to themselves, the others
// to the code points from U+0100 on, so every byte has a visible char.
var (
	byteToChar [256]rune
	charToByte = map[rune]byte{}
)

func init() {
	next := rune(256)
	for b := 0; b < 256; b++ {
		printable := '!' <= b && b <= '~' || '¡' <= b && b <= '¬' || '®' <= b && b <= 'ÿ'
		if printable {
			byteToChar[b] = rune(b)
		} else {
			byteToChar[b] = next
			next++
		}
		charToByte[byteToChar[b]] = byte(b)
	}
}

// byteLevelDecode maps a byte-level token back to raw bytes; ok is false when a char is outside
// the table (the token is then used as it is, like HF does).
func byteLevelDecode(token string) ([]byte, bool) {
	out := make([]byte, 0, len(token))
	for _, r := range token {
		b, ok := charToByte[r]
		if !ok {
			return nil, false
		}
		out = append(out, b)
	}
	return out, true
}

// lossyUTF8 replaces each maximal invalid subsequence by U+FFFD, as Rust's from_utf8_lossy does.
func lossyUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	for i := 0; i < len(b); {
		r, w := utf8.DecodeRune(b[i:])
		if r != utf8.RuneError || w > 1 {
			sb.Write(b[i : i+w])
			i += w
			continue
		}
		sb.WriteRune(utf8.RuneError)
		i += invalidPrefixLength(b[i:])
	}
	return sb.String()
}

// invalidPrefixLength is the length of the maximal prefix of b that starts a UTF-8 sequence
// but does not complete one (at least 1).
func invalidPrefixLength(b []byte) int {
	lead := b[0]
	var need int
	lo, hi := byte(0x80), byte(0xBF)
	switch {
	case lead >= 0xC2 && lead <= 0xDF:
		need = 1
	case lead == 0xE0:
		need, lo = 2, 0xA0
	case lead == 0xED:
		need, hi = 2, 0x9F
	case lead >= 0xE1 && lead <= 0xEF:
		need = 2
	case lead == 0xF0:
		need, lo = 3, 0x90
	case lead == 0xF4:
		need, hi = 3, 0x8F
	case lead >= 0xF1 && lead <= 0xF3:
		need = 3
	default:
		return 1
	}
	n := 1
	for k := 0; k < need && n < len(b); k++ {
		c := b[n]
		if c < lo || c > hi {
			break
		}
		lo, hi = 0x80, 0xBF
		n++
	}
	return n
}

// decoder turns token strings back into text pieces (HF's decode_chain).
type decoder func(tokens []string) []string

func (f *jsonFile) parseDecoder(raw json.RawMessage, path string) (decoder, error) {
	if isNull(raw) {
		return nil, nil
	}
	kind, err := f.componentType(raw, path)
	if err != nil {
		return nil, err
	}
	switch kind {
	case "Sequence":
		return parseSequence(f, raw, path, "decoders", f.parseDecoder)
	case "ByteLevel":
		return decodeByteLevel, nil
	case "ByteFallback":
		return decodeByteFallback, nil
	case "Fuse":
		return func(tokens []string) []string { return []string{strings.Join(tokens, "")} }, nil
	case "Strip":
		var st struct {
			Content string `json:"content"`
			Start   int    `json:"start"`
			Stop    int    `json:"stop"`
		}
		if err := f.decode(raw, path, &st); err != nil {
			return nil, err
		}
		return func(tokens []string) []string {
			out := make([]string, len(tokens))
			for i, t := range tokens {
				for n := 0; n < st.Start && strings.HasPrefix(t, st.Content); n++ {
					t = t[len(st.Content):]
				}
				for n := 0; n < st.Stop && strings.HasSuffix(t, st.Content); n++ {
					t = t[:len(t)-len(st.Content)]
				}
				out[i] = t
			}
			return out
		}, nil
	case "Replace":
		from, to, err := f.replacement(raw, path)
		if err != nil {
			return nil, err
		}
		return func(tokens []string) []string {
			out := make([]string, len(tokens))
			for i, t := range tokens {
				out[i] = strings.ReplaceAll(t, from, to)
			}
			return out
		}, nil
	case "Metaspace":
		var ms struct {
			Replacement    string  `json:"replacement"`
			PrependScheme  *string `json:"prepend_scheme"`
			AddPrefixSpace *bool   `json:"add_prefix_space"`
		}
		if err := f.decode(raw, path, &ms); err != nil {
			return nil, err
		}
		scheme, err := f.prependScheme(ms.PrependScheme, ms.AddPrefixSpace, path)
		if err != nil {
			return nil, err
		}
		if ms.Replacement == "" {
			ms.Replacement = "▁"
		}
		return func(tokens []string) []string {
			out := make([]string, len(tokens))
			for i, t := range tokens {
				if i == 0 && scheme != "never" {
					// The replacement the pre-tokenizer prepended is dropped, not turned into a space.
					out[i] = strings.ReplaceAll(t, ms.Replacement, "")
				} else {
					out[i] = strings.ReplaceAll(t, ms.Replacement, " ")
				}
			}
			return out
		}, nil
	default:
		return nil, f.errorf(path+".type", "unsupported decoder %q", kind)
	}
}

func decodeByteLevel(tokens []string) []string {
	var raw []byte
	for _, t := range tokens {
		if b, ok := byteLevelDecode(t); ok {
			raw = append(raw, b...)
		} else {
			raw = append(raw, t...)
		}
	}
	return []string{lossyUTF8(raw)}
}

// decodeByteFallback turns runs of <0xXX> tokens back into text; an invalid run becomes one
// U+FFFD per byte.
func decodeByteFallback(tokens []string) []string {
	out := make([]string, 0, len(tokens))
	var pending []byte
	flush := func() {
		if len(pending) == 0 {
			return
		}
		if utf8.Valid(pending) {
			out = append(out, string(pending))
		} else {
			for range pending {
				out = append(out, "\uFFFD")
			}
		}
		pending = pending[:0]
	}
	for _, t := range tokens {
		if len(t) == 6 && strings.HasPrefix(t, "<0x") && t[5] == '>' {
			if b, err := strconv.ParseUint(t[3:5], 16, 8); err == nil {
				pending = append(pending, byte(b))
				continue
			}
		}
		flush()
		out = append(out, t)
	}
	flush()
	return out
}
