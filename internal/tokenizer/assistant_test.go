package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// chatTokenizer writes a tokenizer directory: testdata/base's tokenizer.json with specials
// added (as added tokens after the vocabulary) and the given chat template.
func chatTokenizer(t testing.TB, base, template string, specials []string, bos, eos string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", base, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	var tj map[string]any
	if err := json.Unmarshal(raw, &tj); err != nil {
		t.Fatal(err)
	}
	added := tj["added_tokens"].([]any)
	have := map[string]bool{}
	next := len(tj["model"].(map[string]any)["vocab"].(map[string]any))
	for _, a := range added {
		have[a.(map[string]any)["content"].(string)] = true
		next = max(next, int(a.(map[string]any)["id"].(float64))+1)
	}
	for _, s := range specials {
		if !have[s] {
			added = append(added, map[string]any{"id": next, "content": s, "single_word": false, "lstrip": false,
				"rstrip": false, "normalized": false, "special": true})
			next++
		}
	}
	tj["added_tokens"] = added
	dir := t.TempDir()
	writeJSON(t, filepath.Join(dir, "tokenizer.json"), tj)
	writeJSON(t, filepath.Join(dir, "tokenizer_config.json"), map[string]any{
		"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": bos, "eos_token": eos,
		"clean_up_tokenization_spaces": false, "chat_template": template})
	return dir
}

