package recipe

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/yai-dev/yai/internal/data"
	"github.com/yai-dev/yai/internal/tokenizer"
	"github.com/yai-dev/yai/stages"
	"go.yaml.in/yaml/v3"
)

// maxRowWarnings bounds the rows listed per kind of warning; the rest are counted.
const maxRowWarnings = 5

// dataRecord is what the dry run learns from one data file: cached by the file's hash, the
// tokenizer's and the settings that shape it, so a second validate reads nothing but hashes.
type dataRecord struct {
	Rows      int             `json:"rows"`
	Errors    []data.RowError `json:"errors,omitempty"`
	Tokenized bool            `json:"tokenized"`
	TooLong   []rowTokens     `json:"too_long,omitempty"` // the first few rows over max_seq_length
	NTooLong  int             `json:"n_too_long"`
	Masked    []rowTokens     `json:"masked,omitempty"` // the first few rows whose targets are all masked
	NMasked   int             `json:"n_masked"`
	Widest    int             `json:"widest"` // the widest batch, in tokens (padded)
	// What the loss will learn: the rows' format, messages, and the tokens kept within
	// max_seq_length that the loss counts (trained) or not (masked).
	Format        string `json:"format"`
	Turns         int64  `json:"turns"`
	TrainedTokens int64  `json:"trained_tokens"`
	MaskedTokens  int64  `json:"masked_tokens"`
	// MostTargets is the most targets the loss counts in one training batch.
	MostTargets int `json:"most_targets"`
}

type rowTokens struct {
	Line   int    `json:"line"`
	Tokens int    `json:"tokens"`
	File   string `json:"file,omitempty"` // the shard, when the split has several files
	Row    bool   `json:"row,omitempty"`  // Line numbers the rows of a Parquet or Arrow file
}

// checkData reads the data stage's files as the run will: each exists, every row parses for
// the format, and (with the model's tokenizer) no row is silently truncated or fully masked.
// The widest training batch goes to the plan, for the memory budget.
func (l *linter) checkData(r *Recipe, p *Plan) {
	s, cfg := dataStage(r)
	if s == nil {
		return
	}
	root := r.Doc.Content[0]
	dataNode := valueOf(root, "data")
	if r.Data == "" {
		d := l.errorf(valueOf(s.Node, "kind"), "the data stage needs data: the directory holding %s and %s", cfg.Train, cfg.Valid)
		d.Detail = "add data: ./data at the top of the recipe (relative to the recipe file), or data: hf:owner/name for a dataset in the local Hugging Face cache"
		return
	}
	dir, err := data.ResolveDataDir(r.Data, r.Dir)
	if err != nil {
		l.errorf(dataNode, "data: %v", err)
		return
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		what := "does not exist"
		if err == nil {
			what = "is not a directory"
		}
		l.errorf(dataNode, "data: %s %s", dir, what)
		return
	}
	tok := &lazyTokenizer{}
	if p.Model != nil {
		tok.dir = p.Model.Dir
	}
	_, hasEval := stages.Get("eval")
	evalStages := 0
	for _, d := range r.Stages {
		if d.Kind == "eval" && hasEval {
			evalStages++
		}
	}
	for _, f := range []struct {
		name, setting string
		train         bool
	}{{cfg.Train, "train", true}, {cfg.Valid, "valid", false}} {
		at := dataNode // a default file name is judged where the directory is named
		if n := valueOf(valueOf(s.Node, "with"), f.setting); n != nil {
			at = n
		}
		path, files, err := data.FindSplitFiles(dir, f.setting, f.name)
		if err != nil {
			var nf *data.NotFoundError
			switch {
			case errors.As(err, &nf):
				l.errorf(at, "%v", err)
			case errors.Is(err, fs.ErrNotExist):
				l.errorf(at, "%s: no such file in the data directory %s", f.name, dir)
			default:
				l.errorf(at, "%s: %v", f.name, err)
			}
			continue
		}
		f.name = splitName(dir, path)
		rec, err := readDataRecord(path, files, tok, cfg, f.train)
		if err != nil {
			l.errorf(at, "%s: %v", f.name, err)
			continue
		}
		l.reportData(path, files, rec, cfg, at)
		if len(rec.Errors) > 0 {
			continue
		}
		switch {
		case f.train && rec.Rows < cfg.BatchSize:
			l.errorf(at, "%s: %d rows, fewer than batch_size %d: no batch can be made", f.name, rec.Rows, cfg.BatchSize)
		case !f.train && evalStages > 0 && rec.Rows < cfg.BatchSize:
			l.errorf(at, "%s: %d rows, fewer than batch_size %d: the eval stage cannot make one batch", f.name, rec.Rows, cfg.BatchSize)
		}
		if rec.Tokenized {
			trainOn := cfg.Masking()
			if trainOn == "auto" { // as the data loader resolves it
				trainOn = map[bool]string{true: "all", false: "assistant"}[rec.Format == "text"]
			}
			p.Data = append(p.Data, DataSummary{Split: f.setting, File: f.name, Format: rec.Format, TrainOn: trainOn, Rows: rec.Rows,
				Turns: rec.Turns, Trained: rec.TrainedTokens, Masked: rec.MaskedTokens, NothingToTrain: rec.NMasked})
		}
		if f.train && rec.Tokenized {
			p.Widest, p.MostTargets = rec.Widest, rec.MostTargets
			p.WidestFrom = f.name
		}
	}
}

