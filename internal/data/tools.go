package data

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/yai-dev/yai/internal/tokenizer"
)

// checkToolCalls checks an assistant message's "tool_calls" (OpenAI's shape: a list of
// {"type": "function", "function": {"name": …, "arguments": …}}, or the function's fields
// directly) and returns it with every "arguments" given as a JSON string decoded into its
// value, as serving stacks hand tool calls to chat templates (which print them with tojson
// and would otherwise quote the string once more). where is the message's path, for errors.
func checkToolCalls(v any, where string) (any, error) {
	if v == nil {
		return nil, nil
	}
	calls, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s.tool_calls must be an array, found %s", where, jsonKind(v))
	}
	out := make([]any, len(calls))
	for j, c := range calls {
		at := fmt.Sprintf("%s.tool_calls[%d]", where, j)
		call, ok := c.(*tokenizer.Object)
		if !ok {
			return nil, fmt.Errorf("%s must be an object, found %s", at, jsonKind(c))
		}
		fn := call
		if f, ok := call.Get("function"); ok {
			if fn, ok = f.(*tokenizer.Object); !ok {
				return nil, fmt.Errorf("%s.function must be an object, found %s", at, jsonKind(f))
			}
			at += ".function"
		}
		if name, ok := fn.Values["name"].(string); !ok || name == "" {
			return nil, fmt.Errorf("%s.name must be a non-empty string", at)
		}
		args, err := decodeArguments(fn.Values["arguments"], at+".arguments")
		if err != nil {
			return nil, err
		}
		out[j] = withValue(call, fn, "arguments", args)
	}
	return out, nil
}

// decodeArguments decodes arguments given as a JSON string; other values pass unchanged.
func decodeArguments(v any, at string) (any, error) {
	s, ok := v.(string)
	if !ok {
		return v, nil
	}
	if !json.Valid([]byte(s)) {
		var x any
		err := json.Unmarshal([]byte(s), &x)
		var syntax *json.SyntaxError
		if errors.As(err, &syntax) {
			return nil, fmt.Errorf("%s is a string but not JSON (at byte %d of it): %v", at, syntax.Offset, syntax)
		}
		return nil, fmt.Errorf("%s is a string but not JSON: %v", at, err)
	}
	value, err := tokenizer.ParseJSON([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", at, err)
	}
	return value, nil
}

// withValue returns call with key of fn (call itself or its "function" object) set to value,
// copying what it changes: the row's own objects stay as they were read.
func withValue(call, fn *tokenizer.Object, key string, value any) *tokenizer.Object {
	if _, ok := fn.Values[key]; !ok {
		return call
	}
	changed := cloneObject(fn)
	changed.Values[key] = value
	if fn == call {
		return changed
	}
	outer := cloneObject(call)
	outer.Values["function"] = changed
	return outer
}

func cloneObject(o *tokenizer.Object) *tokenizer.Object {
	c := &tokenizer.Object{Keys: append([]string(nil), o.Keys...), Values: make(map[string]any, len(o.Values))}
	for k, v := range o.Values {
		c.Values[k] = v
	}
	return c
}

// checkTools checks a row's "tools": a list of objects (OpenAI's {"type": "function",
// "function": {"name": …, …}} or the function itself) with a name.
func checkTools(tools []any) error {
	for i, t := range tools {
		tool, ok := t.(*tokenizer.Object)
		if !ok {
			return fmt.Errorf("tools[%d] must be an object, found %s", i, jsonKind(t))
		}
		at, fn := fmt.Sprintf("tools[%d]", i), tool
		if f, ok := tool.Get("function"); ok {
			if fn, ok = f.(*tokenizer.Object); !ok {
				return fmt.Errorf("tools[%d].function must be an object, found %s", i, jsonKind(f))
			}
			at += ".function"
		}
		if name, ok := fn.Values["name"].(string); !ok || name == "" {
			return fmt.Errorf("%s.name must be a non-empty string", at)
		}
	}
	return nil
}
