package main

import (
	"flag"
	"fmt"
	"slices"
	"strings"

	"github.com/yai-dev/yai/internal/data"
)

var dataFormats = []string{"auto", "text", "completions", "chat", "sharegpt", "alpaca"}

// dataFlags are a data stage's format and columns settings, for commands given a data
// directory rather than a run.
type dataFlags struct {
	format, columns string
}

func (d *dataFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&d.format, "format", "auto", "record format: "+strings.Join(dataFormats, ", "))
	fs.StringVar(&d.columns, "columns", "", "renamed record fields as NAME=FIELD,... (names: text, prompt, completion, messages, role, content, instruction, input, output, system), e.g. messages=conversations,role=from,content=value")
}

// read is the format ("" detects it) and the field names the flags ask for.
func (d *dataFlags) read() (string, data.Columns, error) {
	var c data.Columns
	if !slices.Contains(dataFormats, d.format) {
		return "", c, fmt.Errorf("--format %q: want one of %s", d.format, strings.Join(dataFormats, ", "))
	}
	fields := map[string]*string{"text": &c.Text, "prompt": &c.Prompt, "completion": &c.Completion, "messages": &c.Messages,
		"role": &c.Role, "content": &c.Content, "instruction": &c.Instruction, "input": &c.Input, "output": &c.Output, "system": &c.System}
	if d.columns != "" {
		for _, pair := range strings.Split(d.columns, ",") {
			name, field, ok := strings.Cut(strings.TrimSpace(pair), "=")
			dst := fields[name]
			if !ok || dst == nil || field == "" {
				return "", c, fmt.Errorf("--columns %q: want NAME=FIELD pairs, NAME one of text, prompt, completion, messages, role, content, instruction, input, output, system", pair)
			}
			*dst = field
		}
	}
	return strings.TrimPrefix(d.format, "auto"), c, nil
}
