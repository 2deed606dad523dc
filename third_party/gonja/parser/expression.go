package parser

import (
	"fmt"

	"github.com/nikolalohinski/gonja/v2/logging"
	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/tokens"
	log "github.com/sirupsen/logrus"
)

// ParseFilterExpression parses an optionnal filter chain for a node
func (p *Parser) ParseFilterExpression(expr nodes.Expression) (nodes.Expression, error) {
	if logging.Enabled() {
		log.WithFields(log.Fields{
			"current":    p.Current(),
			"expression": expr,
		}).Trace("ParseFilterExpression")
	}

	if p.Current(tokens.Pipe) != nil {

		filtered := &nodes.FilteredExpression{
			Expression: expr,
		}
		for p.Match(tokens.Pipe) != nil {

			filter, err := p.ParseFilter()
			if err != nil {
				return nil, err
			}

			filtered.Filters = append(filtered.Filters, filter)
		}
		expr = filtered
	}

	if logging.Enabled() {
		log.WithFields(log.Fields{
			"expr": expr,
		}).Trace("ParseFilterExpression return")
	}
	return expr, nil
}

// ParseExpression parses an expression with optional filters and conditionals: Jinja's
// "A if B else C" goes wherever an expression does (in parentheses, arguments, list and
// dict items, {% set %}, {% if %}, …). Nested expressions should call this method.
func (p *Parser) ParseExpression() (nodes.Expression, error) {
	if logging.Enabled() {
		log.WithFields(log.Fields{
			"current": p.Current(),
		}).Trace("ParseExpression")
	}
	expr, err := p.ParseExpressionWithoutConditional()
	if err != nil || expr == nil {
		return expr, err
	}
	// As Jinja's parse_condexpr: the condition is an or-expression, the alternative a
	// conditional again, and "A if B if C" is "(A if B) if C".
	for {
		tok := p.MatchName("if")
		if tok == nil {
			break
		}
		condition, err := p.ParseExpressionWithoutConditional()
		if err != nil {
			return nil, err
		}
		if condition == nil {
			return nil, p.Error("Expected a condition", p.Current())
		}
		conditional := &nodes.ConditionalExpression{Location: tok, Then: expr, Condition: condition}
		if p.MatchName("else") != nil {
			alternative, err := p.ParseExpression()
			if err != nil {
				return nil, err
			}
			if alternative == nil {
				return nil, p.Error("Expected an alternative", p.Current())
			}
			conditional.Else = alternative
		}
		expr = conditional
	}

	if logging.Enabled() {
		log.WithFields(log.Fields{
			"expr": expr,
		}).Trace("ParseExpression return")
	}
	return expr, nil
}

// ParseExpressionWithoutConditional parses an expression with optional filters but stops
// at "if": a for loop's iterable, which an "if" after it filters.
func (p *Parser) ParseExpressionWithoutConditional() (nodes.Expression, error) {
	expr, err := p.ParseLogicalExpression()
	if err != nil {
		return nil, err
	}
	return p.ParseFilterExpression(expr)
}

func (p *Parser) ParseExpressionNode() (nodes.Node, error) {
	if logging.Enabled() {
		log.WithFields(log.Fields{
			"current": p.Current(),
		}).Trace("ParseExpressionNode")
	}

	tok := p.Match(tokens.VariableBegin)
	if tok == nil {
		return nil, p.Error(fmt.Sprintf("'%s' expected here", p.Config.VariableStartString), p.Current())
	}

	node := &nodes.Output{
		Start: tok,
	}

	expr, err := p.ParseExpression()
	if err != nil {
		return nil, err
	}
	if expr == nil {
		return nil, p.Error("Expected an expression.", p.Current())
	}
	node.Expression = expr

	tok = p.Match(tokens.VariableEnd)
	if tok == nil {
		return nil, p.Error(fmt.Sprintf("'%s' expected here", p.Config.VariableEndString), p.Current())
	}
	node.End = tok
	if data := p.Current(tokens.Data); data != nil {
		data.Trim = data.Trim || len(node.End.Val) > 0 && node.End.Val[0] == '-'
	}

	if logging.Enabled() {
		log.WithFields(log.Fields{
			"node": node,
		}).Trace("parseExpressionNode return")
	}
	return node, nil
}
