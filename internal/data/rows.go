package data

import (
	"fmt"
	"path/filepath"
	"slices"
	"unicode/utf8"
)

// Roles are the chat roles a messages row may use: the ones chat templates render. Any other
// role would be rendered as text or dropped without a word, and trained on silently.
var Roles = []string{"system", "user", "assistant", "tool", "ipython", "developer"}

// MaxRowErrors bounds how many bad rows one file reports.
const MaxRowErrors = 20

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// RowError is the problem of one row of a dataset file, at its line and, when the fault has
// one, its column (in characters).
type RowError struct {
	Path    string
	Line    int // 1-based; 0 for the file as a whole
	Column  int // 1-based; 0 when the whole row is at fault
	Problem string
}

func (e *RowError) Error() string {
	name := filepath.Base(e.Path)
	switch {
	case e.Line == 0:
		return fmt.Sprintf("%s: %s", name, e.Problem)
	case e.Column == 0:
		return fmt.Sprintf("%s:%d: %s", name, e.Line, e.Problem)
	}
	return fmt.Sprintf("%s:%d:%d: %s", name, e.Line, e.Column, e.Problem)
}

// rowErrors collects a file's bad rows up to MaxRowErrors.
type rowErrors struct {
	path string
	list []*RowError
}

func (r *rowErrors) add(line, col int, problem string) {
	if !r.full() {
		r.list = append(r.list, &RowError{Path: r.path, Line: line, Column: col, Problem: problem})
	}
}

func (r *rowErrors) full() bool { return len(r.list) >= MaxRowErrors }

func (r *rowErrors) sorted() []*RowError {
	slices.SortStableFunc(r.list, func(a, b *RowError) int { return a.Line - b.Line })
	return r.list
}

// invalidUTF8 is the byte offset of the first byte of line that is not UTF-8, or -1.
func invalidUTF8(line []byte) int {
	for i := 0; i < len(line); {
		r, size := utf8.DecodeRune(line[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return -1
}
