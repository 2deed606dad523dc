package recipe

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
	"github.com/yai-dev/yai/stages"
	"github.com/yai-dev/yai/stages/stage"
	"go.yaml.in/yaml/v3"
)

var sprintf = fmt.Sprintf

// Trigger limits: the expression compiler recurses once per nesting level, so a hostile
// expression (a million parentheses) would overflow the stack. Real triggers are one line.
const (
	MaxTriggerBytes = 1024
	MaxTriggerDepth = 32
)

// CompileTrigger compiles a trigger expression against the typed environment; it must be boolean.
func CompileTrigger(src string) (*vm.Program, error) {
	if err := triggerLimits(src); err != nil {
		return nil, err
	}
	return expr.Compile(src, expr.Env(stage.Figures{}), expr.AsBool())
}

// triggerLimits checks the size and nesting of an expression before the compiler sees it.
func triggerLimits(src string) *limitError {
	if len(src) > MaxTriggerBytes {
		return &limitError{msg: sprintf("%d bytes long; at most %d", len(src), MaxTriggerBytes)}
	}
	depth, quote := 0, byte(0)
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'' || c == '`':
			quote = c
		case c == '(' || c == '[' || c == '{':
			depth++
			if depth > MaxTriggerDepth {
				return &limitError{msg: sprintf("brackets nested more than %d deep", MaxTriggerDepth), offset: i}
			}
		case c == ')' || c == ']' || c == '}':
			depth--
		}
	}
	return nil
}

// limitError is a trigger over the limits, at a byte offset of the expression.
type limitError struct {
	msg    string
	offset int
}

func (e *limitError) Error() string { return "trigger: " + e.msg }

// RunTrigger evaluates a compiled trigger.
func RunTrigger(p *vm.Program, env *stage.Figures) (bool, error) {
	out, err := expr.Run(p, env)
	if err != nil {
		return false, err
	}
	b, _ := out.(bool)
	return b, nil
}

var (
	unknownName  = regexp.MustCompile(`^unknown name (\S+)`)
	unknownField = regexp.MustCompile(`^type stage\.(\w+) has no field (\S+)`)
	expectedBool = regexp.MustCompile(`^expected bool, but got (\S+)`)
)

// compileTrigger compiles the `when:` scalar n, reporting errors at the expression's own column.
func (l *linter) compileTrigger(n *yaml.Node, src string) *vm.Program {
	if err := triggerLimits(src); err != nil {
		at := *n
		if l.overrides[n] == "" && n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) == 0 && !strings.Contains(src, "\n") {
			at.Column = n.Column + len([]rune(src[:err.offset]))
			if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
				at.Column++
			}
		}
		l.errorf(&at, "trigger: %s", err.msg)
		return nil
	}
	if p, ok := l.triggers[src]; ok {
		return p // a compiled program is immutable: stages with the same trigger share it
	}
	p, err := CompileTrigger(src)
	if err == nil {
		if l.triggers == nil {
			l.triggers = map[string]*vm.Program{}
		}
		l.triggers[src] = p
		return p
	}
	var fe *file.Error
	if !errors.As(err, &fe) {
		// a type error of the whole expression (AsBool) has no position: point at the scalar
		if m := expectedBool.FindStringSubmatch(err.Error()); m != nil {
			l.errorf(n, "trigger must be true or false, but %q is %s", src, typeWord(m[1]))
		} else {
			l.errorf(n, "trigger: %v", err)
		}
		return nil
	}
	msg, col := fe.Message, fe.Column
	switch {
	case unknownName.MatchString(msg):
		name := unknownName.FindStringSubmatch(msg)[1]
		msg = fmt.Sprintf("unknown name %q%s", name, stages.DidYouMean(name, triggerNames()))
	case unknownField.MatchString(msg):
		m := unknownField.FindStringSubmatch(msg)
		name := "mlx." + m[2]
		msg = fmt.Sprintf("unknown name %q%s", name, stages.DidYouMean(name, triggerNames()))
		if i := strings.Index(src, name); i >= 0 {
			col = len([]rune(src[:i])) // point at the name, not at its dot
		}
	default:
		msg = "syntax: " + msg
	}
	at := *n
	if l.overrides[n] == "" && fe.Line <= 1 && !strings.Contains(src, "\n") {
		at.Column = n.Column + col
		if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
			at.Column++
		}
	}
	d := l.errorf(&at, "trigger: %s", msg)
	if l.overrides[n] != "" {
		d.Range = Range{Override: l.overrides[n]}
	}
	d.Detail = "names: " + join(triggerNames())
	return nil
}

func typeWord(t string) string {
	switch {
	case strings.HasPrefix(t, "int"):
		return "an integer"
	case strings.HasPrefix(t, "float"):
		return "a number"
	case t == "string":
		return "a string"
	}
	return "of type " + t
}

func triggerNames() []string { return stage.TriggerNames() }

// Fires reports whether the stage runs now: its `every` divides the step and its `when`
// holds on env.
func (s *StageDecl) Fires(env *stage.Figures) (bool, error) {
	if s.Every > 0 && env.Step%int64(s.Every) != 0 {
		return false, nil
	}
	if s.trigger == nil {
		return true, nil
	}
	ok, err := RunTrigger(s.trigger, env)
	if err != nil {
		return false, fmt.Errorf("stage %q: trigger %q: %w", s.ID, s.When, err)
	}
	return ok, nil
}

// figuresUsed lists the trigger names a compiled trigger reads ("mlx.peak", "rss", …).
func figuresUsed(p *vm.Program) []string {
	var out []string
	node := p.Node()
	ast.Find(node, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.MemberNode:
			if id, ok := x.Node.(*ast.IdentifierNode); ok {
				if prop, ok := x.Property.(*ast.StringNode); ok {
					out = append(out, id.Value+"."+prop.Value)
				}
			}
		case *ast.IdentifierNode:
			out = append(out, x.Value)
		}
		return false
	})
	return out
}
