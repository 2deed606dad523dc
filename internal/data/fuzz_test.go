package data

import (
	"testing"
	"unicode/utf8"
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
