package recipe

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/expr-lang/expr/vm"
	"github.com/yai-dev/yai/stages"
	"go.yaml.in/yaml/v3"
)

// linter walks yaml nodes against field specs, decoding into typed structs and collecting
// diagnostics with positions.
type linter struct {
	file      string
	overrides map[*yaml.Node]string // nodes that came from a --set, by "path=value"
	diags     Diagnostics
	triggers  map[string]*vm.Program // compiled triggers by source
}

func (l *linter) rangeOf(n *yaml.Node) Range {
	if o, ok := l.overrides[n]; ok {
		return Range{Override: o}
	}
	if n == nil {
		return Range{File: l.file, Line: 1, Column: 1}
	}
	return Range{File: l.file, Line: n.Line, Column: n.Column}
}

func (l *linter) errorf(n *yaml.Node, format string, args ...any) *Diagnostic {
	return l.add(Error, n, fmt.Sprintf(format, args...))
}

func (l *linter) warnf(n *yaml.Node, format string, args ...any) *Diagnostic {
	return l.add(Warning, n, fmt.Sprintf(format, args...))
}

func (l *linter) add(sev Severity, n *yaml.Node, summary string) *Diagnostic {
	l.diags = append(l.diags, Diagnostic{Severity: sev, Summary: summary, Range: l.rangeOf(n)})
	return &l.diags[len(l.diags)-1]
}

// describe names what a node holds, for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	switch n.ShortTag() {
	case "!!str":
		return strconv.Quote(n.Value)
	case "!!null":
		return "nothing"
	}
	return n.Value
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

// decodeObject decodes mapping node n into struct v according to fields. where names the place
// for messages ("stage \"train\" settings"); it is empty at the top level.
func (l *linter) decodeObject(n *yaml.Node, v reflect.Value, fields []stages.Field) {
	if n.Kind != yaml.MappingNode {
		l.errorf(n, "expected a mapping, got %s", describe(n))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		f, ok := stages.Lookup(fields, k.Value)
		if !ok {
			d := l.errorf(k, "unknown key %q%s", k.Value, stages.DidYouMean(k.Value, stages.Names(fields)))
			d.Detail = "valid keys here: " + strings.Join(stages.Names(fields), ", ")
			continue
		}
		if seen[k.Value] {
			l.errorf(k, "key %q appears twice", k.Value)
			continue
		}
		seen[k.Value] = true
		if isNull(val) {
			continue // an empty value keeps the default; required keys are checked below
		}
		l.decodeValue(val, v.FieldByIndex(f.Index), f)
	}
	for _, f := range fields {
		if f.Required && !seen[f.Name] || f.Required && isNull(valueOf(n, f.Name)) {
			l.errorf(n, "missing required key %q", f.Name)
		}
	}
}

// valueOf returns the value node of key in mapping n, or nil.
func valueOf(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// keyOf returns the key node of key in mapping n, or nil.
func keyOf(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i]
		}
	}
	return nil
}

func (l *linter) decodeValue(n *yaml.Node, v reflect.Value, f stages.Field) {
	if n.Kind == yaml.AliasNode {
		l.errorf(n, "%s: YAML aliases are not supported in recipes; repeat the value", f.Name)
		return
	}
	switch f.Type {
	case stages.Object:
		l.decodeObject(n, v, f.Fields)
		return
	case stages.Settings:
		v.Set(reflect.ValueOf(n)) // typed by the stage kind, decoded once the kind is known
		return
	case stages.List:
		if n.Kind != yaml.SequenceNode {
			l.errorf(n, "%s: expected a list, got %s", f.Name, describe(n))
			return
		}
		sl := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		item := stages.Field{Name: f.Name, Type: f.Elem, Enum: f.Enum, Fields: f.Fields, Min: f.Min, Max: f.Max}
		for i, c := range n.Content {
			if c.Kind == yaml.AliasNode {
				l.errorf(c, "%s: YAML aliases are not supported in recipes; repeat the value", f.Name)
				continue
			}
			if f.Elem == stages.Object {
				l.decodeObject(c, sl.Index(i), f.Fields)
				continue
			}
			l.decodeScalar(c, sl.Index(i), item)
		}
		v.Set(sl)
		return
	}
	l.decodeScalar(n, v, f)
}

func (l *linter) decodeScalar(n *yaml.Node, v reflect.Value, f stages.Field) {
	if n.Kind != yaml.ScalarNode {
		l.errorf(n, "%s: expected %s, got %s", f.Name, article(f.TypeName()), describe(n))
		return
	}
	tag := n.ShortTag()
	switch f.Type {
	case stages.String:
		if slices.Contains([]string{"!!str", "!!int", "!!float", "!!bool"}, tag) {
			if len(f.Enum) > 0 && !slices.Contains(f.Enum, n.Value) {
				l.errorf(n, "%s: %q is not one of %s%s", f.Name, n.Value, strings.Join(f.Enum, ", "), stages.DidYouMean(n.Value, f.Enum))
				return
			}
			v.SetString(n.Value)
			return
		}
	case stages.Int:
		if tag == "!!int" {
			i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
			if err != nil {
				l.errorf(n, "%s: %s is not a valid integer", f.Name, n.Value)
				return
			}
			if l.checkRange(n, f, float64(i)) {
				v.SetInt(i)
			}
			return
		}
	case stages.Float:
		if tag == "!!int" || tag == "!!float" {
			var x float64
			if err := n.Decode(&x); err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
				l.errorf(n, "%s: %s is not a finite number", f.Name, n.Value)
				return
			}
			if l.checkRange(n, f, x) {
				v.SetFloat(x)
			}
			return
		}
	case stages.Bool:
		if tag == "!!bool" {
			var b bool
			_ = n.Decode(&b)
			v.SetBool(b)
			return
		}
	case stages.Size, stages.SizeCap:
		if f.Type == stages.SizeCap && n.Value == "auto" && tag == "!!str" {
			v.Set(reflect.ValueOf(stages.Limit{Auto: true}))
			return
		}
		if tag == "!!int" || tag == "!!str" || tag == "!!float" {
			b, err := stages.ParseBytes(n.Value)
			if err != nil {
				l.errorf(n, "%s: %v", f.Name, err)
				return
			}
			if tag == "!!float" {
				l.errorf(n, "%s: %s needs a unit (%s)", f.Name, n.Value, stages.UnitNames)
				return
			}
			if f.Type == stages.SizeCap {
				v.Set(reflect.ValueOf(stages.Limit{Bytes: b}))
			} else {
				v.SetInt(int64(b))
			}
			return
		}
	}
	l.errorf(n, "%s: expected %s, got %s", f.Name, article(f.TypeName()), describe(n))
}

func (l *linter) checkRange(n *yaml.Node, f stages.Field, x float64) bool {
	if f.Min != nil && x < *f.Min {
		l.errorf(n, "%s: %s is below the minimum %s", f.Name, n.Value, fmtNum(*f.Min))
		return false
	}
	if f.Max != nil && x > *f.Max {
		l.errorf(n, "%s: %s is above the maximum %s", f.Name, n.Value, fmtNum(*f.Max))
		return false
	}
	return true
}

func fmtNum(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }

func itoa(i int) string { return strconv.Itoa(i) }

func article(s string) string {
	if strings.HasPrefix(s, "a") || strings.HasPrefix(s, "i") {
		return "an " + s
	}
	return "a " + s
}
