package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// conditionalTemplates put Jinja's conditional expression "A if B else C" (and "A if B")
// everywhere Jinja allows an expression, with its precedence and its laziness (a branch not
// taken would raise). Each renders, or fails, as transformers' Jinja does.
var conditionalTemplates = []string{
	// At the top of {{ }}, with and without else.
	"{{ 'a' if messages else 'b' }}|{{ 'a' if not messages else 'b' }}",
	"[{{ 'a' if not messages }}][{{ messages | length if messages }}]",
	"{{ 'x' if messages[0].role == 'system' else 'y' }}",
	// In parentheses, and on the right of + and ~ (Gemma 3's first_user_prefix).
	"{{ ('a' if messages else 'b') }}{{ ((('c' if false else 'd'))) }}",
	`{% set p = 'P: ' %}{% for m in messages %}{{ '<t>' + m.role + '\n' + (p if loop.first else "") }}{% endfor %}`,
	"{{ 'a' ~ ('b' if false) ~ 'c' }}{{ 'x' + ('y' if true else 'z') + 'w' }}",
	"{{ (1 if true else 2) * 10 + (3 if false else 4) }}",
	// Arguments of calls, methods, filters, tests and macros.
	"{{ range(3 if true else 1) | list }}",
	"{{ ('ab' if true else 'cd').upper() }}{{ 'abc'.startswith('a' if false else 'ab') }}",
	"{{ 'abc' | replace('a' if true else 'b', 'Z') }}|{{ messages | map(attribute='role' if true else 'content') | join(',' if true else ';') }}",
	"{{ messages[0] | tojson(indent=2 if false else none) }}",
	"{% if 9 is divisibleby(3 if true else 2) %}div{% endif %}",
	"{% macro f(a, b=1 if false else 2) %}{{ a }}-{{ b }}{% endmacro %}{{ f('x' if true else 'y') }}|{{ f(1, b=3 if true else 4) }}",
	"{% set ns = namespace(n=1 if false else 5) %}{% set ns.n = ns.n + 1 if true else 0 %}{{ ns.n }}",
	// Items of lists, tuples and dicts, subscripts and slices.
	"{{ [1 if true else 2, 3 if false else 4] }}{{ (1 if false else 2, 3) | join(',') }}",
	`{{ {'a': 1 if false else 2, ('k' if true else 'j'): 'v' if true} | tojson }}`,
	"{{ messages[0 if false else 1]['role' if true else 'content'] }}|{{ messages[1 if true else 0:] | length }}",
	// {% set %}, as chat templates write it, with and without else.
	"{% for message in messages %}{%- set content = message['content'] if message['content'] is string else '' %}[{{ content }}]{% endfor %}",
	"{% set x = 'a' if messages %}{% set y = 'b' if not messages %}{{ x }}|{{ y }}|{{ y is defined }}",
	"{%- set x = 1 if true else 2 -%}  {{ x }}",
	// {% if %}, {% elif %} (in parentheses only, see below) and the for loop's iterable and filter.
	"{% if ('a' if false else '') %}yes{% else %}no{% endif %}{% if false %}{% elif (1 if true else 0) %}elif{% endif %}",
	"{% for m in messages if m.role != 'system' %}{{ m.role }},{% endfor %}",
	"{% for m in (messages if false else messages[1:]) if (m.role == 'user' if true else false) %}{{ m.role }}{% endfor %}",
	"{% for x in [1, 2, 3] if x > 1 if true else false %}{{ x }}{% endfor %}",
	// Precedence: lowest of all; filters bind tighter; else is right-recursive.
	"{{ false or 'b' if false else 'd' }}|{{ not messages if true else 'x' }}|{{ '  t ' | trim if true else 'u' }}",
	"{{ 'x' ~ 'y' if false else 'z' }}|{{ 1 + 2 if false else 10 }}|{{ 1 if 0 else 2 if 0 else 3 }}|[{{ 1 if 0 if 3 else 5 }}]",
	"{{ ('a' if false else 'b') if true else 'c' }}|{{ 'a' if ('b' if false else '') else 'c' }}",
	"{{ 'a' if false else 'b' | upper }}|{{ 'a' | upper if false else 'b' ~ 'c' }}",
	"{{ messages | selectattr('role', 'equalto', 'user' if true else 'x') | list | length }}",
	// Only the branch taken is evaluated.
	"{% set x = [] %}[{{ (x[0] if x else '') }}]{{ 'ok' if true else raise_exception('else evaluated') }}",
	"{{ raise_exception('then evaluated') if false else 'ok' }}{{ (raise_exception('then evaluated') if false) is defined }}",
	"{{ (1 if false) | default('d') }}|{{ (1 if false) is defined }}",
	// Refused by both: Jinja parses the test of {% if %} and {% elif %} without a conditional.
	"{% if messages | length > 2 if true else false %}yes{% endif %}",
	"{% if false %}{% elif 1 if true else 0 %}elif{% endif %}",
	"{{ 1 if }}",
	"{{ 1 if true else }}",
	"{{ (1 if true else 2 }}",
}

