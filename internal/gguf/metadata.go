package gguf

import (
	"fmt"
	"math"
)

// ValueType is the type tag of a metadata value.
type ValueType uint32

// The metadata value types of GGUF.
const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

var valueTypeNames = [...]string{"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
	"bool", "string", "array", "uint64", "int64", "float64"}

func (t ValueType) String() string {
	if int(t) < len(valueTypeNames) {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("value type %d", uint32(t))
}

// Value is one metadata value. Scalars hold uint8 … float64, bool or string; arrays hold a
// typed slice ([]string, []int32, []float32, …), or []Value for arrays of arrays.
type Value struct {
	Type ValueType
	// Elem is the element type of an array.
	Elem ValueType
	V    any
}

// Metadata is a file's key-value section, in file order.
type Metadata struct {
	file   string
	keys   []string
	values map[string]Value
}

// Keys lists the keys in file order.
func (m *Metadata) Keys() []string { return m.keys }

// Get returns the value of key.
func (m *Metadata) Get(key string) (Value, bool) {
	v, ok := m.values[key]
	return v, ok
}

// Has reports whether key is present.
func (m *Metadata) Has(key string) bool { _, ok := m.values[key]; return ok }

// KeyError is a problem with one metadata key: missing, or of the wrong type.
type KeyError struct {
	File, Key, Problem string
}

func (e *KeyError) Error() string {
	return fmt.Sprintf("%s: metadata key %q: %s", e.File, e.Key, e.Problem)
}

func (m *Metadata) keyError(key, format string, args ...any) error {
	return &KeyError{File: m.file, Key: key, Problem: fmt.Sprintf(format, args...)}
}

// String returns a string value.
func (m *Metadata) String(key string) (string, error) {
	v, ok := m.values[key]
	if !ok {
		return "", m.keyError(key, "missing")
	}
	s, ok := v.V.(string)
	if !ok {
		return "", m.keyError(key, "is %s, expected a string", v.Type)
	}
	return s, nil
}

// Uint returns a non-negative integer value of any integer type.
func (m *Metadata) Uint(key string) (uint64, error) {
	v, ok := m.values[key]
	if !ok {
		return 0, m.keyError(key, "missing")
	}
	var n int64
	switch x := v.V.(type) {
	case uint8:
		n = int64(x)
	case int8:
		n = int64(x)
	case uint16:
		n = int64(x)
	case int16:
		n = int64(x)
	case uint32:
		n = int64(x)
	case int32:
		n = int64(x)
	case int64:
		n = x
	case uint64:
		if x > math.MaxInt64 {
			return 0, m.keyError(key, "value %d is too large", x)
		}
		n = int64(x)
	default:
		return 0, m.keyError(key, "is %s, expected an integer", v.Type)
	}
	if n < 0 {
		return 0, m.keyError(key, "value %d is negative", n)
	}
	return uint64(n), nil
}

// Int returns an integer value as int, checked to be at most max.
func (m *Metadata) Int(key string, max int) (int, error) {
	n, err := m.Uint(key)
	if err != nil {
		return 0, err
	}
	if n > uint64(max) {
		return 0, m.keyError(key, "value %d is out of range (at most %d)", n, max)
	}
	return int(n), nil
}

// Float returns a float value (float32, float64 or an integer).
func (m *Metadata) Float(key string) (float64, error) {
	v, ok := m.values[key]
	if !ok {
		return 0, m.keyError(key, "missing")
	}
	switch x := v.V.(type) {
	case float32:
		return float64(x), nil
	case float64:
		return x, nil
	}
	n, err := m.Uint(key)
	if err != nil {
		return 0, m.keyError(key, "is %s, expected a number", v.Type)
	}
	return float64(n), nil
}

// Bool returns a bool value.
func (m *Metadata) Bool(key string) (bool, error) {
	v, ok := m.values[key]
	if !ok {
		return false, m.keyError(key, "missing")
	}
	b, ok := v.V.(bool)
	if !ok {
		return false, m.keyError(key, "is %s, expected a bool", v.Type)
	}
	return b, nil
}

// Strings returns an array of strings.
func (m *Metadata) Strings(key string) ([]string, error) {
	v, ok := m.values[key]
	if !ok {
		return nil, m.keyError(key, "missing")
	}
	s, ok := v.V.([]string)
	if !ok {
		return nil, m.keyError(key, "is %s, expected an array of strings", v.describe())
	}
	return s, nil
}

// Ints returns an array of any integer type as int64.
func (m *Metadata) Ints(key string) ([]int64, error) {
	v, ok := m.values[key]
	if !ok {
		return nil, m.keyError(key, "missing")
	}
	var out []int64
	switch x := v.V.(type) {
	case []int32:
		out = make([]int64, len(x))
		for i, n := range x {
			out[i] = int64(n)
		}
	case []uint32:
		out = make([]int64, len(x))
		for i, n := range x {
			out[i] = int64(n)
		}
	case []int8:
		out = make([]int64, len(x))
		for i, n := range x {
			out[i] = int64(n)
		}
	case []uint8:
		out = make([]int64, len(x))
		for i, n := range x {
			out[i] = int64(n)
		}
	case []int64:
		out = x
	default:
		return nil, m.keyError(key, "is %s, expected an array of integers", v.describe())
	}
	return out, nil
}

// Floats returns an array of float32 or float64 as float64.
func (m *Metadata) Floats(key string) ([]float64, error) {
	v, ok := m.values[key]
	if !ok {
		return nil, m.keyError(key, "missing")
	}
	switch x := v.V.(type) {
	case []float32:
		out := make([]float64, len(x))
		for i, f := range x {
			out[i] = float64(f)
		}
		return out, nil
	case []float64:
		return x, nil
	}
	return nil, m.keyError(key, "is %s, expected an array of floats", v.describe())
}

func (v Value) describe() string {
	if v.Type == TypeArray {
		return "an array of " + v.Elem.String()
	}
	return v.Type.String()
}
