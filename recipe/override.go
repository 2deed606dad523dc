package recipe

import (
	"strconv"
	"strings"

	"github.com/yai-dev/yai/stages"
	"go.yaml.in/yaml/v3"
)

// applyOverride applies one `--set path=value` to the document before lint, so an override is
// checked exactly like file content. Path segments are mapping keys; inside `stages` a segment
// is a stage id (or an index). Problems are reported against the override itself.
func (l *linter) applyOverride(root *yaml.Node, o string) {
	name := o
	if name == "" {
		name = `""` // still point at the (empty) override
	}
	bad := func(format string, args ...any) {
		l.diags = append(l.diags, Diagnostic{Severity: Error, Summary: sprintf(format, args...), Range: Range{Override: name}})
	}
	path, value, ok := strings.Cut(o, "=")
	if !ok || path == "" {
		bad("expected path=value, e.g. memory.limit=6GB")
		return
	}
	if strings.TrimSpace(value) == "" {
		bad("%s has no value: give one after '=', or drop the --set to keep the recipe's value", path)
		return
	}
	var val yaml.Node
	if err := yaml.Unmarshal([]byte(value), &val); err != nil {
		bad("value is not valid YAML: %v", strings.TrimPrefix(err.Error(), "yaml: "))
		return
	}
	newValue := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: ""}
	if len(val.Content) > 0 {
		newValue = val.Content[0]
	}
	l.markOverride(newValue, o)

	node := root
	segs := strings.Split(path, ".")
	for i, seg := range segs {
		last := i == len(segs)-1
		where := strings.Join(segs[:i], ".")
		switch node.Kind {
		case yaml.MappingNode:
			v := valueOf(node, seg)
			if v == nil {
				key := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: seg}
				l.markOverride(key, o)
				v = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
				l.markOverride(v, o)
				node.Content = append(node.Content, key, v)
			}
			if last {
				*v = *newValue
				l.markOverride(v, o)
				return
			}
			if isNull(v) {
				*v = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
				l.markOverride(v, o)
			}
			node = v
		case yaml.SequenceNode:
			idx := stageIndex(node, seg)
			if idx < 0 {
				var ids []string
				for _, c := range node.Content {
					if id := valueOf(c, "id"); id != nil {
						ids = append(ids, id.Value)
					}
				}
				bad("%s has no stage with id %q%s", where, seg, stages.DidYouMean(seg, ids))
				return
			}
			if last {
				*node.Content[idx] = *newValue
				l.markOverride(node.Content[idx], o)
				return
			}
			node = node.Content[idx]
		default:
			bad("cannot set %q: %s is %s, not a mapping", path, where, describe(node))
			return
		}
	}
}

// stageIndex finds a list item by its id, or by a numeric index.
func stageIndex(list *yaml.Node, seg string) int {
	for i, c := range list.Content {
		if id := valueOf(c, "id"); id != nil && id.Value == seg {
			return i
		}
	}
	if i, err := strconv.Atoi(seg); err == nil && i >= 0 && i < len(list.Content) {
		return i
	}
	return -1
}

func (l *linter) markOverride(n *yaml.Node, o string) {
	l.overrides[n] = o
	for _, c := range n.Content {
		l.markOverride(c, o)
	}
}
