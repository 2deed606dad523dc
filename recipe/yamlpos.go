package recipe

import (
	"bytes"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The YAML parser names a line only, and for parser errors the line of the construct it was
// in rather than the fault (often one line above, or the line where a bracket opened). These
// functions find the fault from the bytes: the first line at which a prefix of the document
// fails the same way, then the column from what the message says went wrong.

var (
	yamlLinePrefix = regexp.MustCompile(`^yaml: (line \d+: )?`)
	yamlUnmarshal  = regexp.MustCompile(`^yaml: unmarshal errors:\n\s*(line \d+: )?`)
)

// yamlProblem is the parser's message without its "yaml: line N:" prefix.
func yamlProblem(err error) string {
	msg := err.Error()
	msg = yamlUnmarshal.ReplaceAllString(msg, "")
	return yamlLinePrefix.ReplaceAllString(msg, "")
}

// syntaxError turns a YAML parser error into a diagnostic at the fault's line and column.
func syntaxError(file string, src []byte, err error) Diagnostic {
	problem := yamlProblem(err)
	lines := bytes.SplitAfter(src, []byte("\n"))
	line := faultLine(src, lines, problem)
	col := faultColumn(lines, line, problem)
	summary := explainProblem(problem)
	if c := charAt(lines, line, col); c == ']' || c == '}' {
		summary = "'" + string(c) + "' closes nothing, or a bracket of the other kind"
	}
	d := Diagnostic{Severity: Error, Summary: "YAML syntax: " + summary, Range: Range{File: file, Line: line, Column: col}}
	switch {
	case strings.Contains(problem, "mapping values are not allowed"):
		d.Detail = `a value containing ": " (such as a trigger with ? :) must be quoted: when: "…", or the line is indented too far`
	case strings.Contains(problem, "tab"), strings.Contains(problem, "cannot start any token") && lineHasTab(lines, line):
		d.Detail = "YAML indents with spaces only"
	}
	return d
}

// explainProblem rewords the parser's messages where they name the parser's state, not the
// user's mistake.
func explainProblem(p string) string {
	switch {
	case strings.HasPrefix(p, "did not find expected ',' or ']'"):
		return "'[' is never closed (expected ',' or ']')"
	case strings.HasPrefix(p, "did not find expected ',' or '}'"):
		return "'{' is never closed (expected ',' or '}')"
	case p == "found unexpected end of stream":
		return "a quoted string is never closed (found the end of the file)"
	case p == "found character that cannot start any token":
		return "found a character that cannot start any token (a tab, @ or `)"
	}
	return p
}

// faultLine is the first line n (1-based) such that the document cut after line n fails with
// the same problem: everything before it parses. Binary search keeps it at O(log n) parses.
func faultLine(src []byte, lines [][]byte, problem string) int {
	ends := make([]int, len(lines)+1) // ends[n]: the byte offset after line n
	for i, l := range lines {
		ends[i+1] = ends[i] + len(l)
	}
	fails := func(n int) bool {
		var doc yaml.Node
		err := yaml.Unmarshal(src[:ends[n]], &doc)
		return err != nil && yamlProblem(err) == problem
	}
	lo, hi := 1, len(lines)
	if hi == 0 || !fails(hi) {
		return max(hi, 1) // only the whole document fails this way (e.g. at its end)
	}
	for lo < hi {
		mid := (lo + hi) / 2
		if fails(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// faultColumn finds the column (in characters, 1-based) on line n the problem points at.
func faultColumn(lines [][]byte, n int, problem string) int {
	if n < 1 || n > len(lines) {
		return 1
	}
	text := []rune(strings.TrimRight(string(lines[n-1]), "\r\n"))
	first := 0
	for first < len(text) && (text[first] == ' ' || text[first] == '\t') {
		first++
	}
	at := func(i int) int { return i + 1 }
	switch {
	case strings.Contains(problem, "tab"):
		for i, r := range text {
			if r == '\t' {
				return at(i)
			}
		}
	case problem == "found character that cannot start any token":
		for i := 0; i < first; i++ {
			if text[i] == '\t' {
				return at(i)
			}
		}
		if i := tokenStartAt(text, "@`\t"); i >= 0 {
			return at(i)
		}
	case problem == "found unexpected end of stream":
		if i := unclosedQuote(text); i >= 0 {
			return at(i)
		}
	case strings.HasPrefix(problem, "did not find expected ',' or"), problem == "did not find expected node content":
		if i := bracketFault(text); i >= 0 {
			return at(i)
		}
	case strings.Contains(problem, "mapping values are not allowed"):
		colons := valueColons(text)
		switch {
		case len(colons) >= 2:
			return at(colons[1])
		case len(colons) == 1:
			return at(colons[0])
		}
	}
	return at(min(first, len(text)))
}

func charAt(lines [][]byte, line, col int) rune {
	if line < 1 || line > len(lines) {
		return 0
	}
	text := []rune(string(lines[line-1]))
	if col < 1 || col > len(text) {
		return 0
	}
	return text[col-1]
}

func lineHasTab(lines [][]byte, n int) bool {
	return n >= 1 && n <= len(lines) && bytes.IndexByte(lines[n-1], '\t') >= 0
}

// scanLine walks a line outside quotes and comments, calling visit for each rune that is not
// inside a quoted string; open is the index of a quote left open at the end, or -1.
func scanLine(text []rune, visit func(i int) bool) (open int) {
	quote := rune(0)
	open = -1
	for i := 0; i < len(text); i++ {
		r := text[i]
		if quote != 0 {
			switch {
			case quote == '"' && r == '\\':
				i++
			case r == quote && quote == '\'' && i+1 < len(text) && text[i+1] == '\'':
				i++ // '' is an escaped quote
			case r == quote:
				quote, open = 0, -1
			}
			continue
		}
		if r == '#' && (i == 0 || text[i-1] == ' ' || text[i-1] == '\t') {
			return -1
		}
		if (r == '"' || r == '\'') && startsToken(text, i) {
			quote, open = r, i
			continue
		}
		if !visit(i) {
			return -1
		}
	}
	return open
}

// startsToken reports whether position i is where a YAML token may begin: the start of the
// line or after a space or a flow indicator.
func startsToken(text []rune, i int) bool {
	return i == 0 || strings.ContainsRune(" \t[{,:-?", text[i-1])
}

func tokenStartAt(text []rune, chars string) int {
	found := -1
	scanLine(text, func(i int) bool {
		if strings.ContainsRune(chars, text[i]) && startsToken(text, i) {
			found = i
			return false
		}
		return true
	})
	return found
}

func unclosedQuote(text []rune) int {
	return scanLine(text, func(int) bool { return true })
}

// bracketFault is a closing bracket that does not match its opener, or else the innermost
// bracket the line leaves open.
func bracketFault(text []rune) int {
	var stack []int
	fault := -1
	scanLine(text, func(i int) bool {
		switch text[i] {
		case '[', '{':
			stack = append(stack, i)
		case ']', '}':
			want := map[rune]rune{']': '[', '}': '{'}[text[i]]
			if len(stack) == 0 || text[stack[len(stack)-1]] != want {
				fault = i
				return false
			}
			stack = stack[:len(stack)-1]
		}
		return true
	})
	if fault < 0 && len(stack) > 0 {
		fault = stack[len(stack)-1]
	}
	return fault
}

// valueColons lists the ':' of the line that separate a key from its value.
func valueColons(text []rune) []int {
	var out []int
	scanLine(text, func(i int) bool {
		if text[i] == ':' && (i+1 == len(text) || text[i+1] == ' ' || text[i+1] == '\t') {
			out = append(out, i)
		}
		return true
	})
	return out
}
