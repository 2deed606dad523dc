package main

import (
	"os"
	"path/filepath"
	"testing"
)

// yai import: 2 for usage errors, 1 for a bad file, and no output either way.
func TestImportExitCodes(t *testing.T) {
	dir := t.TempDir()
	notGGUF := filepath.Join(dir, "model.gguf")
	os.WriteFile(notGGUF, []byte("definitely not a GGUF file"), 0o644)
	out := filepath.Join(dir, "out")
	cases := []struct {
		args []string
		want int
	}{
		{[]string{notGGUF}, 2},                                  // no --out
		{[]string{"--out", out}, 2},                             // no file
		{[]string{notGGUF, "--out", out, "--dtype", "int7"}, 2}, // bad dtype
		{[]string{notGGUF, "--out", out}, 1},                    // bad file
		{[]string{notGGUF, "--out", out, "--bits", "7"}, 2},     // bad bits: a usage error
	}
	for _, c := range cases {
		if got := runImport(c.args); got != c.want {
			t.Errorf("yai import %v: exit %d, want %d", c.args, got, c.want)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("output written")
	}
}
