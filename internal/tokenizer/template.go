package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nikolalohinski/gonja/v2/builtins"
	"github.com/nikolalohinski/gonja/v2/config"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/loaders"
)

// Message is one chat message: "role", "content" and any other keys ("tool_calls", …).
// Nested JSON objects may be *Object values to keep their key order (see ParseJSON).
type Message map[string]any

// ErrNoChatTemplate is returned by ApplyChatTemplate when the tokenizer has no template.
var ErrNoChatTemplate = errors.New("tokenizer has no chat template")

type chatTemplate struct {
	template *exec.Template
	source   string // where the template came from, for error messages
	// generation: the template marks what the assistant writes with {% generation %}.
	generation bool
}

var generationTag = regexp.MustCompile(`\{%-?\s*generation\s*-?%\}`)

// chatTemplateSource finds the template: chat_template.jinja beside the tokenizer wins over the
// "chat_template" key of tokenizer_config.json (a string, or a list of named templates of
// which "default" is used), as in transformers.
func chatTemplateSource(dir string, f *jsonFile, raw json.RawMessage) (string, error) {
	if data, err := os.ReadFile(filepath.Join(dir, "chat_template.jinja")); err == nil {
		return string(data), nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if isNull(raw) {
		return "", nil
	}
	var text string
	if json.Unmarshal(raw, &text) == nil {
		return text, nil
	}
	var named []struct {
		Name     string `json:"name"`
		Template string `json:"template"`
	}
	if err := f.decode(raw, "$.chat_template", &named); err != nil {
		return "", err
	}
	for _, n := range named {
		if n.Name == "default" {
			return n.Template, nil
		}
	}
	return "", f.errorf("$.chat_template", "no template named \"default\"")
}

const raisedPrefix = "template raised: "

// templateEnvironment mirrors transformers' Jinja environment: Python-compatible tojson,
// raise_exception and strftime_now.
var templateEnvironment = func() *exec.Environment {
	filters := exec.NewFilterSet(map[string]exec.FilterFunction{})
	filters.Update(builtins.Filters)
	_ = filters.Replace("tojson", filterToJSON)
	context := exec.EmptyContext().Update(builtins.GlobalFunctions).Update(builtins.GlobalVariables)
	context.Set("raise_exception", func(message string) (string, error) {
		return "", errors.New(raisedPrefix + message)
	})
	context.Set("strftime_now", func(format string) string {
		return strftime(time.Now(), format)
	})
	return &exec.Environment{
		Context:           context,
		Filters:           filters,
		Tests:             builtins.Tests,
		ControlStructures: templateStructures(),
		Methods:           builtins.Methods,
	}
}()

func newChatTemplate(source, file string) (*chatTemplate, error) {
	if err := checkTemplateNesting(source); err != nil {
		return nil, fmt.Errorf("%s: chat_template: %w", file, err)
	}
	cfg := config.New()
	cfg.TrimBlocks = true
	cfg.LeftStripBlocks = true
	loader, err := loaders.NewMemoryLoader(map[string]string{"/chat_template": source})
	if err != nil {
		return nil, err
	}
	tpl, err := parseTemplate(cfg, loader)
	if err != nil {
		return nil, fmt.Errorf("%s: chat_template: %w", file, err)
	}
	return &chatTemplate{template: tpl, source: file, generation: generationTag.MatchString(source)}, nil
}

// parseTemplate parses a template read from a model directory. The engine panics on some
// input it does not expect; that is the template's error, not a crash of yai. (A stack
// overflow is no panic and cannot be recovered: checkTemplateNesting bounds the depth.)
func parseTemplate(cfg *config.Config, loader loaders.Loader) (tpl *exec.Template, err error) {
	defer func() {
		if r := recover(); r != nil {
			tpl, err = nil, fmt.Errorf("the template engine failed: %v", r)
		}
	}()
	return exec.NewTemplate("/chat_template", cfg, loader, templateEnvironment)
}

// execute renders the template; a panic of the engine (it divides integers by zero without
// a check, for one) is an error of the template, as Python's Jinja raises one. With a
// recorder, the generation blocks' places in the output are recorded.
func (c *chatTemplate) execute(data map[string]any, rec *generationRecorder) (out string, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = "", fmt.Errorf("the template engine failed: %v", r)
		}
	}()
	buf := new(bytes.Buffer)
	if rec != nil {
		rec.out = buf
		data[recorderKey] = rec
	}
	if err := c.template.Execute(buf, exec.NewContext(data)); err != nil {
		return "", err
	}
	return buf.String(), nil
}

// ApplyChatTemplate renders messages (and tools, when not nil) with the tokenizer's chat
// template, as transformers' apply_chat_template(…, tokenize=False) does. Encode the result
// with addSpecialTokens=false, as transformers does when it tokenizes a rendered chat.
func (t *Tokenizer) ApplyChatTemplate(messages []Message, tools []any, addGenerationPrompt bool) (string, error) {
	return t.ApplyChatTemplateVars(messages, tools, addGenerationPrompt, nil)
}

// ApplyChatTemplateVars is ApplyChatTemplate with extra template variables (date_string,
// enable_thinking, …), like the keyword arguments of transformers' apply_chat_template.
func (t *Tokenizer) ApplyChatTemplateVars(messages []Message, tools []any, addGenerationPrompt bool, vars map[string]any) (string, error) {
	return t.render(messages, tools, addGenerationPrompt, vars, nil)
}

