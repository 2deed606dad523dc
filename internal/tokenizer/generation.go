package tokenizer

import (
	"bytes"
	"fmt"

	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/parser"
	"github.com/nikolalohinski/gonja/v2/tokens"
)

// Span is a range [Start, End) of bytes of a rendered text, or of tokens of its encoding.
type Span struct{ Start, End int }

// generationStructure is transformers' {% generation %} … {% endgeneration %} tag: it renders
// its body unchanged and, when the rendering asks for it, records where the body landed in
// the output: the text the assistant writes, which return_assistant_tokens_mask marks.
type generationStructure struct {
	location *tokens.Token
	wrapper  *nodes.Wrapper
}

func (g *generationStructure) Position() *tokens.Token { return g.location }

func (g *generationStructure) String() string {
	return fmt.Sprintf("GenerationControlStructure(Line=%d Col=%d)", g.location.Line, g.location.Col)
}

// recorderKey names the template variable that carries a rendering's recorder. It is not a
// Jinja identifier (a template cannot read or overwrite it).
const recorderKey = "yai:generation"

type generationRecorder struct {
	out   *bytes.Buffer
	spans []Span
	// lost is set when a generation block rendered into another buffer than the output
	// (inside a macro call or a filter block): its place in the text is unknown.
	lost bool
}

func (g *generationStructure) Execute(r *exec.Renderer, _ *nodes.ControlStructureBlock) error {
	v, _ := r.Environment.Context.Get(recorderKey)
	rec, _ := v.(*generationRecorder)
	start := 0
	if rec != nil {
		start = rec.out.Len()
	}
	if err := r.ExecuteWrapper(g.wrapper); err != nil {
		return err
	}
	switch {
	case rec == nil:
	case r.Output != rec.out:
		rec.lost = true
	default:
		rec.spans = append(rec.spans, Span{start, rec.out.Len()})
	}
	return nil
}

func generationParser(p *parser.Parser, args *parser.Parser) (nodes.ControlStructure, error) {
	g := &generationStructure{location: p.Current()}
	wrapper, endArgs, err := p.WrapUntil("endgeneration")
	if err != nil {
		return nil, err
	}
	if !args.End() || !endArgs.End() {
		return nil, args.Error("generation takes no arguments", nil)
	}
	g.wrapper = wrapper
	return g, nil
}