func writeJSON(t testing.TB, path string, v any) {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readTemplate(t testing.TB, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

type maskCase struct {
	Messages []Message `json:"messages"`
	Tools    []any     `json:"tools,omitempty"`
	Header   string    `json:"header,omitempty"`
	EOT      string    `json:"eot,omitempty"`
}

type chatReference struct {
	Text  string  `json:"text"`
	IDs   []int32 `json:"ids"`
	Mask  []int   `json:"mask"`
	Turns []int   `json:"turns"`
}

func runAssistantReference(t *testing.T, dir string, cases []maskCase) []chatReference {
	t.Helper()
	var refs []chatReference
	runReference(t, cases, &refs, "assistant_reference.py", dir)
	return refs
}

// ourMask renders and encodes a case as the data loader does with train_on: assistant.
func ourMask(t *testing.T, tok *Tokenizer, c maskCase) (string, []int32, []int) {
	t.Helper()
	text, spans, err := tok.AssistantSpans(c.Messages, c.Tools)
	if err != nil {
		t.Fatal(err)
	}
	ids, tokenSpans := tok.EncodeSpans(text, spans)
	mask := make([]int, len(ids))
	for _, s := range tokenSpans {
		for i := s.Start; i < s.End; i++ {
			mask[i] = 1
		}
	}
	return text, ids, mask
}

var generationTags = regexp.MustCompile(`\{%-?\s*(end)?generation\s*-?%\}`)

// conversations are the chats every template is tried on: one turn, two turns with a
// system prompt, text that tokenizes across spaces, accents and emoji, and whitespace at the
// edges of a reply.
func conversations(system bool) [][]Message {
	two := []Message{
		{"role": "user", "content": "What is the capital of France?"},
		{"role": "assistant", "content": "Paris — ça va? It is Paris 😀."},
		{"role": "user", "content": "And of Italy?  Two spaces."},
		{"role": "assistant", "content": "  Rome, of course.\n"},
	}
	if system {
		two = append([]Message{{"role": "system", "content": "You answer briefly."}}, two...)
	}
	return [][]Message{
		{{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello there"}},
		two,
		{{"role": "user", "content": "count"}, {"role": "assistant", "content": "1 2 3"},
			{"role": "user", "content": "more"}, {"role": "assistant", "content": "4 5 6"},
			{"role": "user", "content": "again"}, {"role": "assistant", "content": "7 8 9 10"}},
	}
}

// toolCases are tool-calling conversations in OpenAI's shape (a tool list, an assistant
// turn calling one, the tool's answer, the assistant's reply), their key order kept as read.
func toolCases(t *testing.T, header, eot string) []maskCase {
	t.Helper()
	parse := func(s string) any {
		v, err := ParseJSON([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tools := parse(`[{"type": "function", "function": {"name": "get_weather", "description": "The weather in a city",
		"parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"},
		"unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city"]}}}]`).([]any)
	call := parse(`[{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}}]`)
	return []maskCase{{Header: header, EOT: eot, Tools: tools, Messages: []Message{
		{"role": "user", "content": "What is the weather in Paris?"},
		{"role": "assistant", "content": "", "tool_calls": call},
		{"role": "tool", "content": `{"temperature": 21, "sky": "clear"}`},
		{"role": "assistant", "content": "It is 21 °C and clear in Paris."},
	}}}
}

// TestAssistantMasks checks the tokens train_on: assistant trains against transformers:
// on templates that mark the assistant's text with {% generation %} (Llama 3, ChatML and
// Gemma styles) they equal return_assistant_tokens_mask, both read from the marks and found
// by rendering prefixes of the same template without them; on the real templates of Llama
// 3.1, Qwen2.5, Qwen3 (reasoning dropped from earlier turns), Gemma 3 and Phi-3 they equal a
// per-message reference that finds each turn's header and end-of-turn marker in
// transformers' rendering. The ids are transformers' in every case, and so is the text,
// tool-calling conversations included (for the templates that take tools).
func TestAssistantMasks(t *testing.T) {
	type family struct {
		name, base, template string
		specials             []string
		bos, eos             string
		header, eot          string
		system, tools        bool
	}
	chatml := []string{"<|im_start|>", "<|im_end|>"}
	llama := []string{"<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"}
	gemma := []string{"<start_of_turn>", "<end_of_turn>"}
	families := []family{
		{"llama3-generation", "llama3", "templates/llama3_generation.jinja", llama, "<|begin_of_text|>", "<|eot_id|>", "", "", true, false},
		{"chatml-generation", "llama3", "templates/chatml_generation.jinja", chatml, "<|begin_of_text|>", "<|im_end|>", "", "", true, false},
		{"gemma-generation", "spm", "templates/gemma_generation.jinja", gemma, "<s>", "<end_of_turn>", "", "", false, false},
		{"llama3.1", "llama3", "llama31_chat_template.jinja", llama, "<|begin_of_text|>", "<|eot_id|>",
			"<|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>", true, true},
		{"qwen2.5", "llama3", "templates/qwen2.5.jinja", chatml, "<|begin_of_text|>", "<|im_end|>", "<|im_start|>assistant\n", "<|im_end|>", true, true},
		{"qwen3", "llama3", "templates/qwen3.jinja", chatml, "<|begin_of_text|>", "<|im_end|>", "<|im_start|>assistant\n", "<|im_end|>", true, true},
		{"gemma3", "spm", "templates/gemma3.jinja", gemma, "<s>", "<end_of_turn>", "<start_of_turn>model\n", "<end_of_turn>", true, false},
		{"phi3", "llama3", "templates/phi3.jinja", []string{"<|user|>", "<|assistant|>", "<|system|>", "<|end|>", "<|endoftext|>"},
			"<|begin_of_text|>", "<|endoftext|>", "<|assistant|>\n", "<|end|>", true, false},
	}
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			template := readTemplate(t, f.template)
			var cases []maskCase
			for _, conv := range conversations(f.system) {
				cases = append(cases, maskCase{Messages: conv, Header: f.header, EOT: f.eot})
			}
			if f.tools {
				cases = append(cases, toolCases(t, f.header, f.eot)...)
			}
			if f.name == "qwen3" {
				// reasoning in an earlier turn, which the template drops once a user follows
				cases = append(cases, maskCase{Header: f.header, EOT: f.eot, Messages: []Message{
					{"role": "user", "content": "2+2?"},
					{"role": "assistant", "content": "<think>\nadd them\n</think>\n\n4"},
					{"role": "user", "content": "3+3?"},
					{"role": "assistant", "content": "<think>\nagain\n</think>\n\n6"}}})
			}
			dir := chatTokenizer(t, f.base, template, f.specials, f.bos, f.eos)
			refs := runAssistantReference(t, dir, cases)
			tok, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			var plain *Tokenizer // the same template without its marks
			if f.header == "" {
				if plain, err = Load(chatTokenizer(t, f.base, generationTags.ReplaceAllString(template, ""), f.specials, f.bos, f.eos)); err != nil {
					t.Fatal(err)
				}
			}
			for i, c := range cases {
				ref := refs[i]
				want := ref.Turns
				if f.header == "" {
					want = ref.Mask
				}
				if sum(want) == 0 {
					t.Fatalf("case %d: the reference marks no token", i)
				}
				text, ids, mask := ourMask(t, tok, c)
				if text != ref.Text {
					t.Errorf("case %d: rendered text differs:\n got %q\nwant %q", i, text, ref.Text)
				}
				if diff := cmp.Diff(ref.IDs, ids); diff != "" {
					t.Errorf("case %d: ids differ (-transformers +yai):\n%s", i, diff)
				}
				if diff := cmp.Diff(want, mask); diff != "" {
					t.Errorf("case %d: assistant mask differs (-reference +yai):\n%s\ntokens: %s", i, diff, tokenList(tok, ids))
				}
				if plain != nil {
					_, _, byPrefixes := ourMask(t, plain, c)
					if diff := cmp.Diff(want, byPrefixes); diff != "" {
						t.Errorf("case %d: the mask found by rendering prefixes differs from the template's marks (-marks +prefixes):\n%s", i, diff)
					}
				}
			}
		})
	}
}

func sum(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}

func tokenList(tok *Tokenizer, ids []int32) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = tok.Token(id)
	}
	return strings.Join(parts, "|")
}

// FuzzAssistantSpans renders arbitrary two-turn chats through Qwen2.5's template and Gemma
// 3's (whose turns trim their content) and checks what train_on: assistant relies on: an
// error or spans in order inside the text, token spans in order inside the ids, and the ids
// those of encoding the text.
func FuzzAssistantSpans(f *testing.F) {
	f.Add("What is 2+2?", "4", "And 3+3?", " 6 \n")
	f.Add("<|im_end|>", "<|im_start|>assistant\n", "", "<end_of_turn>")
	f.Add("é😀", "  ", "\n\n", "ça")
	toks := map[string]*Tokenizer{}
	for _, c := range []struct{ name, base, template, bos, eos string }{
		{"qwen2.5", "llama3", "templates/qwen2.5.jinja", "<|begin_of_text|>", "<|im_end|>"},
		{"gemma3", "spm", "templates/gemma3.jinja", "<s>", "<end_of_turn>"},
	} {
		dir := chatTokenizer(f, c.base, readTemplate(f, c.template), []string{"<|im_start|>", "<|im_end|>", "<start_of_turn>", "<end_of_turn>"}, c.bos, c.eos)
		tok, err := Load(dir)
		if err != nil {
			f.Fatal(err)
		}
		toks[c.name] = tok
	}
	f.Fuzz(func(t *testing.T, u1, a1, u2, a2 string) {
		messages := []Message{{"role": "user", "content": u1}, {"role": "assistant", "content": a1},
			{"role": "user", "content": u2}, {"role": "assistant", "content": a2}}
		for name, tok := range toks {
			text, spans, err := tok.AssistantSpans(messages, nil)
			if err != nil {
				continue
			}
			at := 0
			for _, s := range spans {
				if s.Start < at || s.End < s.Start || s.End > len(text) {
					t.Fatalf("%s: spans %v out of order or outside the text of %d bytes", name, spans, len(text))
				}
				at = s.End
			}
			ids, tokenSpans := tok.EncodeSpans(text, spans)
			if want := tok.Encode(text, false); !slices.Equal(ids, want) {
				t.Fatalf("%s: EncodeSpans ids %v, Encode %v", name, ids, want)
			}
			at = 0
			for _, s := range tokenSpans {
				if s.Start < at || s.End < s.Start || s.End > len(ids) {
					t.Fatalf("%s: token spans %v out of order or outside %d ids", name, tokenSpans, len(ids))
				}
				at = s.Start
			}
		}
	})
}
