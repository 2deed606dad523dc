package tokenizer

import (
	"fmt"

	"github.com/nikolalohinski/gonja/v2/builtins"
	controlStructures "github.com/nikolalohinski/gonja/v2/builtins/control_structures"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/parser"
)

// maxMacroDepth bounds how deep a chat template's macros call themselves (and each other):
// the engine renders a call by recursion, and a macro that calls itself without end would
// overflow the stack, a crash nothing can recover from. Python's Jinja raises
// RecursionError at about a thousand frames; real chat templates recurse a few levels, to
// print nested JSON.
const maxMacroDepth = 100

// templateStructures are the engine's tags for chat templates: every built-in one but those
// that read other template files (include, import, from, extends; a chat template is one
// file, and one that includes itself recurses without end), with macros bounded in depth,
// and transformers' generation tag.
func templateStructures() *exec.ControlStructureSet {
	set := map[string]parser.ControlStructureParser{}
	for _, name := range []string{"autoescape", "block", "filter", "for", "if", "raw", "set", "with",
		"do", "break", "continue", "trans", "call"} {
		if p, ok := builtins.ControlStructures.Get(name); ok {
			set[name] = p
		}
	}
	set["generation"] = generationParser
	macro, _ := builtins.ControlStructures.Get("macro")
	set["macro"] = func(p *parser.Parser, args *parser.Parser) (nodes.ControlStructure, error) {
		cs, err := macro(p, args)
		if err != nil {
			return nil, err
		}
		m, ok := cs.(*controlStructures.MacroControlStructure)
		if !ok {
			return cs, nil
		}
		return &boundedMacro{m}, nil
	}
	return exec.NewControlStructureSet(set)
}

// boundedMacro defines a macro as the engine does, counting the calls in progress.
type boundedMacro struct {
	*controlStructures.MacroControlStructure
}

func (m *boundedMacro) Execute(r *exec.Renderer, tag *nodes.ControlStructureBlock) error {
	fn, err := exec.MacroNodeToFunc(m.Macro, r)
	if err != nil {
		return fmt.Errorf("macro %q: %w", m.Name, err)
	}
	depth := 0 // a definition is executed anew by every rendering
	r.Environment.Context.Set(m.Name, exec.Macro(func(params *exec.VarArgs) *exec.Value {
		if depth >= maxMacroDepth {
			return exec.AsValue(fmt.Errorf("macro %q calls itself more than %d deep", m.Name, maxMacroDepth))
		}
		depth++
		defer func() { depth-- }()
		return fn(params)
	}))
	return nil
}
