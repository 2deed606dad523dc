// Package recipe turns a recipe file into a checked plan without running it: loading and
// versioning, --set overrides, lint against the stage specs, the stage graph, trigger
// compilation, the model's headers and the data, and the memory estimate. Every problem is
// a Diagnostic (this file): a severity, a summary and detail, and the range it came from (a
// file's line and column or a --set override); all of them are collected and reported
// together, as text (`recipe.yaml:12:9: error: …`) or as JSON. Executing a plan belongs to
// package runtime.
package recipe

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Severity of a diagnostic.
type Severity int

const (
	Error Severity = iota
	Warning
)

func (s Severity) String() string {
	if s == Warning {
		return "warning"
	}
	return "error"
}

func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Range is where a diagnostic points: a file position, or a --set override.
type Range struct {
	File     string `json:"file,omitempty"`
	Line     int    `json:"line,omitempty"`
	Column   int    `json:"column,omitempty"`
	Override string `json:"override,omitempty"` // "path=value" when the problem is in a --set
}

func (r Range) String() string {
	switch {
	case r.Override != "":
		return "--set " + r.Override
	case r.Line == 0:
		return r.File
	}
	return fmt.Sprintf("%s:%d:%d", r.File, r.Line, r.Column)
}

// Diagnostic is one problem found in a recipe.
type Diagnostic struct {
	Severity Severity `json:"severity"`
	Summary  string   `json:"summary"`          // one line, printed after the position
	Detail   string   `json:"detail,omitempty"` // optional longer help, printed indented
	Range    Range    `json:"range"`
}

// String renders `recipe.yaml:12:9: error: unknown stage kind "x" (did you mean "y"?)`.
func (d Diagnostic) String() string {
	return fmt.Sprintf("%s: %s: %s", d.Range, d.Severity, d.Summary)
}

// Diagnostics collects every problem of a recipe; it is never cut short at the first one.
type Diagnostics []Diagnostic

// HasErrors reports whether any diagnostic is an error.
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if d.Severity == Error {
			return true
		}
	}
	return false
}

// Format renders one diagnostic per line, with its detail indented below.
func (ds Diagnostics) Format() string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.String())
		b.WriteByte('\n')
		if d.Detail != "" {
			for line := range strings.SplitSeq(d.Detail, "\n") {
				b.WriteString("    " + line + "\n")
			}
		}
	}
	return b.String()
}

// Error makes Diagnostics usable as an error.
func (ds Diagnostics) Error() string { return strings.TrimSuffix(ds.Format(), "\n") }

// JSON renders the diagnostics as a JSON array.
func (ds Diagnostics) JSON() []byte {
	if ds == nil {
		ds = Diagnostics{}
	}
	b, _ := json.MarshalIndent(ds, "", "  ")
	return b
}
