package data

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func writeJSONL(t *testing.T, rows ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "train.jsonl")
	if err := os.WriteFile(path, []byte(strings.Join(rows, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// trainedText decodes the tokens the loss counts, span by span.
func trainedText(t *testing.T, ex Example) []string {
	t.Helper()
	tok := loadTokenizer(t)
	var out []string
	for _, s := range ex.Spans {
		out = append(out, tok.Decode(ex.Tokens[s.Start:s.End], false))
	}
	return out
}

// On a two-turn chat, train_on: assistant trains both replies with their end-of-turn token
// and nothing else; last (mlx-lm's mask_prompt) trains the second reply only.
func TestTrainOnAssistantTrainsEveryTurn(t *testing.T) {
	tok := loadTokenizer(t)
	path := writeJSONL(t, `{"text": "Plain text has no turns."}`)
	if _, err := LoadFile(path, tok, Options{TrainOn: TrainAssistant}); err == nil || !strings.Contains(err.Error(), "train.jsonl:1: text rows have no prompt or assistant turns") {
		t.Errorf("text rows under train_on: assistant: %v", err)
	}
	ds, err := LoadFile(writeJSONL(t,
		`{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}, {"role": "assistant", "content": "Paris."}, {"role": "user", "content": "And Italy?"}, {"role": "assistant", "content": "Rome."}]}`,
		`{"messages": [{"role": "user", "content": "Capital of Spain?"}, {"role": "assistant", "content": "Madrid."}]}`),
		tok, Options{TrainOn: TrainAssistant})
	if err != nil {
		t.Fatal(err)
	}
	two := ds.Examples[0]
	if diff := cmp.Diff([]string{"Paris.<|eot_id|>", "Rome.<|eot_id|>"}, trainedText(t, two)); diff != "" {
		t.Errorf("trained text of the two-turn chat (-want +got):\n%s", diff)
	}
	if two.Turns != 5 {
		t.Errorf("turns %d, want 5", two.Turns)
	}
	last, err := LoadFile(ds.Path, tok, Options{TrainOn: TrainLast})
	if err != nil {
		t.Fatal(err)
	}
	// mlx-lm's mask counts the last reply, its end-of-turn token and the padding step after
	// it; every assistant turn counts both replies.
	rome := two.Spans[1].End - two.Spans[1].Start
	if got := last.Examples[0].Targets(2048); got != rome+1 {
		t.Errorf("train_on: last counts %d targets, want the last reply's %d and the padding step", got, rome)
	}
	paris := two.Spans[0].End - two.Spans[0].Start
	if got := two.Targets(2048); got != paris+rome {
		t.Errorf("train_on: assistant counts %d targets, want %d + %d", got, paris, rome)
	}
	// Cut inside the second reply, only what is kept counts.
	if got := two.Targets(two.Spans[1].Start + 2); got != paris+2 {
		t.Errorf("cut two tokens into the second reply: %d targets, want %d", got, paris+2)
	}
	// A prompt and completion row trains the completion, as a two-message chat would.
	pc, err := LoadFile(writeJSONL(t, `{"prompt": "Capital of Spain?", "completion": "Madrid."}`), tok, Options{TrainOn: TrainAuto})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ds.Examples[1], pc.Examples[0], cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Keys" }, cmp.Ignore())); diff != "" {
		t.Errorf("prompt/completion and the same chat differ (-chat +completions):\n%s", diff)
	}
	// auto trains text rows whole.
	text, err := LoadFile(writeJSONL(t, `{"text": "Plain text is trained whole."}`), tok, Options{TrainOn: TrainAuto})
	if err != nil {
		t.Fatal(err)
	}
	if ex := text.Examples[0]; ex.Spans != nil || ex.Offset != 0 || ex.Targets(2048) != len(ex.Tokens) {
		t.Errorf("a text row under auto: spans %v, offset %d, %d targets of %d tokens", ex.Spans, ex.Offset, ex.Targets(2048), len(ex.Tokens))
	}
}

// Tool call arguments written as a JSON string (OpenAI's shape) are the arguments they
// encode: the row tokenizes as with the object itself.
func TestToolCallArgumentsAsJSONString(t *testing.T) {
	tok := loadTokenizer(t)
	row := func(args string) string {
		return `{"tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],` +
			` "messages": [{"role": "user", "content": "Weather in Paris?"}, {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": ` + args + `}}]},` +
			` {"role": "tool", "content": "{\"temperature\": 21}"}, {"role": "assistant", "content": "21 degrees."}]}`
	}
	ds, err := LoadFile(writeJSONL(t, row(`{"city": "Paris"}`), row(`"{\"city\": \"Paris\"}"`)), tok, Options{TrainOn: TrainAssistant})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ds.Examples[0], ds.Examples[1]); diff != "" {
		t.Errorf("arguments as an object and as a JSON string differ:\n%s", diff)
	}
	got := trainedText(t, ds.Examples[0])
	want := []string{`{"name": "get_weather", "parameters": {"city": "Paris"}}<|eot_id|>`, "21 degrees.<|eot_id|>"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("trained text of a tool call (-want +got):\n%s", diff)
	}
}
