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
// one, its column (in characters). In a Parquet or Arrow file (Row), Line is the row's number
// in the file, counted across its row groups and record batches.
type RowError struct {
	Path    string
	Line    int // 1-based; 0 for the file as a whole
	Column  int // 1-based; 0 when the whole row is at fault
	Problem string
	Row     bool `json:",omitempty"` // Line counts the rows of a Parquet or Arrow file
}

func (e *RowError) Error() string {
	name := filepath.Base(e.Path)
	switch {
	case e.Line == 0:
		return fmt.Sprintf("%s: %s", name, e.Problem)
	case e.Row:
		return fmt.Sprintf("%s: row %d: %s", name, e.Line, e.Problem)
	case e.Column == 0:
		return fmt.Sprintf("%s:%d: %s", name, e.Line, e.Problem)
	}
	return fmt.Sprintf("%s:%d:%d: %s", name, e.Line, e.Column, e.Problem)
}

// rowErrors collects a split's bad rows up to MaxRowErrors.
type rowErrors struct {
	list  []*RowError
	order []int // the index of each error's file in the split
}

// add reports a problem at line (or row) of the split's file src.
func (r *rowErrors) add(src *Source, file, line, col int, problem string) {
	if !r.full() {
		r.list = append(r.list, &RowError{Path: src.Path, Line: line, Column: col, Problem: problem, Row: src.Table})
		r.order = append(r.order, file)
	}
}

func (r *rowErrors) full() bool { return len(r.list) >= MaxRowErrors }

// sorted is the errors in file order, then line order.
func (r *rowErrors) sorted() []*RowError {
	idx := make([]int, len(r.list))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		if r.order[a] != r.order[b] {
			return r.order[a] - r.order[b]
		}
		return r.list[a].Line - r.list[b].Line
	})
	out := make([]*RowError, len(idx))
	for i, j := range idx {
		out[i] = r.list[j]
	}
	return out
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
