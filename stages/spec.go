package stages

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/yai-dev/yai/stages/stage"
)

// Type is the kind of value a settings field holds, as lint, docs and the JSON Schema see it.
type Type string

const (
	String  Type = "string"
	Int     Type = "integer"
	Float   Type = "number"
	Bool    Type = "boolean"
	Size    Type = "size"      // Bytes: 7GB, 512MiB or an integer
	SizeCap Type = "size|auto" // Limit: a size or `auto`
	List    Type = "list"      // of Elem
	Object  Type = "object"    // with Fields
	// Settings is a stage's `with:`: typed by the stage's kind, so decoded separately.
	Settings Type = "settings"
)

// Field describes one settings key. It is derived from struct tags:
//
//	Rank int `yaml:"rank" default:"16" min:"1" max:"512" doc:"LoRA rank"`
//
// Other tags: `enum:"a,b"` (for lists: allowed items), `required:"true"`. Two enums name the
// trigger figures instead of spelling them out: `enum:"@figures"` (every figure) and
// `enum:"@memory-figures"` (the measured memory figures), so settings that list figures
// always agree with the environment triggers see.
type Field struct {
	Name     string
	Type     Type
	Elem     Type // item type of a List
	Default  string
	Min, Max *float64
	Enum     []string
	Doc      string
	Required bool
	// ResumeSafe (tag `resume:"safe"`): changing this setting on resume cannot change the
	// math already done, even in a kind whose other settings can.
	ResumeSafe bool
	// Figures: the values are trigger figures (enum @figures or @memory-figures).
	Figures bool
	Fields  []Field // of an Object
	Index   []int   // struct field index, for decoding
}

var (
	bytesType = reflect.TypeFor[Bytes]()
	limitType = reflect.TypeFor[Limit]()
)

// FieldsOf derives the field specs of a settings struct type. It panics on a type it cannot
// describe: that is a programming error caught by the registry's tests.
func FieldsOf(t reflect.Type) []Field {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []Field
	for i := range t.NumField() {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !sf.IsExported() {
			continue
		}
		f := Field{
			Name:       name,
			Default:    sf.Tag.Get("default"),
			Doc:        sf.Tag.Get("doc"),
			Required:   sf.Tag.Get("required") == "true",
			ResumeSafe: sf.Tag.Get("resume") == "safe",
			Index:      sf.Index,
		}
		switch e := sf.Tag.Get("enum"); e {
		case "":
		case "@figures":
			f.Enum, f.Figures = stage.FigureNames(), true
		case "@memory-figures":
			f.Enum, f.Figures = stage.MemoryFigureNames(), true
		default:
			f.Enum = strings.Split(e, ",")
		}
		f.Min = tagFloat(sf, "min")
		f.Max = tagFloat(sf, "max")
		f.Type, f.Elem = typeOf(sf.Type)
		switch {
		case f.Type == Object:
			f.Fields = FieldsOf(sf.Type)
		case f.Elem == Object:
			f.Fields = FieldsOf(sf.Type.Elem())
		}
		out = append(out, f)
	}
	return out
}

func tagFloat(sf reflect.StructField, key string) *float64 {
	s, ok := sf.Tag.Lookup(key)
	if !ok {
		return nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		panic(fmt.Sprintf("stages: field %s: bad %s tag %q", sf.Name, key, s))
	}
	return &v
}

func typeOf(t reflect.Type) (Type, Type) {
	switch {
	case t == bytesType:
		return Size, ""
	case t == limitType:
		return SizeCap, ""
	}
	switch t.Kind() {
	case reflect.String:
		return String, ""
	case reflect.Int, reflect.Int64:
		return Int, ""
	case reflect.Float64:
		return Float, ""
	case reflect.Bool:
		return Bool, ""
	case reflect.Struct:
		return Object, ""
	case reflect.Interface:
		return Settings, ""
	case reflect.Slice:
		e, _ := typeOf(t.Elem())
		if e == List || e == Settings {
			panic("stages: lists of lists are not supported in settings")
		}
		return List, e
	}
	panic(fmt.Sprintf("stages: unsupported settings type %s", t))
}

// TypeName is how errors and docs name a field's type: "integer", "list of string", …
func (f Field) TypeName() string {
	switch f.Type {
	case List:
		if f.Elem == Object {
			return "list of mappings"
		}
		return "list of " + string(f.Elem) + "s"
	case Object, Settings:
		return "mapping"
	case Size:
		return "size (e.g. 7GB)"
	case SizeCap:
		return "size (e.g. 7GB) or auto"
	}
	return string(f.Type)
}

// Lookup returns the field with the given key.
func Lookup(fields []Field, name string) (Field, bool) {
	for _, f := range fields {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}

// Names lists the keys of fields.
func Names(fields []Field) []string {
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = f.Name
	}
	return out
}
