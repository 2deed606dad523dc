package data

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// writeRows writes rows, one a line, to name in a fresh directory.
func writeRows(t *testing.T, name string, rows ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(strings.Join(rows, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// sameAs loads got (read with opts) and want (plain mlx-lm rows, default options) with and
// without prompt masking, and with every assistant turn trained, and requires the same tokens, offsets and key counts.
func sameAs(t *testing.T, got, want string, opts Options, format Format) {
	t.Helper()
	tok := loadTokenizer(t)
	for _, mask := range []TrainOn{TrainAll, TrainLast, TrainAuto} {
		opts.TrainOn = mask
		g, err := LoadFile(got, tok, opts)
		if err != nil {
			t.Fatalf("mask=%v: %v", mask, err)
		}
		w, err := LoadFile(want, tok, Options{TrainOn: mask})
		if err != nil {
			t.Fatalf("mask=%v: the equivalent rows: %v", mask, err)
		}
		if g.Format != format {
			t.Errorf("format %s, want %s", g.Format, format)
		}
		if diff := cmp.Diff(w.Examples, g.Examples); diff != "" {
			t.Errorf("mask=%v: examples differ from the equivalent rows (-want +got):\n%s", mask, diff)
		}
		if mask == TrainLast && g.Examples[0].Offset == 0 {
			t.Error("masked, and the first row has no prompt offset")
		}
		if mask == TrainAuto && g.Format != FormatText && len(g.Examples[0].Spans) == 0 {
			t.Error("every assistant turn trained, and the first row has none")
		}
	}
}

func TestShareGPTReadsAsMessages(t *testing.T) {
	got := writeRows(t, "sharegpt.jsonl",
		`{"conversations": [{"from": "human", "value": "Hi!"}, {"from": "gpt", "value": "Hello."}]}`,
		`{"conversations": [{"from": "system", "value": "Be terse."}, {"from": "user", "value": "Name a prime."}, {"from": "assistant", "value": "7"}], "id": 3}`,
		`{"system": "You add.", "conversations": [{"from": "human", "value": "Add 2 and 3."}, {"from": "function_call", "value": "{\"name\": \"add\", \"arguments\": {\"a\": 2, \"b\": 3}}"}, {"from": "observation", "value": "5"}, {"from": "gpt", "value": "2 + 3 = 5."}], "tools": "[{\"type\": \"function\", \"function\": {\"name\": \"add\", \"parameters\": {\"type\": \"object\"}}}]"}`,
		`{"conversations": [{"from": "human", "value": "Weather?"}, {"from": "function_call", "value": "[{\"name\": \"weather\", \"arguments\": {}}]"}, {"from": "tool", "value": "sunny"}, {"from": "gpt", "value": "Sunny."}], "tools": [{"type": "function", "function": {"name": "weather"}}]}`,
		`{"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A", "weight": 1}]}`,
	)
	want := writeRows(t, "messages.jsonl",
		`{"messages": [{"role": "user", "content": "Hi!"}, {"role": "assistant", "content": "Hello."}]}`,
		`{"messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Name a prime."}, {"role": "assistant", "content": "7"}]}`,
		`{"messages": [{"role": "system", "content": "You add."}, {"role": "user", "content": "Add 2 and 3."}, {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "add", "arguments": {"a": 2, "b": 3}}}]}, {"role": "tool", "content": "5"}, {"role": "assistant", "content": "2 + 3 = 5."}], "tools": [{"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}]}`,
		`{"messages": [{"role": "user", "content": "Weather?"}, {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "weather", "arguments": {}}}]}, {"role": "tool", "content": "sunny"}, {"role": "assistant", "content": "Sunny."}], "tools": [{"type": "function", "function": {"name": "weather"}}]}`,
		`{"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]}`,
	)
	sameAs(t, got, want, Options{}, FormatShareGPT)
	// The same turns in a messages list with from/value keys, and named by format.
	messages := writeRows(t, "from_value.jsonl",
		`{"messages": [{"from": "human", "value": "Hi!"}, {"from": "gpt", "value": "Hello."}]}`,
		`{"messages": [{"from": "system", "value": "Be terse."}, {"from": "user", "value": "Name a prime."}, {"from": "assistant", "value": "7"}]}`,
	)
	plain := writeRows(t, "plain.jsonl",
		`{"messages": [{"role": "user", "content": "Hi!"}, {"role": "assistant", "content": "Hello."}]}`,
		`{"messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Name a prime."}, {"role": "assistant", "content": "7"}]}`,
	)
	sameAs(t, messages, plain, Options{}, FormatShareGPT)
	sameAs(t, messages, plain, Options{Format: "sharegpt"}, FormatShareGPT)
}

func TestAlpacaReadsAsMessages(t *testing.T) {
	got := writeRows(t, "alpaca.jsonl",
		`{"instruction": "Name a prime.", "input": "", "output": "7"}`,
		`{"instruction": "Translate to French.", "input": "cat", "output": "chat"}`,
		`{"instruction": "Sum.", "input": "2 and 3", "output": "5", "system": "You add."}`,
		`{"instruction": "Greet.", "output": "Hello.", "input": null, "system": ""}`,
	)
	want := writeRows(t, "messages.jsonl",
		`{"messages": [{"role": "user", "content": "Name a prime."}, {"role": "assistant", "content": "7"}]}`,
		`{"messages": [{"role": "user", "content": "Translate to French.\n\ncat"}, {"role": "assistant", "content": "chat"}]}`,
		`{"messages": [{"role": "system", "content": "You add."}, {"role": "user", "content": "Sum.\n\n2 and 3"}, {"role": "assistant", "content": "5"}]}`,
		`{"messages": [{"role": "user", "content": "Greet."}, {"role": "assistant", "content": "Hello."}]}`,
	)
	sameAs(t, got, want, Options{}, FormatAlpaca)
	sameAs(t, got, want, Options{Format: "alpaca"}, FormatAlpaca)
}

// A text field wins over Alpaca's fields, as mlx-lm reads such a row; format: alpaca reads
// the Alpaca fields.
func TestAlpacaWithTextIsText(t *testing.T) {
	path := writeRows(t, "train.jsonl", `{"instruction": "Name a prime.", "input": "", "output": "7", "text": "Name a prime. 7"}`)
	ds, err := LoadFile(path, nil, Options{})
	if err != nil || ds.Format != FormatText {
		t.Errorf("detected %v (%v), want text", ds, err)
	}
	ds, err = LoadFile(path, nil, Options{Format: "alpaca"})
	if err != nil || ds.Format != FormatAlpaca {
		t.Errorf("format: alpaca read %v (%v)", ds, err)
	}
}

func TestColumnsRenameFields(t *testing.T) {
	for _, tc := range []struct {
		name      string
		columns   Columns
		named     string // the format the data stage names
		got, want []string
		format    Format
	}{
		{"text", Columns{Text: "body"}, "",
			[]string{`{"body": "Hello there.", "text": 1}`, `{"body": "More."}`},
			[]string{`{"text": "Hello there.", "x": 1}`, `{"text": "More."}`}, FormatText},
		{"completions", Columns{Prompt: "question", Completion: "answer"}, "",
			[]string{`{"question": "2+2?", "answer": "4"}`, `{"answer": "b", "question": "a"}`},
			[]string{`{"prompt": "2+2?", "completion": "4"}`, `{"completion": "b", "prompt": "a"}`}, FormatCompletions},
		{"chat", Columns{Messages: "dialog", Role: "speaker", Content: "text"}, "",
			[]string{`{"dialog": [{"speaker": "user", "text": "Hi"}, {"speaker": "assistant", "text": "Yo"}]}`},
			[]string{`{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]}`}, FormatChat},
		{"chat tool calls", Columns{Content: "text"}, "chat",
			[]string{`{"messages": [{"role": "user", "text": "Add 2 and 3."}, {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "add", "arguments": {"a": 2, "b": 3}}}]}, {"role": "tool", "text": "5"}, {"role": "assistant", "text": "5."}]}`},
			[]string{`{"messages": [{"role": "user", "content": "Add 2 and 3."}, {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "add", "arguments": {"a": 2, "b": 3}}}]}, {"role": "tool", "content": "5"}, {"role": "assistant", "content": "5."}]}`}, FormatChat},
		{"sharegpt", Columns{Messages: "conversations", Role: "from", Content: "value"}, "",
			[]string{`{"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}]}`},
			[]string{`{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]}`}, FormatShareGPT},
		{"sharegpt renamed", Columns{Messages: "turns", Role: "who", Content: "said", System: "persona"}, "sharegpt",
			[]string{`{"persona": "Be kind.", "turns": [{"who": "human", "said": "Hi"}, {"who": "gpt", "said": "Yo"}]}`},
			[]string{`{"messages": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]}`}, FormatShareGPT},
		{"alpaca", Columns{Instruction: "task", Input: "context", Output: "response", System: "persona"}, "",
			[]string{`{"task": "Translate.", "context": "cat", "response": "chat", "persona": "Be French."}`},
			[]string{`{"messages": [{"role": "system", "content": "Be French."}, {"role": "user", "content": "Translate.\n\ncat"}, {"role": "assistant", "content": "chat"}]}`}, FormatAlpaca},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, want := writeRows(t, "got.jsonl", tc.got...), writeRows(t, "want.jsonl", tc.want...)
			opts := Options{Format: tc.named}.WithColumns(tc.columns)
			if tc.format == FormatText {
				// masking does not apply to text rows
				tok := loadTokenizer(t)
				g, err := LoadFile(got, tok, opts)
				if err != nil {
					t.Fatal(err)
				}
				w, err := LoadFile(want, tok, Options{})
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(w.Examples, g.Examples); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
				return
			}
			sameAs(t, got, want, opts, tc.format)
		})
	}
}

// A renamed role field with ShareGPT speakers needs format: sharegpt; with format: chat the
// roles are chat roles and the error says which.
func TestNamedFormatChecksTheFirstRow(t *testing.T) {
	for _, tc := range []struct {
		rows []string
		opts Options
		want string
	}{
		{[]string{`{"messages": [{"from": "human", "value": "Hi"}]}`}, Options{Format: "chat"},
			`:1: the row is sharegpt, but the data stage says format: chat, which expects {"messages": [...]}`},
		{[]string{`{"text": "Hi"}`}, Options{Format: "sharegpt"},
			`:1: the row has no "conversations", but the data stage says format: sharegpt, which expects {"conversations": [{"from": …, "value": …}, …]}`},
		{[]string{`{"text": "Hi"}`}, Options{Format: "sharegpt", ChatKey: "turns"},
			`:1: the row has no "turns", but the data stage says format: sharegpt, which expects {"turns": [{"from": …, "value": …}, …]}`},
		{[]string{`{"instruction": "Hi"}`}, Options{Format: "alpaca"},
			`:1: the row lacks "instruction" or "output", but the data stage says format: alpaca, which expects {"instruction": …, "output": …}`},
		{[]string{`{"dialog": [{"speaker": "human", "text": "Hi"}]}`}, Options{Format: "chat", ChatKey: "dialog", RoleKey: "speaker", ContentKey: "text"},
			`:1: dialog[0].speaker: unknown role "human" (roles: system, user, assistant, tool, ipython, developer); for ShareGPT's speakers say format: sharegpt`},
		{[]string{`{"body": "Hi"}`}, Options{},
			`:1: unsupported row format: expected "text", "prompt" and "completion", "messages", "conversations" (ShareGPT), or "instruction" and "output" (Alpaca)`},
	} {
		_, err := LoadFile(writeRows(t, "train.jsonl", tc.rows...), loadTokenizer(t), tc.opts)
		if err == nil || !strings.HasSuffix(err.Error(), tc.want) {
			t.Errorf("%v with %+v: error %v, want one ending %q", tc.rows, tc.opts, err, tc.want)
		}
	}
}

// Every bad row of a ShareGPT or Alpaca file is reported at its line, after the first row set
// the format.
func TestShareGPTAndAlpacaRowErrors(t *testing.T) {
	good := `{"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}]}`
	path := writeRows(t, "train.jsonl", good,
		`{"conversations": null}`,
		`{"conversations": [{"from": "bot", "value": "Hi"}]}`,
		`{"conversations": [{"from": "human", "value": 3}]}`,
		`{"conversations": [{"from": "human"}]}`,
		`{"conversations": "Hi"}`,
		`{"conversations": [["human", "Hi"]]}`,
		`{"conversations": [{"from": "function_call", "value": "add(2, 3)"}]}`,
		`{"conversations": [{"from": "function_call", "value": "{\"arguments\": {}}"}]}`,
		`{"system": "S", "conversations": [{"from": "system", "value": "T"}, {"from": "human", "value": "Hi"}]}`,
		`{"conversations": [{"from": "human", "value": "Hi"}], "tools": "not json"}`,
		`{"id": 1}`,
		good,
	)
	_, bad, err := LoadFileAll(path, loadTokenizer(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`train.jsonl:2: "conversations" is null: a ShareGPT row needs a list of turns`,
		`train.jsonl:3: conversations[0].from: unknown speaker "bot" (ShareGPT speakers: system, human, user, gpt, assistant, tool, observation, function_call)`,
		`train.jsonl:4: conversations[0].value must be a string, found a number`,
		`train.jsonl:5: conversations[0]: missing key "value"`,
		`train.jsonl:6: "conversations" must be an array of messages, found a string`,
		`train.jsonl:7: conversations[0] must be an object, found an array`,
		`train.jsonl:8: conversations[0]: function_call: the value must be the JSON of {"name": …, "arguments": …} or a list of them`,
		`train.jsonl:9: conversations[0]: function_call: call 0: "name" must be a string`,
		`train.jsonl:10: conversations[0] is a system turn, and the row has a "system" prompt too: keep one`,
		`train.jsonl:11: "tools" is a string that is not the JSON of a list of tools`,
		`train.jsonl:12: missing key "conversations"`,
	}
	if diff := cmp.Diff(want, errorStrings(bad)); diff != "" {
		t.Errorf("row errors (-want +got):\n%s", diff)
	}

	path = writeRows(t, "valid.jsonl", `{"instruction": "Hi", "output": "Yo"}`,
		`{"instruction": 1, "output": "Yo"}`,
		`{"instruction": "Hi"}`,
		`{"instruction": "Hi", "output": "Yo", "input": ["a"]}`,
		`{"instruction": "Hi", "output": "Yo", "system": false}`,
		`{"instruction": "Hi", "output": null}`,
	)
	_, bad, err = LoadFileAll(path, nil, Options{}) // found without a tokenizer too
	if err != nil {
		t.Fatal(err)
	}
	want = []string{
		`valid.jsonl:2: "instruction" must be a string, found a number`,
		`valid.jsonl:3: missing key "output"`,
		`valid.jsonl:4: "input" must be a string, found an array`,
		`valid.jsonl:5: "system" must be a string, found a boolean`,
		`valid.jsonl:6: "output" must be a string, found null`,
	}
	if diff := cmp.Diff(want, errorStrings(bad)); diff != "" {
		t.Errorf("row errors (-want +got):\n%s", diff)
	}
}

func errorStrings(bad []*RowError) []string {
	out := make([]string, len(bad))
	for i, e := range bad {
		out[i] = e.Error()
	}
	return out
}