// reportData turns a split's record into diagnostics at the rows of its files.
func (l *linter) reportData(path string, files []string, rec dataRecord, cfg *stages.DataConfig, at *yaml.Node) {
	// the record names files by base name; a split's files have distinct ones
	fileOf := func(base string) string {
		for _, f := range files {
			if filepath.Base(f) == base {
				return f
			}
		}
		if len(files) == 1 {
			return files[0]
		}
		return path
	}
	for _, e := range rec.Errors {
		file, line, col, summary := fileOf(e.Path), e.Line, e.Column, e.Problem
		if e.Row && line > 0 { // a table's rows have no line in the file to point at
			summary = sprintf("row %d: %s", line, summary)
			line, col = 0, 0
		} else if line > 0 && col == 0 {
			col = 1
		}
		l.diags = append(l.diags, Diagnostic{Severity: Error, Summary: summary, Range: Range{File: file, Line: line, Column: col}})
	}
	name := filepath.Base(path)
	warnRows := func(rows []rowTokens, total int, summary, format string, args ...any) {
		for _, row := range rows {
			d := Diagnostic{Severity: Warning, Summary: sprintf(format, append([]any{row.Tokens}, args...)...),
				Range: Range{File: path, Line: row.Line, Column: 1}}
			if row.File != "" {
				d.Range.File = fileOf(row.File)
			}
			if row.Row {
				d.Summary = sprintf("row %d: %s", row.Line, d.Summary)
				d.Range.Line, d.Range.Column = 0, 0
			}
			l.diags = append(l.diags, d)
		}
		if total > len(rows) {
			l.warnf(at, "%s: %d rows %s (the first %d are listed below)", name, total, summary, len(rows))
		}
	}
	warnRows(rec.TooLong, rec.NTooLong, sprintf("are longer than max_seq_length %d and will be truncated", cfg.MaxSeqLength),
		"row has %d tokens, more than max_seq_length %d: it will be truncated", cfg.MaxSeqLength)
	warnRows(rec.Masked, rec.NMasked, "have every target masked and add nothing to the loss",
		"every target of this row is masked (nothing train_on trains lies within the %d tokens kept of it): it adds nothing to the loss")
	if rec.Tokenized && rec.Rows > 0 && rec.NMasked == rec.Rows {
		l.errorf(at, "%s: every row's targets are masked: the loss has nothing to train on", filepath.Base(path))
	}
}

// dataStage is the recipe's data stage and its settings, or nil.
func dataStage(r *Recipe) (*StageDecl, *stages.DataConfig) {
	for i := range r.Stages {
		if c, ok := r.Stages[i].Config.(*stages.DataConfig); ok {
			return &r.Stages[i], c
		}
	}
	return nil, nil
}

// lazyTokenizer loads the model's tokenizer on the first cache miss only.
type lazyTokenizer struct {
	dir    string
	loaded bool
	tok    *tokenizer.Tokenizer
	hash   string
}

func (t *lazyTokenizer) key() string {
	if t.dir == "" {
		return "none"
	}
	if t.hash == "" {
		t.hash = tokenizerHash(t.dir)
	}
	return t.hash
}

