package recipe

import (
	"fmt"
	"unicode/utf8"
)

// MaxRecipeBytes bounds a recipe file: ten thousand stages fit in under a megabyte, and the
// bound keeps every later pass (YAML, locating a syntax error, lint, triggers) within seconds
// on hostile input.
const MaxRecipeBytes = 2 << 20

// checkBytes rejects what YAML cannot hold before the parser sees it, at the line and column
// (in characters) of the first bad byte: the parser itself reports these at 1:1.
func checkBytes(file string, src []byte) *Diagnostic {
	if len(src) > MaxRecipeBytes {
		return &Diagnostic{Severity: Error, Summary: fmt.Sprintf("recipe is %d bytes; a recipe file may hold at most %d (2 MiB)", len(src), MaxRecipeBytes),
			Range: Range{File: file, Line: 1, Column: 1}}
	}
	line, col := 1, 1
	for i := 0; i < len(src); {
		r, size := utf8.DecodeRune(src[i:])
		var problem string
		switch {
		case r == utf8.RuneError && size <= 1:
			problem = fmt.Sprintf("invalid UTF-8 (byte 0x%02x): a recipe is UTF-8 text", src[i])
		case r == 0:
			problem = "NUL byte: a recipe is text"
		case r == '\uFEFF' && i == 0:
			// a leading byte order mark is allowed by YAML
		case r < 0x20 && r != '\t' && r != '\n' && r != '\r', r == 0x7f:
			problem = fmt.Sprintf("control character U+%04X is not allowed in YAML", r)
		}
		if problem != "" {
			return &Diagnostic{Severity: Error, Summary: problem, Range: Range{File: file, Line: line, Column: col}}
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		i += size
	}
	return nil
}
