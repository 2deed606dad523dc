package recipe

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"

	"github.com/yai-dev/yai/stages"
	"github.com/yai-dev/yai/stages/stage"
	"go.yaml.in/yaml/v3"
)

// LoadFile reads and checks a recipe file with --set overrides applied (each "path=value").
func LoadFile(path string, overrides []string) (*Recipe, Diagnostics) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, Diagnostics{{Severity: Error, Summary: err.Error(), Range: Range{File: path}}}
	}
	return Load(path, src, overrides)
}

// Load parses and lints a recipe. It returns every problem at once; the recipe is nil only when
// the document could not be read as a version 1 recipe at all. Load never panics on bad input.
func Load(file string, src []byte, overrides []string) (*Recipe, Diagnostics) {
	l := &linter{file: file, overrides: map[*yaml.Node]string{}}
	if d := checkBytes(file, src); d != nil {
		return nil, Diagnostics{*d}
	}
	doc, d := parseDocument(file, src)
	if d != nil {
		return nil, Diagnostics{*d}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, Diagnostics{{Severity: Error, Summary: "a recipe is a mapping of keys (version, name, model, …), got " + describe(root), Range: l.rangeOf(root)}}
	}
	for _, o := range overrides {
		l.applyOverride(root, o)
	}
	if !l.checkVersion(root) {
		return nil, l.diags
	}

	r := &Recipe{File: file, Dir: filepath.Dir(file), Doc: doc, overrides: l.overrides}
	rv := reflect.ValueOf(r).Elem()
	if err := stages.ApplyDefaults(rv, recipeFields); err != nil {
		panic(err) // the recipe's own defaults are fixed at compile time
	}
	l.decodeObject(root, rv, recipeFields)
	l.lintRules(r, root)
	l.lintStages(r, valueOf(root, "stages"))
	sortDiagnostics(l.diags, file)
	return r, l.diags
}

// sortDiagnostics orders problems as a reader meets them: overrides first, then the recipe
// file by position, then the files it names (model, data) in the order first reported.
func sortDiagnostics(ds Diagnostics, recipeFile string) {
	fileRank := map[string]int{recipeFile: 0}
	for _, d := range ds {
		if _, ok := fileRank[d.Range.File]; !ok {
			fileRank[d.Range.File] = len(fileRank)
		}
	}
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i].Range, ds[j].Range
		if (a.Override != "") != (b.Override != "") {
			return a.Override != ""
		}
		if fa, fb := fileRank[a.File], fileRank[b.File]; fa != fb {
			return fa < fb
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
}

// parseDocument reads the single YAML document of a recipe: a second one is an error, since
// a reader would otherwise believe settings that are silently ignored.
func parseDocument(file string, src []byte) (*yaml.Node, *Diagnostic) {
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Diagnostic{Severity: Error, Summary: `empty recipe: start it with "version: 1"`, Range: Range{File: file, Line: 1, Column: 1}}
		}
		d := syntaxError(file, src, err)
		return nil, &d
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, &Diagnostic{Severity: Error, Summary: `empty recipe: start it with "version: 1"`, Range: Range{File: file, Line: 1, Column: 1}}
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
		return &doc, nil
	case err != nil:
		d := syntaxError(file, src, err)
		return nil, &d
	}
	line := secondDocumentLine(src, doc.Content[0].Line)
	return nil, &Diagnostic{Severity: Error, Summary: "a recipe file holds one YAML document; a second one starts here",
		Detail: "remove the '---' line and what follows, or move the second recipe into its own file",
		Range:  Range{File: file, Line: line, Column: 1}}
}

// secondDocumentLine is the line of the first '---' marker after the first document's start.
func secondDocumentLine(src []byte, after int) int {
	for i, line := range bytes.Split(src, []byte("\n")) {
		if i+1 > after && (bytes.Equal(bytes.TrimRight(line, " \r"), []byte("---")) || bytes.HasPrefix(line, []byte("--- "))) {
			return i + 1
		}
	}
	return after
}

