package data

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/yai-dev/yai/internal/testenv"
)

// makeTables writes the rows of the JSONL file src as Parquet and Arrow files with pyarrow
// and datasets (testdata/tables.py) and returns the folder holding them.
func makeTables(t *testing.T, src string, args ...string) string {
	t.Helper()
	out := t.TempDir()
	cmd := exec.Command(testenv.Python(t), append([]string{filepath.Join("testdata", "tables.py"), src, out}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("tables.py: %v\n%s", err, stderr.String())
	}
	return out
}

var chatTableRows = []string{
	`{"messages": [{"role": "user", "content": "Hi!"}, {"role": "assistant", "content": "Hello."}], "tools": null, "id": 1}`,
	`{"messages": [{"role": "system", "content": "You add."}, {"role": "user", "content": "Add 2.5 and 1e-05."}, {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "add", "arguments": {"a": 2.5, "b": 1e-05, "exact": true, "big": 1e+20, "whole": 3.0}}}]}, {"role": "tool", "content": "2.50001"}, {"role": "assistant", "content": "2.50001"}], "tools": [{"type": "function", "function": {"name": "add", "description": "Add two numbers.", "parameters": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]}}}], "id": 2}`,
	`{"messages": [{"role": "user", "content": "Weather in Paris?"}, {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "weather", "arguments": {"city": "Paris", "days": 3}}}]}, {"role": "tool", "content": "sunny"}, {"role": "assistant", "content": "Sunny."}], "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}], "id": 3}`,
	`{"messages": [{"role": "user", "content": "Two questions: what and why?"}, {"role": "assistant", "content": "What: this. Why: because."}, {"role": "user", "content": "Thanks."}], "tools": null, "id": 4}`,
	`{"messages": [{"role": "user", "content": "Name a prime."}, {"role": "assistant", "content": "7"}], "tools": null, "id": 5}`,
}

// tableCases are rows of every format, each with the options that read them.
var tableCases = []struct {
	name   string
	rows   []string
	opts   Options
	format Format
	args   []string
}{
	{"chat", chatTableRows, Options{}, FormatChat, nil},
	{"chat tools as JSON text", chatTableRows, Options{}, FormatChat, []string{"--tools-json"}},
	{"completions", []string{
		`{"prompt": "What is 2+2?", "completion": "4"}`,
		`{"prompt": "Capital of France?", "completion": "Paris", "score": 0.75}`,
		`{"prompt": "Say hi.", "completion": "hi", "score": 0.1}`,
	}, Options{}, FormatCompletions, nil},
	{"text", []string{`{"text": "The quick brown fox."}`, `{"text": "jumps over"}`, `{"text": "the lazy dog", "lang": "en"}`}, Options{}, FormatText, nil},
	{"sharegpt", []string{
		`{"conversations": [{"from": "human", "value": "Hi!"}, {"from": "gpt", "value": "Hello."}], "system": null, "tools": null}`,
		`{"system": "You add.", "conversations": [{"from": "human", "value": "Add 2 and 3."}, {"from": "function_call", "value": "{\"name\": \"add\", \"arguments\": {\"a\": 2, \"b\": 3}}"}, {"from": "observation", "value": "5"}, {"from": "gpt", "value": "5."}], "tools": [{"type": "function", "function": {"name": "add"}}]}`,
		`{"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}], "system": "Be terse.", "tools": null}`,
	}, Options{}, FormatShareGPT, nil},
	{"alpaca", []string{
		`{"instruction": "Name a prime.", "input": "", "output": "7", "system": null}`,
		`{"instruction": "Sum.", "input": "2 and 3", "output": "5", "system": "You add."}`,
		`{"instruction": "Translate.", "input": null, "output": "chat", "system": null}`,
	}, Options{}, FormatAlpaca, nil},
	{"renamed columns", []string{
		`{"question": "What is 2+2?", "answer": "4"}`, `{"question": "Capital of France?", "answer": "Paris"}`,
	}, Options{}.WithColumns(Columns{Prompt: "question", Completion: "answer"}), FormatCompletions, nil},
}

// TestTablesMatchJSONL reads each set of rows from a Parquet file written by datasets, two
// Parquet shards in row groups of two (zstd and snappy), a save_to_disk folder in two shards
// and a DatasetDict's splits, and requires exactly the examples of the same rows in JSONL.
func TestTablesMatchJSONL(t *testing.T) {
	tok := loadTokenizer(t)
	for _, tc := range tableCases {
		t.Run(tc.name, func(t *testing.T) {
			out := makeTables(t, writeRows(t, "rows.jsonl", tc.rows...), tc.args...)
			expected := filepath.Join(out, "expected", "train.jsonl")
			for _, trainOn := range []TrainOn{TrainAll, TrainLast, TrainAuto} {
				if tc.format == FormatText && trainOn != TrainAll {
					continue
				}
				opts := tc.opts
				opts.TrainOn = trainOn
				want, err := LoadFile(expected, tok, opts)
				if err != nil {
					t.Fatalf("the JSONL rows: %v", err)
				}
				if want.Format != tc.format || len(want.Examples) != len(tc.rows) {
					t.Fatalf("the JSONL rows read as %d %s rows", len(want.Examples), want.Format)
				}
				for _, path := range []string{
					filepath.Join(out, "file", "train.parquet"),
					filepath.Join(out, "hub", "data", "train-*.parquet"),
					filepath.Join(out, "hub", "data"),
					filepath.Join(out, "arrow"),
					filepath.Join(out, "dict", "train"),
					filepath.Join(out, "dict", "validation"),
				} {
					got, err := LoadFile(path, tok, opts)
					if err != nil {
						t.Fatalf("%s: %v", path, err)
					}
					if got.Format != want.Format {
						t.Errorf("%s: format %s, want %s", path, got.Format, want.Format)
					}
					if diff := cmp.Diff(want.Examples, got.Examples); diff != "" {
						t.Errorf("train_on %v: %s: examples differ from the JSONL rows' (-jsonl +table):\n%s", trainOn, path, diff)
					}
				}
			}
		})
	}
}

// TestTableShardsAndRows checks the files a sharded split is read from and the rows each holds.
func TestTableShardsAndRows(t *testing.T) {
	rows := make([]string, 7)
	for i := range rows {
		rows[i] = `{"text": "row ` + strings.Repeat("x", i) + `"}`
	}
	out := makeTables(t, writeRows(t, "rows.jsonl", rows...), "--row-group", "2")
	for _, tc := range []struct {
		path  string
		files []string
		rows  []int
	}{
		{filepath.Join(out, "hub", "data", "train-*.parquet"), []string{"train-00000-of-00002.parquet", "train-00001-of-00002.parquet"}, []int{4, 3}},
		{filepath.Join(out, "arrow"), []string{"data-00000-of-00002.arrow", "data-00001-of-00002.arrow"}, []int{4, 3}},
		{filepath.Join(out, "file", "train.parquet"), []string{"train.parquet"}, []int{7}},
	} {
		ds, err := LoadFile(tc.path, nil, Options{})
		if err != nil {
			t.Fatal(err)
		}
		var files []string
		var counts []int
		for _, s := range ds.Sources {
			files = append(files, filepath.Base(s.Path))
			counts = append(counts, s.Rows)
			if !s.Table {
				t.Errorf("%s: not read as a table", s.Path)
			}
		}
		if !cmp.Equal(files, tc.files) || !cmp.Equal(counts, tc.rows) {
			t.Errorf("%s: files %v with %v rows, want %v with %v", tc.path, files, counts, tc.files, tc.rows)
		}
		if src, line := ds.Locate(5); len(tc.files) == 2 && (filepath.Base(src.Path) != tc.files[1] || line != 2) {
			t.Errorf("%s: example 5 is at %s row %d, want %s row 2", tc.path, src.Path, line, tc.files[1])
		}
	}
}

// TestTableRowErrors: bad rows of a Parquet file are errors naming the file and the row,
// counted across row groups and numbered within each shard.
func TestTableRowErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		rows []string
		opts Options
		want []string
	}{
		{"unknown role", []string{
			`{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}`,
			`{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}`,
			`{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}`,
			`{"messages": [{"role": "user", "content": "a"}, {"role": "bot", "content": "b"}]}`,
			`{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}`,
			`{"messages": null}`,
		}, Options{}, []string{
			`train.parquet: row 4: messages[1].role: unknown role "bot" (roles: system, user, assistant, tool, ipython, developer)`,
			`train.parquet: row 6: "messages" must be an array of messages, found null`,
		}},
		{"wrong type", []string{`{"text": "a", "n": 1}`, `{"text": "b", "n": 2}`, `{"text": null, "n": 3}`},
			Options{}, []string{`train.parquet: row 3: "text" must be a string, found null`}},
		{"missing column", []string{`{"prompt": "a"}`, `{"prompt": "b"}`}, Options{Format: "completions"},
			[]string{`train.parquet: row 1: the row is of no known format, but the data stage says format: completions, which expects {"prompt": …, "completion": …}`}},
		{"renamed column missing", []string{`{"question": "a", "answer": "b"}`},
			Options{}.WithColumns(Columns{Prompt: "q", Completion: "answer"}),
			[]string{`train.parquet: row 1: unsupported row format: expected "text", "q" and "answer", "messages", "conversations" (ShareGPT), or "instruction" and "output" (Alpaca)`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := makeTables(t, writeRows(t, "rows.jsonl", tc.rows...))
			_, bad, err := LoadFileAll(filepath.Join(out, "file", "train.parquet"), loadTokenizer(t), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range bad {
				got = append(got, e.Error())
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}

	// in shards, each error names its shard and its row there
	rows := []string{`{"text": "a"}`, `{"text": "b"}`, `{"text": "c"}`, `{"text": "d"}`, `{"text": null}`, `{"text": "f"}`}
	rows[1] = `{"text": null}`
	out := makeTables(t, writeRows(t, "rows.jsonl", rows...))
	_, bad, err := LoadFileAll(filepath.Join(out, "hub", "data", "train-*.parquet"), nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) != 0 {
		t.Fatalf("without a tokenizer the text is not read, yet: %v", bad)
	}
	_, err = LoadFile(filepath.Join(out, "hub", "data", "train-*.parquet"), loadTokenizer(t), Options{})
	if err == nil || err.Error() != `train-00000-of-00002.parquet: row 2: "text" must be a string, found null` {
		t.Errorf("got %v", err)
	}
	_, bad, _ = LoadFileAll(filepath.Join(out, "hub", "data", "train-*.parquet"), loadTokenizer(t), Options{})
	if len(bad) != 2 || bad[1].Error() != `train-00001-of-00002.parquet: row 2: "text" must be a string, found null` {
		t.Errorf("got %v", bad)
	}
}

// TestCorruptTables: a truncated, garbled or mislabelled file is one error naming it.
func TestCorruptTables(t *testing.T) {
	out := makeTables(t, writeRows(t, "rows.jsonl", chatTableRows...))
	pq, err := os.ReadFile(filepath.Join(out, "file", "train.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	arrow, err := os.ReadFile(filepath.Join(out, "arrow", "data-00000-of-00002.arrow"))
	if err != nil {
		t.Fatal(err)
	}
	garble := func(b []byte, from int, to ...int) []byte {
		b = bytes.Clone(b)
		end := len(b)
		if len(to) > 0 {
			end = to[0]
		}
		for i := from; i < end; i += 7 {
			b[i] ^= 0x5a
		}
		return b
	}
	// the footer's length is the four bytes before the closing magic: keep both
	footer := len(pq) - 8 - int(binary.LittleEndian.Uint32(pq[len(pq)-8:]))
	dir := t.TempDir()
	for name, content := range map[string][]byte{
		"truncated.parquet":  pq[:len(pq)/2],
		"tail.parquet":       pq[len(pq)/2:],
		"garbled.parquet":    garble(pq, 4),
		"footer.parquet":     garble(pq, len(pq)-200),
		"pages.parquet":      garble(pq, 4, footer),
		"thrift.parquet":     garble(pq, footer+3, len(pq)-8),
		"empty.parquet":      nil,
		"text.parquet":       []byte(`{"text": "not parquet"}`),
		"truncated.arrow":    arrow[:len(arrow)/2],
		"garbled.arrow":      garble(arrow, 8),
		"body.arrow":         garble(arrow, len(arrow)/2),
		"empty.arrow":        nil,
		"parquet-as.arrow":   pq,
		"arrow-as.parquet":   arrow,
		"half-header.arrow":  arrow[:5],
		"huge-length.arrow":  append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, arrow[8:]...),
		"magic-only.parquet": []byte("PAR1PAR1"),
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		ds, bad, err := LoadFileAll(path, loadTokenizer(t), Options{})
		t.Logf("%s: %v %v", name, err, bad)
		switch {
		case err != nil:
			if !strings.Contains(err.Error(), path) {
				t.Errorf("%s: the error does not name the file: %v", name, err)
			}
		case len(bad) > 0:
			if !strings.Contains(bad[0].Error(), name) {
				t.Errorf("%s: the error does not name the file: %v", name, bad[0])
			}
		default:
			// garbling may spare every byte that matters; then the rows must be whole
			if ds == nil || ds.Len() == 0 {
				t.Errorf("%s: read with no error and no rows", name)
			}
		}
	}
}

func TestFloatsAsPython(t *testing.T) {
	for f, want := range map[float64]string{
		1: "1.0", 0.1: "0.1", 1e16: "1e+16", 1e15: "1000000000000000.0", 1.5e-5: "1.5e-05", 1e-4: "0.0001",
		-2.5: "-2.5", 123456789.123: "123456789.123", float64(float32(0.1)): "0.10000000149011612", 1e100: "1e+100",
		-1e-7: "-1e-07", 0: "0.0",
	} {
		if got := floatNumber(f); string(got) != want {
			t.Errorf("%v: %s, want %s", f, got, want)
		}
	}
}