// render is ApplyChatTemplateVars recording into rec when it is not nil.
func (t *Tokenizer) render(messages []Message, tools []any, addGenerationPrompt bool, vars map[string]any, rec *generationRecorder) (string, error) {
	if t.chat == nil {
		return "", ErrNoChatTemplate
	}
	data := map[string]any{}
	for k, v := range t.specialTokens {
		data[k] = v
	}
	list := make([]any, len(messages))
	for i, m := range messages {
		list[i] = templateValue(map[string]any(m))
	}
	data["messages"] = list
	if tools != nil {
		data["tools"] = templateValue(tools)
	} else {
		data["tools"] = nil
	}
	data["add_generation_prompt"] = addGenerationPrompt
	for k, v := range vars {
		data[k] = templateValue(v)
	}
	out, err := t.chat.execute(data, rec)
	if err != nil {
		// The engine wraps errors once per enclosing block; keep only raise_exception's message.
		if _, raised, ok := strings.Cut(err.Error(), raisedPrefix); ok {
			return "", fmt.Errorf("%s: chat_template raised: %s", t.chat.source, raised)
		}
		return "", fmt.Errorf("%s: chat_template: %w", t.chat.source, err)
	}
	return out, nil
}

// templateValue converts decoded JSON into values the template engine understands: objects
// become ordered dicts (a plain map's keys are sorted), numbers int64 or float64.
func templateValue(v any) any {
	switch x := v.(type) {
	case *Object:
		dict := exec.NewDict()
		for _, k := range x.Keys {
			dict.Pairs = append(dict.Pairs, &exec.Pair{Key: exec.AsValue(k), Value: exec.AsValue(templateValue(x.Values[k]))})
		}
		return dict
	case Message:
		return templateValue(map[string]any(x))
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		dict := exec.NewDict()
		for _, k := range keys {
			dict.Pairs = append(dict.Pairs, &exec.Pair{Key: exec.AsValue(k), Value: exec.AsValue(templateValue(x[k]))})
		}
		return dict
	case []any:
		out := make([]any, len(x))
		for i, item := range x {
			out[i] = templateValue(item)
		}
		return out
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i
		}
		f, _ := strconv.ParseFloat(string(x), 64)
		return f
	case int32:
		return int64(x)
	}
	return v
}

// plainValue converts a template value back to Go values pythonJSON can print, keeping order.
func plainValue(v *exec.Value) any {
	if v == nil || v.IsNil() {
		return nil
	}
	switch raw := v.Interface().(type) {
	case *exec.Dict:
		return dictObject(raw)
	case exec.Dict:
		return dictObject(&raw)
	}
	switch {
	case v.IsBool():
		return v.Bool()
	case v.IsInteger():
		return int64(v.Integer())
	case v.IsFloat():
		return v.Float()
	case v.IsString():
		return v.String()
	case v.IsList():
		var out []any
		v.Iterate(func(_, _ int, item, _ *exec.Value) bool {
			out = append(out, plainValue(item))
			return true
		}, func() {})
		if out == nil {
			out = []any{}
		}
		return out
	case v.IsDict():
		obj := &Object{Values: map[string]any{}}
		for _, key := range v.Keys() {
			item, _ := v.GetItem(key.Interface())
			obj.Set(key.String(), plainValue(item))
		}
		return obj
	}
	return v.String()
}

func dictObject(d *exec.Dict) *Object {
	obj := &Object{Values: map[string]any{}}
	for _, pair := range d.Pairs {
		obj.Set(pair.Key.String(), plainValue(pair.Value))
	}
	return obj
}

// filterToJSON is transformers' tojson: json.dumps(x, ensure_ascii=False, indent=indent).
func filterToJSON(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	indent, ensureASCII := -1, false
	for key, value := range params.KwArgs {
		switch key {
		case "indent":
			if !value.IsNil() {
				indent = value.Integer()
			}
		case "ensure_ascii":
			ensureASCII = value.Bool()
		default:
			return exec.AsValue(fmt.Errorf("tojson: unsupported argument %q", key))
		}
	}
	if len(params.Args) > 0 && !params.Args[0].IsNil() {
		indent = params.Args[0].Integer()
	}
	var sb strings.Builder
	if err := pythonJSON(&sb, plainValue(in), indent, 0, ensureASCII); err != nil {
		return exec.AsValue(err)
	}
	return exec.AsSafeValue(sb.String())
}

// strftime implements the C strftime directives chat templates use.
func strftime(t time.Time, format string) string {
	var sb strings.Builder
	for i := 0; i < len(format); i++ {
		if format[i] != '%' || i+1 == len(format) {
			sb.WriteByte(format[i])
			continue
		}
		i++
		switch format[i] {
		case 'd':
			fmt.Fprintf(&sb, "%02d", t.Day())
		case '-':
			if i+1 < len(format) && format[i+1] == 'd' {
				i++
				fmt.Fprintf(&sb, "%d", t.Day())
			}
		case 'm':
			fmt.Fprintf(&sb, "%02d", int(t.Month()))
		case 'Y':
			fmt.Fprintf(&sb, "%d", t.Year())
		case 'y':
			fmt.Fprintf(&sb, "%02d", t.Year()%100)
		case 'b':
			sb.WriteString(t.Format("Jan"))
		case 'B':
			sb.WriteString(t.Format("January"))
		case 'a':
			sb.WriteString(t.Format("Mon"))
		case 'A':
			sb.WriteString(t.Format("Monday"))
		case 'H':
			fmt.Fprintf(&sb, "%02d", t.Hour())
		case 'M':
			fmt.Fprintf(&sb, "%02d", t.Minute())
		case 'S':
			fmt.Fprintf(&sb, "%02d", t.Second())
		case 'j':
			fmt.Fprintf(&sb, "%03d", t.YearDay())
		case '%':
			sb.WriteByte('%')
		default:
			sb.WriteByte('%')
			sb.WriteByte(format[i])
		}
	}
	return sb.String()
}
