package recipe

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/yai-dev/yai/internal/tokenizer"
	"github.com/yai-dev/yai/modeldir"
	"go.yaml.in/yaml/v3"
)

// checkModelFiles reports, at the file at fault, every problem of the model's files that
// would stop the run when it loads them: weight files and their headers, the tensors the
// architecture needs, and the tokenizer.
func (l *linter) checkModelFiles(at *yaml.Node, info *modeldir.Info) {
	problems := append(append([]modeldir.Problem{}, info.Problems...), info.Check()...)
	if p := checkTokenizerFiles(info); p != nil {
		problems = append(problems, *p)
	}
	for _, p := range problems {
		summary := p.Message
		if p.Tensor != "" {
			summary = "tensor " + p.Tensor + ": " + p.Message
		}
		l.diags = append(l.diags, Diagnostic{Severity: Error, Summary: summary,
			Detail: "the model of " + l.rangeOf(at).String(), Range: Range{File: p.File, Line: p.Line, Column: p.Column}})
	}
}

// tokenizerRecord is what the dry run keeps of a tokenizer load.
type tokenizerRecord struct {
	Err   string `json:"err,omitempty"`
	Vocab int    `json:"vocab"`
}

// tokenizerFiles are the files tokenizer.Load reads; their hashes key its cached result.
var tokenizerFiles = []string{"tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json", "config.json"}

// checkTokenizerFiles loads the tokenizer (cached by its files' hashes) and checks its
// vocabulary fits the model's embeddings.
func checkTokenizerFiles(info *modeldir.Info) *modeldir.Problem {
	path := filepath.Join(info.Dir, "tokenizer.json")
	if _, err := os.Stat(path); err != nil {
		return &modeldir.Problem{File: path, Message: "missing: the data stage tokenizes with the model's tokenizer.json"}
	}
	rec, err := loadTokenizerRecord(info.Dir)
	if err != nil {
		return &modeldir.Problem{File: path, Message: err.Error()}
	}
	if rec.Err != "" {
		return locatedProblem(path, rec.Err)
	}
	if rec.Vocab > info.Config.VocabSize {
		return &modeldir.Problem{File: path, Message: fmt.Sprintf("the tokenizer has %d ids, more than config.json's vocab_size %d: ids past it have no embedding", rec.Vocab, info.Config.VocabSize)}
	}
	return nil
}

// tokenizerHash hashes the files the tokenizer is read from (missing ones count as empty).
func tokenizerHash(dir string) string {
	parts := []string{"tokenizer"}
	for _, f := range tokenizerFiles {
		h, _ := fileHash(filepath.Join(dir, f))
		parts = append(parts, f+"="+h)
	}
	return cacheKey(parts...)
}

func loadTokenizerRecord(dir string) (tokenizerRecord, error) {
	key := tokenizerHash(dir)
	var rec tokenizerRecord
	if loadCached(key, &rec) {
		return rec, nil
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		rec.Err = err.Error()
	} else {
		rec.Vocab = tok.VocabSize()
	}
	storeCached(key, rec)
	return rec, nil
}

var filePosition = regexp.MustCompile(`^(\d+):(\d+): `)

// locatedProblem splits a "path:line:col: message" error of path into a located problem.
func locatedProblem(path, msg string) *modeldir.Problem {
	p := &modeldir.Problem{File: path, Message: msg}
	if rest, ok := strings.CutPrefix(msg, path+":"); ok {
		if m := filePosition.FindStringSubmatch(rest); m != nil {
			p.Line, _ = strconv.Atoi(m[1])
			p.Column, _ = strconv.Atoi(m[2])
			p.Message = rest[len(m[0]):]
		} else {
			p.Message = strings.TrimSpace(rest)
		}
	}
	return p
}
