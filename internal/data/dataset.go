// Package data loads fine-tuning datasets in mlx-lm's layout (a directory with train.jsonl and
// optional valid.jsonl / test.jsonl) and cuts them into padded batches exactly as mlx-lm 0.32
// does (mlx_lm/tuner/datasets.py and trainer.py iterate_batches). It produces plain Go values;
// the trainer turns them into MLX arrays.
package data

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/sourcegraph/conc/iter"

	"github.com/yai-dev/yai/internal/tokenizer"
)

// Format is the row format of a dataset, chosen from its first row as mlx-lm does.
type Format int

const (
	FormatText        Format = iota // {"text": …}
	FormatCompletions               // {"prompt": …, "completion": …}
	FormatChat                      // {"messages": [...], "tools": [...]?}
	FormatShareGPT                  // {"conversations": [{"from": …, "value": …}, ...]}
	FormatAlpaca                    // {"instruction": …, "input": …?, "output": …}
)

func (f Format) String() string {
	return [...]string{"text", "completions", "chat", "sharegpt", "alpaca"}[f]
}

// Options mirror mlx-lm's dataset settings. Empty keys take mlx-lm's defaults.
type Options struct {
	TrainOn       TrainOn // the tokens the loss counts; the zero value counts all, as mlx-lm
	TextKey       string  // "text"
	PromptKey     string  // "prompt"
	CompletionKey string  // "completion"
	ChatKey       string  // "messages"
	Format        string  // "text", "completions", "chat", "sharegpt" or "alpaca" to require one; "" detects it
	Workers       int     // tokenization goroutines; 0 means GOMAXPROCS

	// Names read by the formats mlx-lm lacks (formats.go); empty keeps the format's own: role
	// and content (ShareGPT from and value), instruction, input, output and system.
	RoleKey, ContentKey                            string
	InstructionKey, InputKey, OutputKey, SystemKey string
}

func (o Options) withDefaults() Options {
	if o.TextKey == "" {
		o.TextKey = "text"
	}
	if o.PromptKey == "" {
		o.PromptKey = "prompt"
	}
	if o.CompletionKey == "" {
		o.CompletionKey = "completion"
	}
	if o.ChatKey == "" {
		o.ChatKey = "messages"
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	return o
}

// Example is one tokenized row: its tokens and the prompt offset (the number of leading tokens
// excluded from the loss; 0 unless TrainLast).
type Example struct {
	Tokens []int32
	Offset int
	// Spans, with TrainAssistant, are the ranges of tokens the loss counts (each predicted
	// from the tokens before it): the assistant turns. Nil otherwise.
	Spans []Span
	// Turns is the number of messages of a chat row (2 for a prompt and completion, 0 for
	// text).
	Turns int
	// Keys is the number of top-level keys of the JSON row. mlx-lm 0.32 sorts rows by it
	// before batching (CacheDataset.itemlen measures the raw row), so batching needs it.
	Keys int
}

// Dataset is one split, tokenized, in file order.
type Dataset struct {
	Path     string // as named: a file, a folder of files, or a glob
	Format   Format
	Examples []Example
	// Sources are the files the rows came from, in order (one for a JSONL file; a sharded
	// split's shards), each with its number of rows.
	Sources []Source
}

// Source is one file of a split.
type Source struct {
	Path  string
	Rows  int  // rows (JSONL: lines) read from it, bad ones included
	Table bool // a Parquet or Arrow file, whose rows are numbered rather than its lines
}

// Locate is the file of example i and its 1-based line (or row) in that file.
func (d *Dataset) Locate(i int) (Source, int) {
	for _, s := range d.Sources {
		if i < s.Rows {
			return s, i + 1
		}
		i -= s.Rows
	}
	return Source{Path: d.Path}, i + 1
}

// Len is the number of rows.
func (d *Dataset) Len() int {
	if d == nil {
		return 0
	}
	return len(d.Examples)
}

// Load reads the train, valid and test splits of dir as FindSplit finds them (train.jsonl,
// valid.jsonl and test.jsonl first). A missing split gives a nil Dataset, as in mlx-lm;
// whether a split is required is the caller's decision.
func Load(dir string, tok *tokenizer.Tokenizer, opts Options) (train, valid, test *Dataset, err error) {
	splits := make([]*Dataset, 3)
	for i, name := range []string{"train", "valid", "test"} {
		path, err := FindSplit(dir, name, "")
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, nil, nil, err
		}
		if splits[i], err = LoadFile(path, tok, opts); err != nil {
			return nil, nil, nil, err
		}
	}
	return splits[0], splits[1], splits[2], nil
}

