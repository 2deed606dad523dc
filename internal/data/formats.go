package data

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/yai-dev/yai/internal/tokenizer"
)

// Rows of the formats mlx-lm does not read are turned into chat rows ({"messages": [...]},
// with "tools" when they have any) as soon as they are parsed, so masking, tokenization and
// batching treat them exactly as the equivalent messages row.
//
// ShareGPT: {"conversations": [{"from": …, "value": …}, …]}, optionally with "system" (a
// system prompt put before the conversation) and "tools" (a list, or a JSON string holding
// one, as LLaMA-Factory writes it). The list may also be under "messages". Speakers map to
// roles: human and user → user, gpt and assistant → assistant, system → system, tool and
// observation → tool, and function_call → an assistant turn calling a tool: its value is the
// JSON of {"name": …, "arguments": …} (or a list of them), and the turn is
// {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": …, "arguments": …}}]}.
//
// Alpaca: {"instruction": …, "input": …, "output": …, "system": …}, input and system
// optional: an optional system turn, a user turn holding the instruction (followed by a blank
// line, "\n\n", and the input when the input is not empty) and an assistant turn holding the
// output.

// Columns names the fields rows are read from, for data whose fields are named otherwise. An
// empty name keeps the format's own: text; prompt and completion; messages (ShareGPT also
// conversations); role and content (ShareGPT from and value); instruction, input, output and
// system.
type Columns struct {
	Text, Prompt, Completion, Messages, Role, Content, Instruction, Input, Output, System string
}

// WithColumns is o reading the fields c names.
func (o Options) WithColumns(c Columns) Options {
	for _, f := range []struct {
		key  *string
		name string
	}{
		{&o.TextKey, c.Text}, {&o.PromptKey, c.Prompt}, {&o.CompletionKey, c.Completion}, {&o.ChatKey, c.Messages},
		{&o.RoleKey, c.Role}, {&o.ContentKey, c.Content}, {&o.InstructionKey, c.Instruction},
		{&o.InputKey, c.Input}, {&o.OutputKey, c.Output}, {&o.SystemKey, c.System},
	} {
		if f.name != "" {
			*f.key = f.name
		}
	}
	return o
}

// keysOnly is o without the format and the masking: the names rows are read through.
func (o Options) keysOnly() Options {
	return Options{TextKey: o.TextKey, PromptKey: o.PromptKey, CompletionKey: o.CompletionKey, ChatKey: o.ChatKey,
		RoleKey: o.RoleKey, ContentKey: o.ContentKey, InstructionKey: o.InstructionKey, InputKey: o.InputKey,
		OutputKey: o.OutputKey, SystemKey: o.SystemKey}
}

// or is name, or def when name is empty.
func or(name, def string) string {
	if name == "" {
		return def
	}
	return name
}

// conversationsKey is ShareGPT's own name of the list, read when the messages column is not renamed.
const conversationsKey = "conversations"

// ShareGPTSpeakers are the "from" values a ShareGPT row may use.
var ShareGPTSpeakers = []string{"system", "human", "user", "gpt", "assistant", "tool", "observation", "function_call"}

var shareGPTRoles = map[string]string{
	"system": "system", "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
	"tool": "tool", "observation": "tool", "function_call": "assistant",
}

// rendered is the format a row of f is tokenized as once converted.
func (f Format) rendered() Format {
	if f == FormatShareGPT || f == FormatAlpaca {
		return FormatChat
	}
	return f
}

// listKey is the key of the row's message list: the messages column, or ShareGPT's
// conversations when that column keeps its name; "" when the row has neither.
func listKey(row *tokenizer.Object, opts Options) string {
	if _, ok := row.Get(opts.ChatKey); ok {
		return opts.ChatKey
	}
	if _, ok := row.Get(conversationsKey); ok && opts.ChatKey == "messages" {
		return conversationsKey
	}
	return ""
}

