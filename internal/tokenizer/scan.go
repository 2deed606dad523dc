package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// Hand-written scanners for the two split patterns the Llama family uses. Go's regexp has no
// lookahead, and a direct scanner is several times faster than a backtracking engine.

// llama3Pattern is the Llama-3 pre-tokenizer split regex; qwen2Pattern differs only in
// splitting numbers one digit at a time.
const (
	llama3Pattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	qwen2Pattern  = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	gpt2Pattern   = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
)

func isLetter(r rune) bool {
	return r < utf8.RuneSelf && ('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z') || r >= utf8.RuneSelf && unicode.IsLetter(r)
}
func isNumber(r rune) bool {
	return r < utf8.RuneSelf && '0' <= r && r <= '9' || r >= utf8.RuneSelf && unicode.IsNumber(r)
}

// isWhitespace is the regex class \s in Unicode mode (the White_Space property).
func isWhitespace(r rune) bool {
	if r < utf8.RuneSelf {
		return r == ' ' || '\t' <= r && r <= '\r'
	}
	return unicode.IsSpace(r)
}

func isNewline(r rune) bool { return r == '\r' || r == '\n' }

func runeAt(s string, i int) (rune, int) {
	if i >= len(s) {
		return -1, 0
	}
	if c := s[i]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(s[i:])
}

// contraction returns the length of 's 't 're 've 'm 'll 'd at i (0 if none).
func contraction(s string, i int, ignoreCase bool) int {
	if i+1 >= len(s) || s[i] != '\'' {
		return 0
	}
	lower := func(c byte) byte {
		if ignoreCase && 'A' <= c && c <= 'Z' {
			return c + 'a' - 'A'
		}
		return c
	}
	switch lower(s[i+1]) {
	case 's', 't', 'm', 'd':
		return 2
	}
	if i+2 < len(s) {
		switch string([]byte{lower(s[i+1]), lower(s[i+2])}) {
		case "re", "ve", "ll":
			return 3
		}
	}
	return 0
}

// spanWhile returns the end of the run of runes from i that satisfy keep, and how many runes it has.
func spanWhile(s string, i int, keep func(rune) bool) (int, int) {
	count := 0
	for i < len(s) {
		r, w := runeAt(s, i)
		if !keep(r) {
			break
		}
		i += w
		count++
	}
	return i, count
}

// whitespaceTail resolves `\s+(?!\S)|\s+` for the whitespace run starting at i.
func whitespaceTail(s string, i int) int {
	end, count := spanWhile(s, i, isWhitespace)
	if end == len(s) || count == 1 {
		return end
	}
	// Leave the last whitespace rune to prefix the next word.
	_, w := utf8.DecodeLastRuneInString(s[:end])
	return end - w
}

func notSpaceLetterNumber(r rune) bool { return !isWhitespace(r) && !isLetter(r) && !isNumber(r) }

// matchLlama3 returns the length of the Llama-3 pattern's match at i (always > 0).
func matchLlama3(s string, i, maxDigits int) int {
	if n := contraction(s, i, true); n > 0 {
		return n
	}
	r0, w0 := runeAt(s, i)
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if isLetter(r0) {
		end, _ := spanWhile(s, i, isLetter)
		return end - i
	}
	if !isNewline(r0) && !isNumber(r0) {
		if r1, _ := runeAt(s, i+w0); isLetter(r1) {
			end, _ := spanWhile(s, i+w0, isLetter)
			return end - i
		}
	}
	// \p{N}{1,3}
	if isNumber(r0) {
		j := i
		for n := 0; n < maxDigits; n++ {
			r, w := runeAt(s, j)
			if !isNumber(r) {
				break
			}
			j += w
		}
		return j - i
	}
	// ` ?[^\s\p{L}\p{N}]+[\r\n]*`
	j := i
	if r0 == ' ' {
		j++
	}
	if end, count := spanWhile(s, j, notSpaceLetterNumber); count > 0 {
		end, _ = spanWhile(s, end, isNewline)
		return end - i
	}
	// \s*[\r\n]+ : the whitespace run up to and including its last newline.
	end, _ := spanWhile(s, i, isWhitespace)
	for k := end - 1; k >= i; k-- {
		if s[k] == '\n' || s[k] == '\r' {
			return k + 1 - i
		}
	}
	return whitespaceTail(s, i) - i
}

// matchGPT2 returns the length of the GPT-2 pattern's match at i (always > 0).
func matchGPT2(s string, i int) int {
	if n := contraction(s, i, false); n > 0 {
		return n
	}
	r0, w0 := runeAt(s, i)
	j, first := i, r0
	if r0 == ' ' {
		if r1, _ := runeAt(s, i+w0); r1 >= 0 && !isWhitespace(r1) {
			j, first = i+1, r1
		}
	}
	switch {
	case isLetter(first):
		end, _ := spanWhile(s, j, isLetter)
		return end - i
	case isNumber(first):
		end, _ := spanWhile(s, j, isNumber)
		return end - i
	case !isWhitespace(first):
		end, _ := spanWhile(s, j, notSpaceLetterNumber)
		return end - i
	}
	return whitespaceTail(s, i) - i
}
