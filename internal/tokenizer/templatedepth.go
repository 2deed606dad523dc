package tokenizer

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxTemplateNesting bounds how deep a chat template nests brackets within one tag, and
// blocks ({% if %}, {% for %}, …) within each other; maxTagTokens bounds the tokens of one
// tag. The template engine parses and renders by recursion, one call per level of nesting
// and per operator or accessor of a chain (a.b.c…, not not …, 1 + 1 + …), and its errors
// repeat the expression at every level: a template read from a model directory nesting a
// few hundred thousand levels overflows the stack, a crash nothing can recover from, and a
// chain of some ten thousand accessors takes minutes and gigabytes to fail. Real chat
// templates nest fewer than ten levels, with tags of a few dozen tokens.
const (
	maxTemplateNesting = 100
	maxTagTokens       = 1000
)

// blockOpeners are the tags whose {% end… %} closes them ("set" only in its block form).
var blockOpeners = map[string]bool{"if": true, "for": true, "macro": true, "call": true, "filter": true,
	"block": true, "with": true, "autoescape": true, "raw": true, "set": true}

// checkTemplateNesting refuses a template nested deeper than maxTemplateNesting, a tag of
// more than maxTagTokens, invalid UTF-8 or a character outside ASCII in a tag (not in a
// string), naming the line. It only counts: a template it passes may still be refused by the engine, which
// reports syntax errors better.
func checkTemplateNesting(src string) error {
	if !utf8.ValidString(src) {
		i := 0
		for i < len(src) {
			r, n := utf8.DecodeRuneInString(src[i:])
			if r == utf8.RuneError && n == 1 {
				break
			}
			i += n
		}
		return fmt.Errorf("line %d: invalid UTF-8 (byte 0x%02x): a template is UTF-8 text", lineAt(src, i), src[i])
	}
	blocks := 0
	for i := 0; i < len(src); {
		open := src[i:min(i+2, len(src))]
		switch open {
		case "{#":
			end := strings.Index(src[i+2:], "#}")
			if end < 0 {
				return nil // unclosed: the engine says so
			}
			i += 2 + end + 2
			continue
		case "{{", "{%":
		default:
			i++
			continue
		}
		closer := "}}"
		if open == "{%" {
			closer = "%}"
		}
		start := i + 2
		depth, end, tokens := 0, -1, 0
		var quote byte
		inWord := false
	tag:
		for j := start; j < len(src); j++ {
			c := src[j]
			word := c == '_' || c >= 0x80 || ('0' <= c && c <= '9') || ('a' <= c|0x20 && c|0x20 <= 'z')
			if quote == 0 && (word && !inWord || !word && c > ' ') {
				if tokens++; tokens > maxTagTokens {
					return fmt.Errorf("line %d: a tag of more than %d tokens", lineAt(src, i), maxTagTokens)
				}
			}
			inWord = quote == 0 && word
			if quote == 0 && c >= 0x80 {
				// names are ASCII in every chat template; the engine's lexer loops forever on
				// some runes after a number (0.䦑)
				r, _ := utf8.DecodeRuneInString(src[j:])
				return fmt.Errorf("line %d: %U outside a string in a tag: names and operators are ASCII", lineAt(src, j), r)
			}
			switch {
			case quote != 0:
				if c == '\\' {
					j++
				} else if c == quote {
					quote = 0
				}
			case c == '\'' || c == '"':
				quote = c
			case depth == 0 && strings.HasPrefix(src[j:], closer):
				end = j
				break tag
			case c == '(' || c == '[' || c == '{':
				if depth++; depth > maxTemplateNesting {
					return fmt.Errorf("line %d: brackets nested more than %d deep", lineAt(src, j), maxTemplateNesting)
				}
			case c == ')' || c == ']' || c == '}':
				depth = max(depth-1, 0)
			}
		}
		if end < 0 {
			return nil // unclosed: the engine says so
		}
		if open == "{%" {
			body := strings.Trim(src[start:end], "-+ \t\r\n")
			word, rest, _ := strings.Cut(body, " ")
			switch {
			case strings.HasPrefix(word, "end"):
				blocks = max(blocks-1, 0)
			case blockOpeners[word] && (word != "set" || !strings.Contains(rest, "=")):
				if blocks++; blocks > maxTemplateNesting {
					return fmt.Errorf("line %d: blocks nested more than %d deep", lineAt(src, i), maxTemplateNesting)
				}
			}
		}
		i = end + 2
	}
	return nil
}

func lineAt(src string, offset int) int { return strings.Count(src[:offset], "\n") + 1 }
