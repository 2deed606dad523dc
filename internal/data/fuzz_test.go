package data

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
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

// tableSeedRows are chat rows with the column types datasets writes: nested turns with an
// optional tool call, a string, an integer, a float, a boolean and a null column.
const tableSeedRows = `[
{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo", "tool_calls": null}], "tools": null, "id": 1, "score": 0.5, "ok": true, "none": null},
{"messages": [{"role": "user", "content": "Add"}, {"role": "assistant", "content": null, "tool_calls": [{"type": "function", "function": {"name": "add", "arguments": "{\"a\": 1}"}}]}], "tools": "[{\"name\": \"add\"}]", "id": 2, "score": 1e-05, "ok": false, "none": null},
{"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A", "tool_calls": null}], "tools": null, "id": 3, "score": 2.0, "ok": null, "none": null}
]`

func tableSeedRecord(tb testing.TB) arrow.RecordBatch {
	tb.Helper()
	fn := arrow.StructOf(arrow.Field{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
		arrow.Field{Name: "arguments", Type: arrow.BinaryTypes.String, Nullable: true})
	call := arrow.StructOf(arrow.Field{Name: "type", Type: arrow.BinaryTypes.String, Nullable: true},
		arrow.Field{Name: "function", Type: fn, Nullable: true})
	turn := arrow.StructOf(arrow.Field{Name: "role", Type: arrow.BinaryTypes.String, Nullable: true},
		arrow.Field{Name: "content", Type: arrow.BinaryTypes.String, Nullable: true},
		arrow.Field{Name: "tool_calls", Type: arrow.ListOf(call), Nullable: true})
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "messages", Type: arrow.ListOf(turn), Nullable: true},
		{Name: "tools", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "score", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "ok", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "none", Type: arrow.Null, Nullable: true},
	}, nil)
	rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, schema, strings.NewReader(tableSeedRows))
	if err != nil {
		tb.Fatal(err)
	}
	return rec
}

// fuzzTable writes each input to a file of the given name and reads it: rows or one error
// naming the file, never a panic; a row read converts like a JSONL row.
func fuzzTable(f *testing.F, name string) {
	alloc, live := maxTableAlloc, maxTableLive
	maxTableAlloc, maxTableLive = 64<<20, 256<<20 // a fuzzed size may not exhaust the machine
	f.Cleanup(func() { maxTableAlloc, maxTableLive = alloc, live })
	f.Fuzz(func(t *testing.T, content []byte) {
		path := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		ds, bad, err := LoadFileAll(path, nil, Options{})
		if err != nil {
			if !strings.Contains(err.Error(), name) {
				t.Fatalf("the error does not name the file: %v", err)
			}
			return
		}
		for _, e := range bad {
			if !strings.Contains(e.Error(), name) {
				t.Fatalf("the row error does not name the file: %v", e)
			}
		}
		if ds != nil && ds.Len() != ds.Sources[0].Rows {
			t.Fatalf("%d examples from %d rows", ds.Len(), ds.Sources[0].Rows)
		}
	})
}

func FuzzParquet(f *testing.F) {
	rec := tableSeedRecord(f)
	tbl := array.NewTableFromRecords(rec.Schema(), []arrow.RecordBatch{rec})
	for _, codec := range []compress.Compression{compress.Codecs.Snappy, compress.Codecs.Zstd, compress.Codecs.Uncompressed} {
		var buf bytes.Buffer
		props := parquet.NewWriterProperties(parquet.WithCompression(codec))
		if err := pqarrow.WriteTable(tbl, &buf, 2, props, pqarrow.DefaultWriterProps()); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	f.Add([]byte("PAR1PAR1"))
	fuzzTable(f, "train.parquet")
}

func FuzzArrow(f *testing.F) {
	rec := tableSeedRecord(f)
	for _, opts := range [][]ipc.Option{{}, {ipc.WithZstd()}, {ipc.WithLZ4()}} {
		var buf bytes.Buffer
		w := ipc.NewWriter(&buf, append(opts, ipc.WithSchema(rec.Schema()))...)
		if err := w.Write(rec); err != nil {
			f.Fatal(err)
		}
		if err := w.Write(rec.NewSlice(1, 3)); err != nil {
			f.Fatal(err)
		}
		w.Close()
		f.Add(buf.Bytes())
	}
	var file bytes.Buffer
	fw, err := ipc.NewFileWriter(&file, ipc.WithSchema(rec.Schema()))
	if err != nil {
		f.Fatal(err)
	}
	if err := fw.Write(rec); err != nil {
		f.Fatal(err)
	}
	fw.Close()
	f.Add(file.Bytes())
	fuzzTable(f, "data-00000-of-00001.arrow")
}

// TestFuzzSeedsRead: the fuzzers' seeds are valid files, read whole as chat rows.
func TestFuzzSeedsRead(t *testing.T) {
	rec := tableSeedRecord(t)
	dir := t.TempDir()
	var pq, stream bytes.Buffer
	if err := pqarrow.WriteTable(array.NewTableFromRecords(rec.Schema(), []arrow.RecordBatch{rec}), &pq, 2, nil, pqarrow.DefaultWriterProps()); err != nil {
		t.Fatal(err)
	}
	w := ipc.NewWriter(&stream, ipc.WithSchema(rec.Schema()), ipc.WithZstd())
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	w.Close()
	for name, content := range map[string][]byte{"train.parquet": pq.Bytes(), "train.arrow": stream.Bytes()} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		ds, err := LoadFile(path, loadTokenizer(t), Options{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if ds.Format != FormatChat || ds.Len() != 3 || ds.Examples[0].Keys != 6 || len(ds.Examples[1].Tokens) == 0 {
			t.Errorf("%s: %d %s rows, %d keys", name, ds.Len(), ds.Format, ds.Examples[0].Keys)
		}
	}
}
