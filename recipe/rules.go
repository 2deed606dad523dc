package recipe

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// MaxNameBytes bounds `name:`: a run directory is <name>-<UTC time>[-n], and most file systems
// hold 255 bytes per name, so the name keeps room for the 16-byte time and a counter.
const MaxNameBytes = 200

// MaxStages bounds the number of stages a recipe may declare.
const MaxStages = 100_000

// lintRules checks what the field specs cannot say: names that must make a directory, ids
// that must be non-empty, a stage list that must hold something to run, and a memory limit
// that must be a real budget.
func (l *linter) lintRules(r *Recipe, root *yaml.Node) {
	if n := valueOf(root, "name"); n != nil && n.Kind == yaml.ScalarNode && !isNull(n) {
		if problem := nameProblem(r.Name); problem != "" {
			l.errorf(n, "name: %s", problem)
		}
	}
	if list := valueOf(root, "stages"); list != nil && list.Kind == yaml.SequenceNode {
		switch {
		case len(list.Content) == 0:
			d := l.errorf(list, "stages: the list is empty; a recipe needs at least a step stage to train")
			d.Detail = "see `yai stages` for the kinds, or start from a shipped recipe: yai init quickstart ./my"
		case len(list.Content) > MaxStages:
			l.errorf(list, "stages: %d stages; a recipe may declare at most %d", len(list.Content), MaxStages)
		}
		for _, s := range list.Content {
			if id := valueOf(s, "id"); id != nil && id.Kind == yaml.ScalarNode && !isNull(id) && strings.TrimSpace(id.Value) == "" {
				l.errorf(id, "id: a stage id cannot be empty")
			}
		}
	}
	if n := memoryNode(r, "limit"); n != nil && !r.Memory.Limit.Auto && r.Memory.Limit.Bytes == 0 && n.Kind == yaml.ScalarNode && !isNull(n) && !l.reported(n) {
		d := l.errorf(n, "limit: 0 leaves the run without a budget; give a size such as 7GB, or auto")
		d.Detail = "the guard, the budget check and every trigger on limit compare against it"
	}
}

// nameProblem says why a recipe name cannot name a run directory, or "".
func nameProblem(name string) string {
	switch {
	case strings.TrimSpace(name) == "":
		return "the name cannot be empty (it names the run directories)"
	case len(name) > MaxNameBytes:
		return "the name is " + itoa(len(name)) + " bytes; at most " + itoa(MaxNameBytes) + " fit in a run directory's name"
	case name == "." || name == "..":
		return "the name cannot be . or .. (it names the run directories)"
	case !utf8.ValidString(name):
		return "the name is not valid UTF-8"
	}
	for _, r := range name {
		if r == '/' || r == '\\' || unicode.IsControl(r) {
			return "the name cannot hold " + quoteRune(r) + " (it names the run directories)"
		}
	}
	return ""
}

func quoteRune(r rune) string {
	if r == '/' || r == '\\' {
		return "'" + string(r) + "'"
	}
	return "control characters"
}

// reported tells whether a diagnostic already points at n, so a value is not blamed twice.
func (l *linter) reported(n *yaml.Node) bool {
	at := l.rangeOf(n)
	for _, d := range l.diags {
		if d.Range == at {
			return true
		}
	}
	return false
}