// LoadFile reads and tokenizes one split (a JSONL, Parquet or Arrow file, a folder or a glob
// of them: see SplitFiles) on a pool of workers; the examples keep file order. The first bad
// row is reported as "file:line: problem" (Parquet and Arrow: "file: row N: problem").
func LoadFile(path string, tok *tokenizer.Tokenizer, opts Options) (*Dataset, error) {
	ds, bad, err := LoadFileAll(path, tok, opts)
	if err != nil {
		return nil, err
	}
	if len(bad) > 0 {
		return nil, bad[0]
	}
	return ds, nil
}

// LoadFileAll is LoadFile reporting every bad row (up to MaxRowErrors, in file and line
// order) instead of the first. The error is for a file that cannot be read at all. With a nil
// tokenizer rows are only parsed and their format checked, not tokenized.
func LoadFileAll(path string, tok *tokenizer.Tokenizer, opts Options) (*Dataset, []*RowError, error) {
	opts = opts.withDefaults()
	files, err := SplitFiles(path)
	if err != nil {
		return nil, nil, err
	}
	bad := &rowErrors{}
	ds := &Dataset{Path: path}
	var rows []*tokenizer.Object
	for f, file := range files {
		src := Source{Path: file, Table: kindOf(file) != kindJSONL}
		if src.Table {
			err = readTableFile(file, kindOf(file), func(row *tokenizer.Object) { rows = append(rows, row); src.Rows++ })
		} else {
			var read []*tokenizer.Object
			read, err = readJSONL(file, func(line, col int, problem string) { bad.add(&src, f, line, col, problem) })
			rows = append(rows, read...)
			src.Rows = len(read)
		}
		if err != nil {
			return nil, nil, err
		}
		ds.Sources = append(ds.Sources, src)
	}
	if len(rows) == 0 && len(bad.list) == 0 {
		bad.add(&Source{Path: files[0]}, 0, 0, 0, "no rows")
	}
	if bad.full() || len(rows) == 0 || rows[0] == nil {
		return nil, bad.sorted(), nil
	}
	// at reports a problem of row i of the split at its file and line
	at := func(i int, problem string) {
		for f := range ds.Sources {
			if i < ds.Sources[f].Rows {
				bad.add(&ds.Sources[f], f, i+1, 0, problem)
				return
			}
			i -= ds.Sources[f].Rows
		}
	}
	format, err := detectFormat(rows[0], opts)
	if err != nil {
		at(0, err.Error())
		return nil, bad.sorted(), nil
	}
	ds.Format = format
	for i, row := range rows {
		if row != nil {
			if rows[i], err = chatRow(row, format, opts); err != nil {
				at(i, err.Error())
			}
		}
	}
	ds.Examples = make([]Example, len(rows))
	if tok == nil {
		return ds, bad.sorted(), nil
	}
	type result struct {
		example Example
		err     error
	}
	mapper := iter.Mapper[*tokenizer.Object, result]{MaxGoroutines: opts.Workers}
	results := mapper.Map(rows, func(row **tokenizer.Object) result {
		if *row == nil {
			return result{} // reported when parsed
		}
		ex, err := processRow(*row, format.rendered(), tok, opts)
		return result{ex, err}
	})
	for i, r := range results {
		if r.err != nil {
			at(i, r.err.Error())
		}
		ds.Examples[i] = r.example
	}
	return ds, bad.sorted(), nil
}

// readJSONL parses the lines of a JSONL file, one row a line (nil where the line is bad,
// reported to bad with its line and column).
func readJSONL(path string, bad func(line, col int, problem string)) ([]*tokenizer.Object, error) {
	content, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if bytes.HasPrefix(content, utf8BOM) {
		bad(1, 1, "the file starts with a UTF-8 byte order mark (BOM); save it as UTF-8 without one")
		return nil, nil
	}
	lines := splitLines(content)
	rows := make([]*tokenizer.Object, len(lines))
	for i, line := range lines {
		var col int
		rows[i], col, err = parseRow(line)
		if err != nil {
			bad(i+1, col, err.Error())
		}
	}
	return rows, nil
}

