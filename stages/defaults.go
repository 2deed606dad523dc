package stages

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// ApplyDefaults sets every field of v (a settings struct) that has a `default` tag.
func ApplyDefaults(v reflect.Value, fields []Field) error {
	for _, f := range fields {
		fv := v.FieldByIndex(f.Index)
		if f.Type == Object {
			if err := ApplyDefaults(fv, f.Fields); err != nil {
				return err
			}
			continue
		}
		if f.Default == "" {
			continue
		}
		if err := SetString(fv, f.Type, f.Default); err != nil {
			return fmt.Errorf("default of %s: %w", f.Name, err)
		}
	}
	return nil
}

// SetString parses s as a value of type t into v. Lists are comma-separated.
func SetString(v reflect.Value, t Type, s string) error {
	switch t {
	case String:
		v.SetString(s)
	case Int:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return err
		}
		v.SetInt(n)
	case Float:
		n, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return err
		}
		v.SetFloat(n)
	case Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		v.SetBool(b)
	case Size:
		b, err := ParseBytes(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(b))
	case SizeCap:
		if s == "auto" {
			v.Set(reflect.ValueOf(Limit{Auto: true}))
			return nil
		}
		b, err := ParseBytes(s)
		if err != nil {
			return err
		}
		v.Set(reflect.ValueOf(Limit{Bytes: b}))
	case List:
		parts := strings.Split(s, ",")
		sl := reflect.MakeSlice(v.Type(), len(parts), len(parts))
		et, _ := typeOf(v.Type().Elem())
		for i, p := range parts {
			if err := SetString(sl.Index(i), et, strings.TrimSpace(p)); err != nil {
				return err
			}
		}
		v.Set(sl)
	default:
		return fmt.Errorf("cannot set a %s from text", t)
	}
	return nil
}