// shareGPTKey is the name a ShareGPT row's list is looked for under, for errors.
func shareGPTKey(opts Options) string {
	if opts.ChatKey == "messages" {
		return conversationsKey
	}
	return opts.ChatKey
}

// detectOther finds ShareGPT and Alpaca rows, which mlx-lm does not read; ok is false when the
// row is left to mlx-lm's rules. A row mlx-lm reads is read as mlx-lm reads it: prompt and
// completion come first, and a text field wins over Alpaca's fields.
func detectOther(first *tokenizer.Object, opts Options) (Format, bool) {
	has := func(key string) bool { _, ok := first.Get(key); return ok }
	if has(opts.PromptKey) && has(opts.CompletionKey) {
		return 0, false
	}
	if key := listKey(first, opts); key != "" {
		if key == conversationsKey || isShareGPTList(first, key, opts) {
			return FormatShareGPT, true
		}
		return 0, false
	}
	if has(or(opts.InstructionKey, "instruction")) && has(or(opts.OutputKey, "output")) && !has(opts.TextKey) {
		return FormatAlpaca, true
	}
	return 0, false
}

// isShareGPTList: the first message names its speaker in "from" (or a role column named
// "from"), not in "role".
func isShareGPTList(row *tokenizer.Object, key string, opts Options) bool {
	v, _ := row.Get(key)
	list, _ := v.([]any)
	if len(list) == 0 {
		return false
	}
	m, ok := list[0].(*tokenizer.Object)
	if !ok {
		return false
	}
	if opts.RoleKey != "" {
		return opts.RoleKey == "from"
	}
	_, hasFrom := m.Get("from")
	_, hasRole := m.Get("role")
	return hasFrom && !hasRole
}

// checkNamed checks a first row against format: sharegpt or alpaca, which name their fields
// rather than being told apart from the others; handled is false for other formats.
func checkNamed(first *tokenizer.Object, opts Options) (f Format, handled bool, err error) {
	has := func(key string) bool { _, ok := first.Get(key); return ok }
	switch opts.Format {
	case "sharegpt":
		if listKey(first, opts) == "" {
			key := shareGPTKey(opts)
			return 0, true, fmt.Errorf("the row has no %q, but the data stage says format: sharegpt, which expects {%q: [{\"from\": …, \"value\": …}, …]}", key, key)
		}
		return FormatShareGPT, true, nil
	case "alpaca":
		in, out := or(opts.InstructionKey, "instruction"), or(opts.OutputKey, "output")
		if !has(in) || !has(out) {
			return 0, true, fmt.Errorf("the row lacks %q or %q, but the data stage says format: alpaca, which expects {%q: …, %q: …}", in, out, in, out)
		}
		return FormatAlpaca, true, nil
	}
	return 0, false, nil
}

// chatRow turns a parsed row of format f into the row the tokenizer reads: ShareGPT and
// Alpaca rows into messages rows, and messages whose role and content fields are renamed
// into role and content. Other rows are returned as they are.
func chatRow(row *tokenizer.Object, f Format, opts Options) (*tokenizer.Object, error) {
	switch f {
	case FormatShareGPT:
		return shareGPTRow(row, opts)
	case FormatAlpaca:
		return alpacaRow(row, opts)
	case FormatChat:
		if or(opts.RoleKey, "role") != "role" || or(opts.ContentKey, "content") != "content" {
			return renamedChatRow(row, opts)
		}
	}
	return row, nil
}

// messageList reads the row's list of message objects under key.
func messageList(row *tokenizer.Object, key string) ([]*tokenizer.Object, error) {
	v, ok := row.Get(key)
	if !ok {
		return nil, fmt.Errorf("missing key %q", key)
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%q must be an array of messages, found %s", key, jsonKind(v))
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("%q is empty", key)
	}
	out := make([]*tokenizer.Object, len(list))
	for i, item := range list {
		obj, ok := item.(*tokenizer.Object)
		if !ok {
			return nil, fmt.Errorf("%s[%d] must be an object, found %s", key, i, jsonKind(item))
		}
		out[i] = obj
	}
	return out, nil
}