// checkVersion runs before anything else: without a known version the rest cannot be read.
func (l *linter) checkVersion(root *yaml.Node) bool {
	v := valueOf(root, "version")
	if v == nil || isNull(v) {
		at := keyOf(root, "version")
		if at == nil {
			at = &yaml.Node{Line: 1, Column: 1}
		}
		d := l.errorf(at, `missing version: start the recipe with "version: %d"`, Version)
		d.Detail = "every recipe declares the format version it is written in, so future formats can change safely"
		return false
	}
	if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" || v.Value != strconv.Itoa(Version) {
		l.errorf(v, "unsupported recipe version %s (this yai reads version %d)", describe(v), Version)
		return false
	}
	return true
}

// lintStages decodes each stage's settings by its kind and checks ids, events and triggers,
// then the graph.
func (l *linter) lintStages(r *Recipe, list *yaml.Node) {
	if list == nil || list.Kind != yaml.SequenceNode {
		return // reported by decodeObject
	}
	ids := map[string]*yaml.Node{}
	kindCount := map[string]int{}
	for i := range r.Stages {
		s := &r.Stages[i]
		if i < len(list.Content) {
			s.Node = list.Content[i]
		}
		if s.ID != "" {
			idNode := valueOf(s.Node, "id")
			if first, dup := ids[s.ID]; dup {
				l.errorf(idNode, "duplicate stage id %q (first used at line %d)", s.ID, first.Line)
			} else {
				ids[s.ID] = idNode
			}
		}
		if s.Kind == "" {
			continue // missing kind already reported
		}
		kind, ok := stages.Get(s.Kind)
		if !ok {
			d := l.errorf(valueOf(s.Node, "kind"), "unknown stage kind %q%s", s.Kind, stages.DidYouMean(s.Kind, stages.KindNames()))
			d.Detail = "stage kinds: " + join(stages.KindNames())
			continue
		}
		kindCount[s.Kind]++
		if kind.Once && kindCount[s.Kind] == 2 {
			l.errorf(valueOf(s.Node, "kind"), "a recipe may have only one %q stage", s.Kind)
		}
		s.Config = kind.NewConfig()
		if with, _ := s.With.(*yaml.Node); with != nil {
			l.decodeObject(with, reflect.ValueOf(s.Config).Elem(), kind.Fields)
		}
		s.Event = kind.DefaultEvent()
		if s.On != "" {
			s.Event = stage.Event(s.On)
			if !kind.Allows(s.Event) {
				l.errorf(valueOf(s.Node, "on"), "stage kind %q cannot listen to %q (allowed: %s)", s.Kind, s.On, joinEvents(kind.Events))
			}
		}
		if s.Every > 0 && !s.Event.PerStep() {
			l.errorf(valueOf(s.Node, "every"), "every: only per-step events can repeat; %q fires once", s.Event)
		}
		if s.When != "" {
			s.trigger = l.compileTrigger(valueOf(s.Node, "when"), s.When)
		}
	}
	l.lintReferences(r)
	l.lintDistributed(r)
	l.lintGraph(r)
}

// lintReferences runs each kind's cross-stage rules, and warns about kinds a run expects.
func (l *linter) lintReferences(r *Recipe) {
	count := kindCounter{kinds: map[*stages.Kind]int{}, world: max(1, r.Distributed.Ranks)}
	for _, s := range r.Stages {
		if kind, ok := stages.Get(s.Kind); ok {
			count.kinds[kind]++
		}
	}
	for i := range r.Stages {
		s := &r.Stages[i]
		if kind, ok := stages.Get(s.Kind); ok && s.Config != nil {
			l.problems(r, s, kind.CheckRecipe(s.Config, count))
		}
	}
	if len(r.Stages) == 0 {
		return
	}
	for _, kind := range stages.Kinds() {
		if kind.Expected != "" && count.kinds[kind] == 0 {
			l.warnf(keyOf(r.Doc.Content[0], "stages"), "%s", kind.Expected)
		}
	}
}

// kindCounter is the stages.Recipe view cross-stage rules see.
type kindCounter struct {
	kinds map[*stages.Kind]int
	world int
}

func (c kindCounter) Count(k *stages.Kind) int { return c.kinds[k] }
func (c kindCounter) World() int               { return c.world }

func join(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ", "
		}
		out += x
	}
	return out
}

func joinEvents(es []stage.Event) string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = string(e)
	}
	return join(s)
}

// ResolvedYAML is the recipe as run: the file with every override applied.
func (r *Recipe) ResolvedYAML() ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(r.Doc); err != nil {
		return nil, fmt.Errorf("encode resolved recipe: %w", err)
	}
	return b.Bytes(), enc.Close()
}