// splitLines cuts a file into lines like Python's file iteration: a final newline does not
// start another line.
func splitLines(content []byte) [][]byte {
	if len(content) == 0 {
		return nil
	}
	content = bytes.TrimSuffix(content, []byte("\n"))
	return bytes.Split(content, []byte("\n"))
}

// parseRow decodes one line into a JSON object; col is the character column of the fault,
// or 0 when the whole row is at fault.
func parseRow(line []byte) (obj *tokenizer.Object, col int, err error) {
	if len(bytes.TrimSpace(line)) == 0 {
		return nil, 0, errors.New("empty line")
	}
	if i := invalidUTF8(line); i >= 0 {
		return nil, utf8.RuneCount(line[:i]) + 1, fmt.Errorf("invalid UTF-8 (byte 0x%02x): rows are UTF-8 text", line[i])
	}
	if !json.Valid(line) {
		var v any
		err := json.Unmarshal(line, &v)
		var syntax *json.SyntaxError
		if errors.As(err, &syntax) {
			// the offset is of the byte after the fault; back up to the start of its character
			at := min(max(int(syntax.Offset)-1, 0), len(line))
			for at > 0 && at < len(line) && !utf8.RuneStart(line[at]) {
				at--
			}
			column := utf8.RuneCount(line[:at]) + 1
			return nil, column, fmt.Errorf("invalid JSON: %s", syntax.Error())
		}
		return nil, 0, fmt.Errorf("invalid JSON: %v", err)
	}
	v, err := tokenizer.ParseJSON(line)
	if err != nil {
		return nil, 0, fmt.Errorf("invalid JSON: %v", err)
	}
	obj, ok := v.(*tokenizer.Object)
	if !ok {
		return nil, 0, fmt.Errorf("expected a JSON object, found %s", jsonKind(v))
	}
	return obj, 0, nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case *tokenizer.Object:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// detectFormat applies mlx-lm's create_dataset rules to the first row; a format the recipe
// names must be the one the row has.
func detectFormat(first *tokenizer.Object, opts Options) (Format, error) {
	has := func(key string) bool { _, ok := first.Get(key); return ok }
	if f, named, err := checkNamed(first, opts); named {
		return f, err
	}
	if opts.Format != "" {
		got, err := detectFormat(first, opts.keysOnly())
		want := map[string]string{"text": `{"text": …}`, "completions": `{"prompt": …, "completion": …}`, "chat": `{"messages": [...]}`}[opts.Format]
		if err != nil || got.String() != opts.Format {
			found := "of no known format"
			if err == nil {
				found = got.String()
			}
			return 0, fmt.Errorf("the row is %s, but the data stage says format: %s, which expects %s", found, opts.Format, want)
		}
	}
	if f, ok := detectOther(first, opts); ok {
		return f, nil
	}
	switch {
	case has(opts.PromptKey) && has(opts.CompletionKey):
		return FormatCompletions, nil
	case has(opts.ChatKey):
		return FormatChat, nil
	case has(opts.TextKey):
		if opts.TrainOn == TrainLast || opts.TrainOn == TrainAssistant {
			return 0, fmt.Errorf("text rows have no prompt or assistant turns to tell apart: train_on: %s needs chat or prompt/completion rows (train_on: all trains on the whole text)", opts.TrainOn)
		}
		return FormatText, nil
	}
	return 0, fmt.Errorf("unsupported row format: expected %q, %q and %q, %q, %q (ShareGPT), or %q and %q (Alpaca)",
		opts.TextKey, opts.PromptKey, opts.CompletionKey, opts.ChatKey, shareGPTKey(opts), or(opts.InstructionKey, "instruction"), or(opts.OutputKey, "output"))
}

func stringField(row *tokenizer.Object, key string) (string, error) {
	v, ok := row.Get(key)
	if !ok {
		return "", fmt.Errorf("missing key %q", key)
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%q must be a string, found %s", key, jsonKind(v))
	}
	return s, nil
}

// toolsField reads the optional "tools" list (absent, null or "" means none); a string holds
// the list's JSON, as datasets whose tools differ in shape keep them in Parquet.
func toolsField(row *tokenizer.Object) ([]any, error) {
	tools, err := shareGPTTools(row)
	if err != nil || tools == nil {
		return nil, err
	}
	return tools, checkTools(tools)
}

func messagesField(row *tokenizer.Object, key string) ([]tokenizer.Message, error) {
	list, err := messageList(row, key)
	if err != nil {
		return nil, err
	}
	messages := make([]tokenizer.Message, len(list))
	for i, obj := range list {
		role, ok := obj.Values["role"].(string)
		if !ok {
			return nil, fmt.Errorf("%s[%d].role must be a string", key, i)
		}
		if !slices.Contains(Roles, role) {
			return nil, fmt.Errorf("%s[%d].role: unknown role %q (roles: %s)", key, i, role, strings.Join(Roles, ", "))
		}
		m := tokenizer.Message{}
		for _, k := range obj.Keys {
			m[k] = obj.Values[k]
		}
		m["role"] = role
		if calls, ok := m["tool_calls"]; ok {
			if m["tool_calls"], err = checkToolCalls(calls, fmt.Sprintf("%s[%d]", key, i)); err != nil {
				return nil, err
			}
		}
		messages[i] = m
	}
	return messages, nil
}

// processRow tokenizes one row as mlx-lm's TextDataset, CompletionsDataset or ChatDataset does.
func processRow(row *tokenizer.Object, format Format, tok *tokenizer.Tokenizer, opts Options) (Example, error) {
	ex := Example{Keys: len(row.Keys)}
	switch format {
	case FormatText:
		text, err := stringField(row, opts.TextKey)
		if err != nil {
			return ex, err
		}
		ex.Tokens = tok.Encode(text, true)
		eos := tok.EOS()
		if len(eos) == 0 {
			return ex, errors.New("the tokenizer has no EOS token to end text rows with")
		}
		if len(ex.Tokens) == 0 || ex.Tokens[len(ex.Tokens)-1] != eos[0] {
			ex.Tokens = append(ex.Tokens, eos[0])
		}
		return ex, nil
	case FormatCompletions:
		prompt, err := stringField(row, opts.PromptKey)
		if err != nil {
			return ex, err
		}
		completion, err := stringField(row, opts.CompletionKey)
		if err != nil {
			return ex, err
		}
		messages := []tokenizer.Message{
			{"role": "user", "content": prompt},
			{"role": "assistant", "content": completion},
		}
		return chatExample(ex, tok, messages, row, opts.TrainOn, true)
	default:
		messages, err := messagesField(row, opts.ChatKey)
		if err != nil {
			return ex, err
		}
		addGenerationPrompt := messages[len(messages)-1]["role"] == "assistant"
		return chatExample(ex, tok, messages, row, opts.TrainOn, addGenerationPrompt)
	}
}

// chatExample renders the whole conversation. TrainLast masks everything but the last
// message (the offset is the length of the rest, plus the generation prompt when asked), as
// mlx-lm's mask_prompt; TrainAssistant finds every assistant turn.
func chatExample(ex Example, tok *tokenizer.Tokenizer, messages []tokenizer.Message, row *tokenizer.Object, trainOn TrainOn, addGenerationPrompt bool) (Example, error) {
	tools, err := toolsField(row)
	if err != nil {
		return ex, err
	}
	ex.Turns = len(messages)
	if trainOn == TrainAssistant || trainOn == TrainAuto {
		text, spans, err := tok.AssistantSpans(messages, tools)
		if err != nil {
			return ex, err
		}
		ex.Tokens, ex.Spans = tok.EncodeSpans(text, spans)
		if ex.Spans == nil {
			ex.Spans = []Span{}
		}
		return ex, nil
	}
	text, err := tok.ApplyChatTemplate(messages, tools, false)
	if err != nil {
		return ex, err
	}
	ex.Tokens = tok.Encode(text, false)
	if trainOn == TrainLast {
		prompt, err := tok.ApplyChatTemplate(messages[:len(messages)-1], tools, addGenerationPrompt)
		if err != nil {
			return ex, err
		}
		ex.Offset = len(tok.Encode(prompt, false))
	}
	return ex, nil
}
