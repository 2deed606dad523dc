package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// jsonError locates a problem inside a JSON file: the file name, a JSON path such as
// $.pre_tokenizer.pretokenizers[0].type, and where possible a line and column.
type jsonError struct {
	File   string
	Path   string
	Line   int
	Column int
	Msg    string
}

func (e *jsonError) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d:%d", e.File, e.Line, e.Column)
	}
	if e.Path != "" {
		return fmt.Sprintf("%s: %s: %s", loc, e.Path, e.Msg)
	}
	return fmt.Sprintf("%s: %s", loc, e.Msg)
}

// lineColumn turns a byte offset into a 1-based line and column.
func lineColumn(data []byte, offset int64) (int, int) {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	before := data[:offset]
	line := bytes.Count(before, []byte("\n")) + 1
	column := int(offset) - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, column
}

// decoder walks one JSON file, remembering its name so every error can be located.
type jsonFile struct {
	name string
	data []byte
}

func (f *jsonFile) errorf(path, format string, args ...any) error {
	return &jsonError{File: f.name, Path: path, Msg: fmt.Sprintf(format, args...)}
}

// decode unmarshals raw (found at path) into v and reports errors with their location.
func (f *jsonFile) decode(raw []byte, path string, v any) error {
	err := json.Unmarshal(raw, v)
	if err == nil {
		return nil
	}
	// Offsets reported by encoding/json are relative to raw; find raw inside the file.
	base := int64(bytes.Index(f.data, raw))
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		e := &jsonError{File: f.name, Msg: syntax.Error()}
		if base >= 0 {
			e.Line, e.Column = lineColumn(f.data, base+max(syntax.Offset-1, 0)) // Offset is just past the bad byte
		}
		if path != "$" {
			e.Path = path
		}
		return e
	case errors.As(err, &typeErr):
		p := path
		if typeErr.Field != "" {
			p = path + "." + typeErr.Field
		}
		e := &jsonError{File: f.name, Path: p, Msg: fmt.Sprintf("expected %s, found JSON %s", typeErr.Type, typeErr.Value)}
		if base >= 0 {
			e.Line, e.Column = lineColumn(f.data, base+typeErr.Offset)
		}
		return e
	default:
		return &jsonError{File: f.name, Path: path, Msg: err.Error()}
	}
}

// isNull reports whether a raw JSON value is absent or null.
func isNull(raw json.RawMessage) bool {
	trimmed := bytes.TrimSpace(raw)
	return len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null"))
}

// componentType reads the "type" field shared by every tokenizer.json component.
func (f *jsonFile) componentType(raw json.RawMessage, path string) (string, error) {
	var head struct {
		Type *string `json:"type"`
	}
	if err := f.decode(raw, path, &head); err != nil {
		return "", err
	}
	if head.Type == nil {
		return "", f.errorf(path, "missing \"type\"")
	}
	return *head.Type, nil
}

// tokenizerJSON is the top level of tokenizer.json; components stay raw until their type is known.
type tokenizerJSON struct {
	AddedTokens   []addedTokenJSON `json:"added_tokens"`
	Normalizer    json.RawMessage  `json:"normalizer"`
	PreTokenizer  json.RawMessage  `json:"pre_tokenizer"`
	Model         json.RawMessage  `json:"model"`
	PostProcessor json.RawMessage  `json:"post_processor"`
	Decoder       json.RawMessage  `json:"decoder"`
}

type addedTokenJSON struct {
	ID         int32  `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

// patternJSON is the {"String": …} or {"Regex": …} pattern of Split and Replace.
type patternJSON struct {
	String *string `json:"String"`
	Regex  *string `json:"Regex"`
}

// replacement reads a Replace step (normalizer or decoder): the string it replaces and what
// with. Regex patterns are not supported.
func (f *jsonFile) replacement(raw []byte, path string) (from, to string, err error) {
	var r struct {
		Pattern patternJSON `json:"pattern"`
		Content string      `json:"content"`
	}
	if err := f.decode(raw, path, &r); err != nil {
		return "", "", err
	}
	if r.Pattern.String == nil {
		return "", "", f.errorf(path+".pattern", "only String patterns are supported in Replace")
	}
	return *r.Pattern.String, r.Content, nil
}

// tokenizerConfigJSON is the part of tokenizer_config.json the tokenizer uses.
type tokenizerConfigJSON struct {
	BOSToken     json.RawMessage `json:"bos_token"`
	EOSToken     json.RawMessage `json:"eos_token"`
	UNKToken     json.RawMessage `json:"unk_token"`
	PADToken     json.RawMessage `json:"pad_token"`
	ChatTemplate json.RawMessage `json:"chat_template"`
	AddBOSToken  *bool           `json:"add_bos_token"`
	AddEOSToken  *bool           `json:"add_eos_token"`
}

// tokenString reads a special token given either as "text" or as {"content": "text", …}.
func (f *jsonFile) tokenString(raw json.RawMessage, path string) (string, bool, error) {
	if isNull(raw) {
		return "", false, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, true, nil
	}
	var obj struct {
		Content *string `json:"content"`
	}
	if err := f.decode(raw, path, &obj); err != nil {
		return "", false, err
	}
	if obj.Content == nil {
		return "", false, f.errorf(path, "expected a string or an object with \"content\"")
	}
	return *obj.Content, true, nil
}