type jinjaResult struct {
	Text  *string `json:"text"`
	Error *string `json:"error"`
}

// TestConditionalExpressionsMatchJinja renders conditionalTemplates with yai and with
// transformers' Jinja environment: the texts must be byte-identical, and a template one
// refuses the other must refuse too.
func TestConditionalExpressionsMatchJinja(t *testing.T) {
	messages := []Message{
		{"role": "system", "content": "Be brief."},
		{"role": "user", "content": "  Hi  "},
		{"role": "assistant", "content": []any{map[string]any{"type": "text", "text": "Hello"}}},
	}
	vars := map[string]any{"messages": messages, "tools": nil, "add_generation_prompt": true, "bos_token": "<s>"}
	var want []jinjaResult
	runReference(t, map[string]any{"templates": conditionalTemplates, "vars": vars}, &want, "hf_reference.py", "jinja")
	if len(want) != len(conditionalTemplates) {
		t.Fatalf("hf_reference.py jinja: %d results for %d templates", len(want), len(conditionalTemplates))
	}
	for i, src := range conditionalTemplates {
		got, err := renderTemplate(src, messages)
		switch {
		case want[i].Error != nil && err == nil:
			t.Errorf("%s\nyai rendered %q, Jinja raised %s", src, got, *want[i].Error)
		case want[i].Error != nil:
			// both refuse it
		case err != nil:
			t.Errorf("%s\nyai: %v\nJinja rendered %q", src, err, *want[i].Text)
		case got != *want[i].Text:
			t.Errorf("%s\nyai   %q\nJinja %q", src, got, *want[i].Text)
		}
	}
}

func renderTemplate(src string, messages []Message) (string, error) {
	ct, err := newChatTemplate(src, "tokenizer_config.json")
	if err != nil {
		return "", err
	}
	tok := &Tokenizer{chat: ct, specialTokens: map[string]string{"bos_token": "<s>"}}
	return tok.ApplyChatTemplate(messages, nil, true)
}

// TestGemma3ChatTemplateMatchesTransformers renders conversations with Gemma 3's chat
// template (it writes "+ (first_user_prefix if loop.first else "")", a conditional inside
// parentheses) paired with the Llama 3 test tokenizer, as transformers' apply_chat_template
// does with the same directory.
func TestGemma3ChatTemplateMatchesTransformers(t *testing.T) {
	template, err := os.ReadFile(filepath.Join("testdata", "templates", "gemma3.jinja"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	vocab, err := os.ReadFile(filepath.Join("testdata", "llama3", "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	config, err := json.Marshal(map[string]any{
		"tokenizer_class": "PreTrainedTokenizerFast",
		"bos_token":       "<|begin_of_text|>",
		"eos_token":       "<|eot_id|>",
		"chat_template":   string(template),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), vocab, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), config, 0o644); err != nil {
		t.Fatal(err)
	}
	tok, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}

	type chat struct {
		Messages            []Message `json:"messages"`
		AddGenerationPrompt bool      `json:"add_generation_prompt"`
	}
	conversations := [][]Message{
		{{"role": "user", "content": "Hi there"}},
		{{"role": "system", "content": "You are terse."}, {"role": "user", "content": "  What is 2+2?\n"}},
		{{"role": "system", "content": "Sys"}, {"role": "user", "content": "a"}, {"role": "assistant", "content": " b "}, {"role": "user", "content": "c"}},
		{{"role": "user", "content": []any{map[string]any{"type": "image"}, map[string]any{"type": "text", "text": " Describe. "}}}, {"role": "assistant", "content": "A cat."}},
		{{"role": "system", "content": []any{map[string]any{"type": "text", "text": "Listed system"}}}, {"role": "user", "content": "x"}},
	}
	var cases []chat
	for _, c := range conversations {
		cases = append(cases, chat{c, false}, chat{c, true})
	}
	var want []struct {
		Text string  `json:"text"`
		IDs  []int32 `json:"ids"`
	}
	runReference(t, cases, &want, "hf_reference.py", "chat", dir)
	if len(want) != len(cases) {
		t.Fatalf("hf_reference.py chat: %d results for %d cases", len(want), len(cases))
	}
	for i, c := range cases {
		got, err := tok.ApplyChatTemplate(c.Messages, nil, c.AddGenerationPrompt)
		if err != nil {
			t.Errorf("case %d (generation prompt %v): %v", i/2, c.AddGenerationPrompt, err)
			continue
		}
		if diff := cmp.Diff(want[i].Text, got); diff != "" {
			t.Errorf("case %d (generation prompt %v) mismatch (-transformers +yai):\n%s", i/2, c.AddGenerationPrompt, diff)
		}
		if diff := cmp.Diff(want[i].IDs, nonNil(tok.Encode(got, false))); diff != "" {
			t.Errorf("case %d (generation prompt %v) ids mismatch (-transformers +yai):\n%s", i/2, c.AddGenerationPrompt, diff)
		}
		if !strings.Contains(got, "<start_of_turn>") {
			t.Errorf("case %d: no turn rendered: %q", i/2, got)
		}
	}
}
