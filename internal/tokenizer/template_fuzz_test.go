package tokenizer

import (
	"strings"
	"testing"
)

// FuzzChatTemplate feeds arbitrary chat templates (as read from a model directory's
// tokenizer_config.json or chat_template.jinja) to the parser and renders those that parse
// with a short conversation: an error or a text, never a panic, a stack overflow or a hang.
func FuzzChatTemplate(f *testing.F) {
	f.Add("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] | trim }}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}")
	f.Add("{{ (((messages[0].content))) ~ 'x' * 3 }}{% set ns = namespace(a=1) %}{{ ns.a + 2 }}")
	f.Add("{% if not (messages | length > 1 and 'tool' in messages[0]) %}{{ raise_exception('no') }}{% endif %}")
	f.Add("{% for m in messages if m.role != 'x' %}{% set c = m.content if m.content is string else '' %}{{ 'a' + (c if loop.first else [c, 1 if c][0]) }}{% endfor %}")
	f.Fuzz(func(t *testing.T, src string) {
		if len(src) > 1<<12 {
			return // the bounds tested elsewhere; long inputs only slow the search
		}
		ct, err := newChatTemplate(src, "tokenizer_config.json")
		if err != nil {
			return
		}
		tok := &Tokenizer{chat: ct, specialTokens: map[string]string{"bos_token": "<s>"}}
		tok.ApplyChatTemplate([]Message{{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}}, nil, true)
	})
}

// The engine divides integers by zero without a check: a template that does so is an error
// naming its file, as Python's Jinja raises ZeroDivisionError, not a crash.
func TestChatTemplateEnginePanicsAreErrors(t *testing.T) {
	for _, src := range []string{"{{ 1 % 0 }}", "{% for m in messages %}{{ loop.index % 0 }}{% endfor %}"} {
		ct, err := newChatTemplate(src, "tokenizer_config.json")
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		tok := &Tokenizer{chat: ct, specialTokens: map[string]string{}}
		_, err = tok.ApplyChatTemplate([]Message{{"role": "user", "content": "hi"}}, nil, true)
		if err == nil || !strings.Contains(err.Error(), "tokenizer_config.json: chat_template: the template engine failed") {
			t.Errorf("%s: %v", src, err)
		}
	}
}
