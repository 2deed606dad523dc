package data

import (
	"testing"
	"unicode/utf8"
)

// FuzzParseRow feeds arbitrary lines to the row parser and format detection: a line is a row
// or a located error, never a panic; a reported column lies within the line.
func FuzzParseRow(f *testing.F) {
	for _, s := range []string{`{"text": "hello"}`, `{"prompt": "a", "completion": "b"}`,
		`{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}`,
		`{"text": "caf` + "\xe9" + `"}`, `[1, 2]`, `{"a": 1,}`, "", `{"messages": []}`, "\uFEFF{}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		row, col, err := parseRow(line)
		if err != nil {
			if col < 0 || col > utf8.RuneCount(line)+1 {
				t.Fatalf("column %d outside a line of %d characters: %v", col, utf8.RuneCount(line), err)
			}
			return
		}
		if row == nil {
			t.Fatal("no row and no error")
		}
		if format, err := detectFormat(row, Options{}.withDefaults()); err == nil {
			_, _ = messagesField(row, "messages")
			_ = format
		}
	})
}

// fuzzConversion checks the conversion of rows of format f: a row converts or is a row
// error, never a panic, and a converted row is a messages row the chat reader accepts, whose
// tokenization errs at most in the chat template.
func fuzzConversion(f *testing.F, format Format, seeds []string) {
	for _, s := range seeds {
		f.Add([]byte(s), false)
	}
	tok := loadTokenizer(f)
	f.Fuzz(func(t *testing.T, line []byte, renamed bool) {
		row, _, err := parseRow(line)
		if err != nil {
			return
		}
		opts := Options{TrainOn: TrainLast}
		if renamed {
			opts = opts.WithColumns(Columns{Messages: "turns", Role: "who", Content: "said", Instruction: "task", Input: "context", Output: "response", System: "persona"})
		}
		opts = opts.withDefaults()
		out, err := chatRow(row, format, opts)
		if err != nil {
			return
		}
		if _, err := messagesField(out, opts.ChatKey); err != nil {
			t.Fatalf("a converted row is no messages row: %v", err)
		}
		if _, err := toolsField(out); err != nil {
			t.Fatalf("a converted row's tools: %v", err)
		}
		if ex, err := processRow(out, format.rendered(), tok, opts); err == nil && len(ex.Tokens) == 0 {
			t.Fatal("a converted row tokenized to nothing")
		}
	})
}

func FuzzShareGPTRow(f *testing.F) {
	fuzzConversion(f, FormatShareGPT, []string{
		`{"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}]}`,
		`{"system": "S", "conversations": [{"from": "human", "value": "Add."}, {"from": "function_call", "value": "{\"name\": \"add\", \"arguments\": {\"a\": 1}}"}, {"from": "observation", "value": "1"}], "tools": "[{\"name\": \"add\"}]"}`,
		`{"messages": [{"from": "user", "value": "Hi"}, {"role": "assistant", "content": "Yo"}]}`,
		`{"turns": [{"who": "human", "said": "Hi"}], "persona": "P"}`,
		`{"conversations": null}`, `{"conversations": [{"from": "bot", "value": 1}]}`,
	})
}

func FuzzAlpacaRow(f *testing.F) {
	fuzzConversion(f, FormatAlpaca, []string{
		`{"instruction": "Name a prime.", "input": "", "output": "7"}`,
		`{"instruction": "Sum.", "input": "2 and 3", "output": "5", "system": "You add."}`,
		`{"task": "T", "context": null, "response": "R", "persona": "P"}`,
		`{"instruction": 1, "output": null}`,
	})
}
