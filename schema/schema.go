// Package schema generates the JSON Schema of recipe format v1 from the stage registry and the
// recipe's own field specs, so editors can check recipes as they are typed. The generated file
// recipe.v1.json is checked in; `go test ./schema -update` regenerates it.
package schema

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/yai-dev/yai/recipe"
	"github.com/yai-dev/yai/stages"
)

// ID is the schema's $id.
const ID = "https://github.com/yai-dev/yai/schema/recipe.v1.json"

type obj = map[string]any

// sizePattern matches the sizes a recipe may write: 7GB, 7.5GB, 512 MiB, 1000.
const sizePattern = `^[0-9]+(\.[0-9]+)?\s*(B|KB|MB|GB|KiB|MiB|GiB)?$`

// Generate returns the JSON Schema of recipe version 1, indented, with a trailing newline.
func Generate() ([]byte, error) {
	top := object(recipe.RecipeFields())
	props := top["properties"].(obj)
	props["version"] = obj{"const": recipe.Version, "description": "recipe format version; this yai reads 1"}
	props["stages"] = obj{
		"type":        "array",
		"description": "the stages of the run, wired by after: and fired by events and triggers",
		"items":       stageSchema(),
	}
	s := obj{
		"$schema": "https://json-schema.org/draft/2020-12/schema",
		"$id":     ID,
		"title":   "yai recipe, version 1",
	}
	for k, v := range top {
		s[k] = v
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func stageSchema() obj {
	f, _ := stages.Lookup(recipe.RecipeFields(), "stages")
	item := object(f.Fields)
	props := item["properties"].(obj)
	props["kind"] = obj{"enum": stages.KindNames(), "description": "stage kind (see yai stages)"}
	var cases []any
	for _, k := range stages.Kinds() {
		events := make([]string, len(k.Events))
		for i, e := range k.Events {
			events[i] = string(e)
		}
		with := object(k.Fields)
		with["description"] = k.Summary
		cases = append(cases, obj{
			"if":   obj{"properties": obj{"kind": obj{"const": k.Name}}, "required": []string{"kind"}},
			"then": obj{"properties": obj{"with": with, "on": obj{"enum": events}}},
		})
	}
	item["allOf"] = cases
	return item
}

func object(fields []stages.Field) obj {
	props := obj{}
	required := []string{}
	for _, f := range fields {
		props[f.Name] = field(f)
		if f.Required {
			required = append(required, f.Name)
		}
	}
	o := obj{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		o["required"] = required
	}
	return o
}

func field(f stages.Field) obj {
	var s obj
	switch f.Type {
	case stages.List:
		item := scalar(stages.Field{Type: f.Elem, Enum: f.Enum, Min: f.Min, Max: f.Max})
		if f.Elem == stages.Object {
			item = object(f.Fields)
		}
		s = obj{"type": "array", "items": item}
	case stages.Object:
		s = object(f.Fields)
	case stages.Settings:
		s = obj{"type": "object"}
	default:
		s = scalar(f)
	}
	if f.Doc != "" {
		s["description"] = f.Doc
	}
	if d, ok := defaultValue(f); ok {
		s["default"] = d
	}
	return s
}

func scalar(f stages.Field) obj {
	s := obj{}
	switch f.Type {
	case stages.String:
		s["type"] = "string"
	case stages.Int:
		s["type"] = "integer"
	case stages.Float:
		s["type"] = "number"
	case stages.Bool:
		s["type"] = "boolean"
	case stages.Size:
		s["anyOf"] = []any{obj{"type": "integer", "minimum": 0}, obj{"type": "string", "pattern": sizePattern}}
	case stages.SizeCap:
		s["anyOf"] = []any{obj{"type": "integer", "minimum": 0}, obj{"type": "string", "pattern": sizePattern}, obj{"const": "auto"}}
	}
	if len(f.Enum) > 0 {
		s["enum"] = f.Enum
	}
	if f.Min != nil {
		s["minimum"] = *f.Min
	}
	if f.Max != nil {
		s["maximum"] = *f.Max
	}
	return s
}

func defaultValue(f stages.Field) (any, bool) {
	if f.Default == "" {
		return nil, false
	}
	switch f.Type {
	case stages.Int:
		n, err := strconv.ParseInt(f.Default, 10, 64)
		return n, err == nil
	case stages.Float:
		n, err := strconv.ParseFloat(f.Default, 64)
		return n, err == nil
	case stages.Bool:
		b, err := strconv.ParseBool(f.Default)
		return b, err == nil
	case stages.List:
		return strings.Split(f.Default, ","), true
	}
	return f.Default, true
}
