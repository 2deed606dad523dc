package tokenizer

import (
	"strings"
	"testing"
)

// A macro that calls itself (or another that calls it back) without end is an error after
// maxMacroDepth calls, not a stack overflow; recursion within the bound renders; tags that
// read other template files are refused, since a chat template is one file and one that
// includes itself recurses without end.
func TestChatTemplateRecursionIsBounded(t *testing.T) {
	render := func(src string) (string, error) {
		ct, err := newChatTemplate(src, "tokenizer_config.json")
		if err != nil {
			return "", err
		}
		tok := &Tokenizer{chat: ct, specialTokens: map[string]string{}}
		return tok.ApplyChatTemplate([]Message{{"role": "user", "content": "hi"}}, nil, true)
	}
	for _, src := range []string{
		"{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
		"{% macro f(n) %}{{ g(n) }}{% endmacro %}{% macro g(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
	} {
		if _, err := render(src); err == nil || !strings.Contains(err.Error(), "calls itself more than 100 deep") {
			t.Errorf("%s: %v", src, err)
		}
	}
	out, err := render("{% macro f(n) %}{% if n > 0 %}({{ f(n-1) }}){% endif %}{% endmacro %}{{ f(90) }}{{ f(90) }}")
	if want := strings.Repeat("(", 90) + strings.Repeat(")", 90); err != nil || out != want+want {
		t.Errorf("recursion within the bound: %q, %v", out, err)
	}
	out, err = render("{% macro f() %}[{{ caller() }}]{% endmacro %}{% call f() %}x{% endcall %}")
	if err != nil || out != "[x]" {
		t.Errorf("call: %q, %v", out, err)
	}
	for _, tag := range []string{"include '/chat_template'", "import '/chat_template' as x", "from '/chat_template' import f", "extends '/chat_template'"} {
		if _, err := render("{% " + tag + " %}"); err == nil || !strings.Contains(err.Error(), "not found") {
			t.Errorf("{%% %s %%}: %v", tag, err)
		}
	}
}