// messageString reads a message's string field; where is "messages[2]".
func messageString(m *tokenizer.Object, where, key string) (string, error) {
	v, ok := m.Get(key)
	if !ok {
		return "", fmt.Errorf("%s: missing key %q", where, key)
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%s.%s must be a string, found %s", where, key, jsonKind(v))
	}
	return s, nil
}

// renamedChatRow is a messages row read through renamed role and content fields: the same
// row with each message's fields under role and content.
func renamedChatRow(row *tokenizer.Object, opts Options) (*tokenizer.Object, error) {
	roleKey, contentKey := or(opts.RoleKey, "role"), or(opts.ContentKey, "content")
	list, err := messageList(row, opts.ChatKey)
	if err != nil {
		return nil, err
	}
	messages := make([]any, len(list))
	for i, m := range list {
		where := fmt.Sprintf("%s[%d]", opts.ChatKey, i)
		role, err := messageString(m, where, roleKey)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(Roles, role) {
			hint := ""
			if _, ok := shareGPTRoles[role]; ok {
				hint = "; for ShareGPT's speakers say format: sharegpt"
			}
			return nil, fmt.Errorf("%s.%s: unknown role %q (roles: %s)%s", where, roleKey, role, strings.Join(Roles, ", "), hint)
		}
		out := newObject()
		out.Set("role", role)
		if v, ok := m.Get(contentKey); ok {
			out.Set("content", v)
		}
		for _, k := range m.Keys {
			if k != roleKey && k != contentKey && k != "role" && k != "content" {
				out.Set(k, m.Values[k])
			}
		}
		messages[i] = out
	}
	converted := newObject()
	for _, k := range row.Keys {
		converted.Set(k, row.Values[k])
	}
	converted.Set(opts.ChatKey, messages)
	return converted, nil
}

// shareGPTRow converts a ShareGPT row (see the top of this file).
func shareGPTRow(row *tokenizer.Object, opts Options) (*tokenizer.Object, error) {
	key := listKey(row, opts)
	if key == "" {
		key = shareGPTKey(opts) // for the error
	}
	if v, ok := row.Get(key); ok && v == nil {
		return nil, fmt.Errorf("%q is null: a ShareGPT row needs a list of turns", key)
	}
	list, err := messageList(row, key)
	if err != nil {
		return nil, err
	}
	var messages []any
	system, err := optionalString(row, or(opts.SystemKey, "system"))
	if err != nil {
		return nil, err
	}
	if system != "" {
		messages = append(messages, message("system", system))
	}
	for i, m := range list {
		where := fmt.Sprintf("%s[%d]", key, i)
		roleKey, contentKey := or(opts.RoleKey, "from"), or(opts.ContentKey, "value")
		if _, ok := m.Get(roleKey); !ok && opts.RoleKey == "" {
			if _, ok := m.Get("role"); ok { // a turn written as a chat message
				roleKey, contentKey = "role", or(opts.ContentKey, "content")
			}
		}
		from, err := messageString(m, where, roleKey)
		if err != nil {
			return nil, err
		}
		role, ok := shareGPTRoles[from]
		if !ok {
			return nil, fmt.Errorf("%s.%s: unknown speaker %q (ShareGPT speakers: %s)", where, roleKey, from, strings.Join(ShareGPTSpeakers, ", "))
		}
		value, err := messageString(m, where, contentKey)
		if err != nil {
			return nil, err
		}
		if role == "system" && system != "" {
			return nil, fmt.Errorf("%s is a system turn, and the row has a %q prompt too: keep one", where, or(opts.SystemKey, "system"))
		}
		if from != "function_call" {
			messages = append(messages, message(role, value))
			continue
		}
		calls, err := toolCalls(value)
		if err != nil {
			return nil, fmt.Errorf("%s: function_call: %v", where, err)
		}
		call := message("assistant", "")
		call.Set("tool_calls", calls)
		messages = append(messages, call)
	}
	out := newObject()
	out.Set(opts.ChatKey, messages)
	tools, err := shareGPTTools(row)
	if err != nil {
		return nil, err
	}
	if tools != nil {
		out.Set("tools", tools)
	}
	return out, nil
}