func (t *lazyTokenizer) get() *tokenizer.Tokenizer {
	if !t.loaded && t.dir != "" {
		t.loaded = true
		t.tok, _ = tokenizer.Load(t.dir) // a broken tokenizer is reported by the model check
	}
	return t.tok
}

// splitName is a split's path as messages name it: relative to the data directory.
func splitName(dir, path string) string {
	if rel, err := filepath.Rel(dir, path); err == nil && !strings.HasPrefix(rel, "..") {
		return filepath.ToSlash(rel)
	}
	return path
}

// readDataRecord reads (or recalls) the record of one split, held in files.
func readDataRecord(path string, files []string, tok *lazyTokenizer, cfg *stages.DataConfig, train bool) (dataRecord, error) {
	// every shard's content (and name, as the rows' order follows the names) is in the key
	var hashes []string
	for _, f := range files {
		h, err := fileHash(f)
		if err != nil {
			return dataRecord{}, err
		}
		hashes = append(hashes, filepath.Base(f), h)
	}
	key := cacheKey("data", strings.Join(hashes, " "), tok.key(), cfg.Format, cfg.Masking(), strconv.Itoa(cfg.MaxSeqLength),
		strconv.Itoa(cfg.BatchSize), strconv.FormatBool(cfg.Shuffle), strconv.FormatBool(cfg.Pack), strconv.FormatBool(train), fmt.Sprintf("%+v", cfg.Columns))
	var rec dataRecord
	if loadCached(key, &rec) {
		return rec, nil
	}
	rec, err := scanData(path, tok.get(), cfg, train)
	if err != nil {
		return rec, err
	}
	if rec.Tokenized || tok.dir == "" {
		storeCached(key, rec)
	}
	return rec, nil
}

// scanData parses and tokenizes a file with the data package, the run's own reader.
func scanData(path string, tok *tokenizer.Tokenizer, cfg *stages.DataConfig, train bool) (dataRecord, error) {
	trainOn, err := data.ParseTrainOn(cfg.Masking())
	if err != nil {
		return dataRecord{}, err
	}
	opts := data.Options{TrainOn: trainOn, Format: strings.TrimPrefix(cfg.Format, "auto")}
	opts = opts.WithColumns(data.Columns(cfg.Columns))
	ds, bad, err := data.LoadFileAll(path, tok, opts)
	if err != nil {
		return dataRecord{}, err
	}
	var rec dataRecord
	for _, e := range bad {
		e.Path = filepath.Base(e.Path) // the record is cached by content, wherever the files lie
		rec.Errors = append(rec.Errors, *e)
	}
	if ds == nil || len(bad) > 0 {
		return rec, nil
	}
	rec.Rows = ds.Len()
	rec.Format = ds.Format.String()
	if tok == nil {
		return rec, nil
	}
	rec.Tokenized = true
	for i, ex := range ds.Examples {
		kept := min(len(ex.Tokens), cfg.MaxSeqLength)
		targets := ex.Targets(cfg.MaxSeqLength)
		rec.Turns += int64(ex.Turns)
		rec.TrainedTokens += int64(targets)
		rec.MaskedTokens += int64(max(0, kept-targets))
		n := len(ex.Tokens)
		at := func(tokens int) rowTokens {
			src, line := ds.Locate(i)
			r := rowTokens{Line: line, Tokens: tokens, Row: src.Table}
			if len(ds.Sources) > 1 {
				r.File = filepath.Base(src.Path)
			}
			return r
		}
		if n > cfg.MaxSeqLength {
			rec.NTooLong++
			if len(rec.TooLong) < maxRowWarnings {
				rec.TooLong = append(rec.TooLong, at(n))
			}
		}
		if targets == 0 {
			rec.NMasked++
			if len(rec.Masked) < maxRowWarnings {
				rec.Masked = append(rec.Masked, at(kept))
			}
		}
	}
	if train && ds.Len() >= cfg.BatchSize {
		it, err := data.NewBatches(ds, data.BatchConfig{BatchSize: cfg.BatchSize, MaxSeqLength: cfg.MaxSeqLength, KeepOrder: !cfg.Shuffle})
		if err != nil {
			return rec, fmt.Errorf("batching: %w", err)
		}
		rec.Widest = it.Widest()
		if !cfg.Pack { // packed rows hold more examples than a batch of rows
			rec.MostTargets = it.MostTargets()
		}
	}
	return rec, nil
}
