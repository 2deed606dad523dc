package ggufexport

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/yai-dev/yai/internal/gguf"
)

// chatStyle is a chat format Ollama's Go templates can express: each turn is
// start(role) + content + end.
type chatStyle struct {
	marker     string // in the Jinja template when the model uses this style
	start, end string // start holds ROLE where the role goes
	// defaultSystem finds a system prompt the Jinja template adds when there is none.
	defaultSystem *regexp.Regexp
}

var chatStyles = []chatStyle{
	{marker: "<|im_start|>", start: "<|im_start|>ROLE\n", end: "<|im_end|>\n",
		defaultSystem: regexp.MustCompile(`'<\|im_start\|>system\\n([^'{}]+)<\|im_end\|>\\n'`)},
	{marker: "<|start_header_id|>", start: "<|start_header_id|>ROLE<|end_header_id|>\n\n", end: "<|eot_id|>"},
}

// ollamaTemplate translates a Jinja chat template into an Ollama TEMPLATE, with the
// default system prompt it adds, when it is one of the styles above; ok is false otherwise
// (Ollama then picks a template from the one the GGUF holds).
func ollamaTemplate(jinja string) (tmpl, system, end string, ok bool) {
	for _, s := range chatStyles {
		if !strings.Contains(jinja, s.marker) {
			continue
		}
		start := func(role string) string { return strings.ReplaceAll(s.start, "ROLE", role) }
		// Every message as a turn; after the last one, unless the assistant wrote it, the
		// assistant's turn opens (add_generation_prompt). A last assistant message stays
		// open so that Ollama can continue it.
		tmpl = "{{- range $i, $_ := .Messages }}\n" +
			"{{- $last := eq (len (slice $.Messages $i)) 1 }}" + start("{{ .Role }}") + "{{ .Content }}" +
			"{{ if not (and $last (eq .Role \"assistant\")) }}" + s.end + "{{ end }}" +
			"{{ if and $last (ne .Role \"assistant\") }}" + start("assistant") + "{{ end }}\n" +
			"{{- end }}"
		if s.defaultSystem != nil {
			if m := s.defaultSystem.FindStringSubmatch(jinja); m != nil {
				system = m[1]
			}
		}
		return tmpl, system, strings.TrimSpace(s.end), true
	}
	return "", "", "", false
}

// stopTokens are the texts of the end-of-sequence and end-of-turn tokens in kvs.
func stopTokens(kvs []gguf.KV) []string {
	var tokens []string
	ids := map[string]uint32{}
	for _, kv := range kvs {
		switch kv.Key {
		case "tokenizer.ggml.tokens":
			tokens = kv.Value.([]string)
		case "tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id":
			ids[kv.Key] = kv.Value.(uint32)
		}
	}
	var out []string
	for _, key := range []string{"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eos_token_id"} {
		if id, ok := ids[key]; ok && int(id) < len(tokens) {
			out = append(out, tokens[id])
		}
	}
	return out
}

// modelfile is an Ollama Modelfile: FROM the model, ADAPTER when given, the TEMPLATE and
// SYSTEM translated from the chat template, and a stop parameter per end token.
func modelfile(from, adapter, jinja string, stops []string) string {
	var b strings.Builder
	b.WriteString("# Written by yai export. Create the Ollama model with: ollama create NAME -f Modelfile\n")
	fmt.Fprintf(&b, "FROM %s\n", from)
	if adapter != "" {
		fmt.Fprintf(&b, "ADAPTER %s\n", adapter)
	}
	tmpl, system, end, ok := ollamaTemplate(jinja)
	switch {
	case ok:
		fmt.Fprintf(&b, "TEMPLATE \"\"\"%s\"\"\"\n", tmpl)
		if system != "" {
			fmt.Fprintf(&b, "SYSTEM \"\"\"%s\"\"\"\n", system)
		}
		if end != "" && !contains(stops, end) {
			stops = append([]string{end}, stops...)
		}
	case jinja != "":
		b.WriteString("# The chat template has no Ollama translation here: Ollama picks one from the template in the GGUF.\n")
	}
	for _, s := range stops {
		fmt.Fprintf(&b, "PARAMETER stop %q\n", s)
	}
	return b.String()
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}