// toolCalls reads a function_call turn's value: the JSON of one call {"name": …,
// "arguments": …} or of a list of them.
func toolCalls(value string) ([]any, error) {
	v, err := tokenizer.ParseJSON([]byte(value))
	if err != nil {
		return nil, errors.New(`the value must be the JSON of {"name": …, "arguments": …} or a list of them`)
	}
	list, ok := v.([]any)
	if !ok {
		list = []any{v}
	}
	if len(list) == 0 {
		return nil, errors.New("the value is an empty list of calls")
	}
	calls := make([]any, len(list))
	for i, item := range list {
		obj, ok := item.(*tokenizer.Object)
		if !ok {
			return nil, fmt.Errorf("call %d must be an object, found %s", i, jsonKind(item))
		}
		name, ok := obj.Values["name"].(string)
		if !ok {
			return nil, fmt.Errorf("call %d: \"name\" must be a string", i)
		}
		args, ok := obj.Get("arguments")
		if !ok {
			return nil, fmt.Errorf("call %d: missing key \"arguments\"", i)
		}
		function := newObject()
		function.Set("name", name)
		function.Set("arguments", args)
		call := newObject()
		call.Set("type", "function")
		call.Set("function", function)
		calls[i] = call
	}
	return calls, nil
}

// shareGPTTools reads "tools": a list, the JSON text of one, or absent (null or "" too).
func shareGPTTools(row *tokenizer.Object) ([]any, error) {
	v, ok := row.Get("tools")
	if !ok || v == nil || v == "" {
		return nil, nil
	}
	if s, ok := v.(string); ok {
		parsed, err := tokenizer.ParseJSON([]byte(s))
		if err != nil {
			return nil, errors.New(`"tools" is a string that is not the JSON of a list of tools`)
		}
		v = parsed
	}
	tools, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("\"tools\" must be an array, found %s", jsonKind(v))
	}
	return tools, nil
}

// alpacaRow converts an Alpaca row (see the top of this file).
func alpacaRow(row *tokenizer.Object, opts Options) (*tokenizer.Object, error) {
	instruction, err := stringField(row, or(opts.InstructionKey, "instruction"))
	if err != nil {
		return nil, err
	}
	output, err := stringField(row, or(opts.OutputKey, "output"))
	if err != nil {
		return nil, err
	}
	input, err := optionalString(row, or(opts.InputKey, "input"))
	if err != nil {
		return nil, err
	}
	system, err := optionalString(row, or(opts.SystemKey, "system"))
	if err != nil {
		return nil, err
	}
	var messages []any
	if system != "" {
		messages = append(messages, message("system", system))
	}
	prompt := instruction
	if input != "" {
		prompt += "\n\n" + input
	}
	messages = append(messages, message("user", prompt), message("assistant", output))
	out := newObject()
	out.Set(opts.ChatKey, messages)
	return out, nil
}

// optionalString reads a string field that may be absent or null ("" then).
func optionalString(row *tokenizer.Object, key string) (string, error) {
	v, ok := row.Get(key)
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%q must be a string, found %s", key, jsonKind(v))
	}
	return s, nil
}

func message(role, content string) *tokenizer.Object {
	m := newObject()
	m.Set("role", role)
	m.Set("content", content)
	return m
}

func newObject() *tokenizer.Object { return &tokenizer.Object{Values: map[string]any{}} }
