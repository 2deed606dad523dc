package tokenizer

import (
	"strings"
	"testing"
)

// A chat template nested a million levels deep, or with a tag of a million tokens, is
// refused before the engine sees it, naming the line: the engine recurses per level and
// would overflow the stack (a crash), or take minutes to fail on a long chain.
func TestDeeplyNestedChatTemplateIsRefused(t *testing.T) {
	const n = 1_000_000
	r := strings.Repeat
	for _, c := range []struct{ name, src, want string }{
		{"parentheses", "hi\n{{ " + r("(", n) + "1" + r(")", n) + " }}", "line 2: brackets nested more than 100 deep"},
		{"lists", "{{ " + r("[", n) + "1" + r("]", n) + " }}", "line 1: brackets nested more than 100 deep"},
		{"dicts", "{{ " + r("{'a': ", n) + "1" + r("}", n) + " }}", "line 1: brackets nested more than 100 deep"},
		{"calls", "{{ " + r("f(", n) + "1" + r(")", n) + " }}", "line 1: brackets nested more than 100 deep"},
		{"blocks", "\n\n" + r("{% if x %}", n) + r("{% endif %}", n), "line 3: blocks nested more than 100 deep"},
		{"set blocks", r("{% set x %}", n), "line 1: blocks nested more than 100 deep"},
		{"accessors", "{{ x" + r(".y", n) + " }}", "line 1: a tag of more than 1000 tokens"},
		{"negations", "{{ " + r("not ", n) + "x }}", "line 1: a tag of more than 1000 tokens"},
		{"sums", "{% set y = " + r("1 + ", n) + "1 %}", "line 1: a tag of more than 1000 tokens"},
		{"filters", "{{ x" + r("|lower", n) + " }}", "line 1: a tag of more than 1000 tokens"},
		// the engine's lexer never returns from these
		{"a rune after a number", "{{ \uFFFD0.\u4991 }}", "line 1: U+FFFD outside a string in a tag"},
		{"invalid UTF-8", "hi\n{%\"\"\xba0.\u4991", "line 2: invalid UTF-8 (byte 0xba)"},
	} {
		_, err := newChatTemplate(c.src, "tokenizer_config.json")
		if err == nil || !strings.Contains(err.Error(), "tokenizer_config.json: chat_template: "+c.want) {
			t.Errorf("%s: %v; want %q", c.name, err, c.want)
		}
	}
	// what real templates hold passes: nesting, strings holding brackets, tag closers and
	// any text, comments, inline sets, long text between tags
	ok := "{# a comment with {{ ((( ✓ #}{{ '<｜User｜>' }}¿" + r("{% for m in messages %}", 20) + "{% set s = '}} ((( [[[' %}" +
		"{{ " + r("(", 50) + "m['content'] | trim" + r(")", 50) + " }}" + r("{% endfor %}", 20) + r("text ( [ { ", 1000)
	if _, err := newChatTemplate(ok, "tokenizer_config.json"); err != nil {
		t.Errorf("a template within the bounds: %v", err)
	}
}
