package recipe

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/yai-dev/yai/stages"
	"go.yaml.in/yaml/v3"
)

// Change is one difference between the recipe a checkpoint was written under and the recipe
// a resume runs with.
type Change struct {
	Path     string // "memory.limit", "stages.train.with.lr", "stages.clear"
	Old, New string // rendered values ("" where absent)
	// Safe changes cannot change the math already done: memory limits, steps, the name, and
	// every setting and trigger of kinds that only watch, save or log.
	Safe bool
	Node *yaml.Node // where the new recipe sets it (nil when it was removed)
}

func (c Change) String() string {
	switch {
	case c.Old == "":
		return fmt.Sprintf("%s: added %s", c.Path, c.New)
	case c.New == "":
		return fmt.Sprintf("%s: removed (was %s)", c.Path, c.Old)
	}
	return fmt.Sprintf("%s: %s → %s", c.Path, c.Old, c.New)
}

// Drift lists what changed from old (a checkpoint's recipe) to cur (the resume's).
func Drift(old, cur *Recipe) []Change {
	var out []Change
	root := cur.Doc.Content[0]
	top := func(key, o, n string, safe bool) {
		if o != n {
			out = append(out, Change{Path: key, Old: o, New: n, Safe: safe, Node: valueOf(root, key)})
		}
	}
	top("name", old.Name, cur.Name, true)
	top("description", old.Description, cur.Description, true)
	top("steps", fmt.Sprint(old.Steps), fmt.Sprint(cur.Steps), true)
	top("model", old.Model, cur.Model, false)
	top("data", old.Data, cur.Data, false)
	top("seed", fmt.Sprint(old.Seed), fmt.Sprint(cur.Seed), false)
	mem := valueOf(root, "memory")
	for _, f := range memoryFields() {
		o := reflect.ValueOf(old.Memory).FieldByIndex(f.Index).Interface()
		n := reflect.ValueOf(cur.Memory).FieldByIndex(f.Index).Interface()
		if !reflect.DeepEqual(o, n) {
			out = append(out, Change{Path: "memory." + f.Name, Old: render(o), New: render(n), Safe: true, Node: nodeOr(valueOf(mem, f.Name), mem)})
		}
	}

	// The ranks share out the same global batches, so the math does not depend on them.
	dist := valueOf(root, "distributed")
	for _, f := range distributedFields() {
		o := reflect.ValueOf(old.Distributed).FieldByIndex(f.Index).Interface()
		n := reflect.ValueOf(cur.Distributed).FieldByIndex(f.Index).Interface()
		if !reflect.DeepEqual(o, n) {
			out = append(out, Change{Path: "distributed." + f.Name, Old: render(o), New: render(n), Safe: true, Node: nodeOr(valueOf(dist, f.Name), nodeOr(dist, root))})
		}
	}

	stageList := valueOf(root, "stages")
	for _, o := range old.Stages {
		if cur.Stage(o.ID) == nil {
			out = append(out, Change{Path: "stages." + o.ID, Old: o.Kind + " stage", Safe: resumeSafe(o.Kind), Node: stageList})
		}
	}
	for i := range cur.Stages {
		n := &cur.Stages[i]
		o := old.Stage(n.ID)
		path := "stages." + n.ID
		if o == nil {
			out = append(out, Change{Path: path, New: n.Kind + " stage", Safe: resumeSafe(n.Kind), Node: n.Node})
			continue
		}
		if o.Kind != n.Kind {
			out = append(out, Change{Path: path + ".kind", Old: o.Kind, New: n.Kind, Safe: resumeSafe(o.Kind) && resumeSafe(n.Kind), Node: valueOf(n.Node, "kind")})
			continue
		}
		safe := resumeSafe(n.Kind)
		for key, pair := range map[string][2]string{
			"on": {string(o.Event), string(n.Event)}, "when": {o.When, n.When},
			"every": {fmt.Sprint(o.Every), fmt.Sprint(n.Every)}, "after": {strings.Join(o.After, ","), strings.Join(n.After, ",")},
		} {
			if pair[0] != pair[1] {
				out = append(out, Change{Path: path + "." + key, Old: pair[0], New: pair[1], Safe: safe, Node: nodeOr(valueOf(n.Node, key), n.Node)})
			}
		}
		kind, ok := stages.Get(n.Kind)
		if !ok || o.Config == nil || n.Config == nil {
			continue
		}
		with := valueOf(n.Node, "with")
		ov, nv := reflect.ValueOf(o.Config).Elem(), reflect.ValueOf(n.Config).Elem()
		for _, f := range kind.Fields {
			a, b := ov.FieldByIndex(f.Index).Interface(), nv.FieldByIndex(f.Index).Interface()
			if !reflect.DeepEqual(a, b) {
				out = append(out, Change{Path: path + ".with." + f.Name, Old: render(a), New: render(b),
					Safe: safe || f.ResumeSafe, Node: nodeOr(valueOf(with, f.Name), nodeOr(with, n.Node))})
			}
		}
	}
	slices.SortStableFunc(out, func(a, b Change) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// DriftDiagnostics are the unsafe changes as errors located in the resume's recipe (or as
// warnings when forced), each with the whole diff as detail.
func DriftDiagnostics(cur *Recipe, changes []Change, force bool) Diagnostics {
	l := &linter{file: cur.File, overrides: cur.overrides}
	var diff strings.Builder
	for _, c := range changes {
		mark := "unsafe"
		if c.Safe {
			mark = "allowed"
		}
		fmt.Fprintf(&diff, "%-8s %s\n", mark, c)
	}
	for _, c := range changes {
		if c.Safe {
			continue
		}
		n := nodeOr(c.Node, cur.Doc.Content[0])
		var d *Diagnostic
		if force {
			d = l.warnf(n, "resume: %s; it changes the math of the steps already done (resuming anyway: --force)", c)
		} else {
			d = l.errorf(n, "resume: %s; it changes the math of the steps already done (--force resumes anyway)", c)
		}
		d.Detail = "changes since the checkpoint:\n" + strings.TrimRight(diff.String(), "\n")
	}
	sortDiagnostics(l.diags, cur.File)
	return l.diags
}

func resumeSafe(kind string) bool {
	k, ok := stages.Get(kind)
	return ok && k.ResumeSafe
}

func memoryFields() []stages.Field {
	f, _ := stages.Lookup(recipeFields, "memory")
	return f.Fields
}

func distributedFields() []stages.Field {
	f, _ := stages.Lookup(recipeFields, "distributed")
	return f.Fields
}

func render(v any) string {
	switch x := v.(type) {
	case []string:
		return "[" + strings.Join(x, ", ") + "]"
	case fmt.Stringer:
		return x.String()
	}
	return fmt.Sprint(v)
}

func nodeOr(n, fallback *yaml.Node) *yaml.Node {
	if n != nil {
		return n
	}
	return fallback
}
