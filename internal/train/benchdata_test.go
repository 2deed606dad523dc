package train

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// writeGoDocCompletions writes a completions dataset of real text (train.jsonl, valid.jsonl)
// into dir: each row's prompt is an exported function's signature from the Go standard
// library on this machine, its completion the first sentence of the function's doc comment. Rows longer than
// maxBytes (the tiny tokenizer is byte-level: one token a byte) are left out, so none is
// truncated and lengths vary as real data's do. It returns the number of training rows.
func writeGoDocCompletions(tb testing.TB, dir string, rows, maxBytes int) int {
	tb.Helper()
	return writeGoDocRows(tb, dir, rows, maxBytes, false)
}

// writeGoDocAnswers is writeGoDocCompletions with each whole doc comment as the completion,
// not its first sentence, and the rows shuffled (seed 1): short question-and-answer rows
// whose lengths spread as chat data's do (most rows short, a few several times as long).
func writeGoDocAnswers(tb testing.TB, dir string, rows, maxBytes int) int {
	tb.Helper()
	return writeGoDocRows(tb, dir, rows, maxBytes, true)
}

func writeGoDocRows(tb testing.TB, dir string, rows, maxBytes int, paragraph bool) int {
	tb.Helper()
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		tb.Fatalf("go env GOROOT: %v", err)
	}
	root := filepath.Join(strings.TrimSpace(string(goroot)), "src")
	var pkgs []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			name := d.Name()
			if name == "testdata" || name == "internal" || name == "vendor" || name == "cmd" {
				return filepath.SkipDir
			}
			pkgs = append(pkgs, p)
		}
		return nil
	})
	sort.Strings(pkgs)
	type row struct {
		Prompt     string `json:"prompt"`
		Completion string `json:"completion"`
	}
	var out []row
	fset := token.NewFileSet()
	for _, dirPath := range pkgs {
		files, _ := filepath.Glob(filepath.Join(dirPath, "*.go"))
		sort.Strings(files)
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			file, err := parser.ParseFile(fset, f, nil, parser.ParseComments)
			if err != nil {
				continue
			}
			for _, decl := range file.Decls {
				fn, ok := decl.(*ast.FuncDecl)
				if !ok || fn.Doc == nil || !fn.Name.IsExported() {
					continue
				}
				doc := strings.TrimSpace(fn.Doc.Text())
				if paragraph {
					// the whole comment
				} else if i := strings.Index(doc, ". "); i > 0 {
					doc = doc[:i+1] // the first sentence
				}
				fn.Doc, fn.Body = nil, nil
				var sig bytes.Buffer
				printer.Fprint(&sig, fset, fn)
				prompt := file.Name.Name + ": " + sig.String() + "\n"
				if len(prompt)+len(doc) > maxBytes-4 || len(doc) < 20 {
					continue
				}
				out = append(out, row{prompt, doc})
			}
		}
		if len(out) >= rows+rows/8 {
			break
		}
	}
	if len(out) < rows+rows/8 {
		tb.Fatalf("the Go standard library gave %d rows, want %d", len(out), rows+rows/8)
	}
	write := func(name string, rs []row) {
		var buf bytes.Buffer
		for _, r := range rs {
			js, _ := json.Marshal(r)
			buf.Write(append(js, '\n'))
		}
		if err := os.WriteFile(filepath.Join(dir, name), buf.Bytes(), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	if paragraph {
		rand.New(rand.NewSource(1)).Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	}
	os.MkdirAll(dir, 0o755)
	write("train.jsonl", out[:rows])
	write("valid.jsonl", out[rows:rows+rows/8])
	return rows
}
