package mlx

import "fmt"

// Dtype is an element type. The values are shared with the shim (to_dtype in shim.cpp).
type Dtype int

const (
	Bool Dtype = iota
	Uint8
	Uint16
	Uint32
	Uint64
	Int8
	Int16
	Int32
	Int64
	Float16
	Float32
	Float64
	BFloat16
	Complex64
)

var dtypeNames = [...]string{"bool", "uint8", "uint16", "uint32", "uint64", "int8", "int16",
	"int32", "int64", "float16", "float32", "float64", "bfloat16", "complex64"}

var dtypeSizes = [...]int{1, 1, 2, 4, 8, 1, 2, 4, 8, 2, 4, 8, 2, 8}

func (d Dtype) String() string {
	if d >= 0 && int(d) < len(dtypeNames) {
		return dtypeNames[d]
	}
	return fmt.Sprintf("dtype(%d)", int(d))
}

// Size is the number of bytes of one element.
func (d Dtype) Size() int { return dtypeSizes[d] }

// IsFloat reports whether d is a floating-point type.
func (d Dtype) IsFloat() bool { return d == Float16 || d == Float32 || d == Float64 || d == BFloat16 }

// ParseDtype maps a name as written in safetensors headers and configs ("F32", "float16",
// "bfloat16", "U32", …) to a Dtype.
func ParseDtype(name string) (Dtype, error) {
	switch name {
	case "BOOL", "bool":
		return Bool, nil
	case "U8", "uint8":
		return Uint8, nil
	case "U16", "uint16":
		return Uint16, nil
	case "U32", "uint32":
		return Uint32, nil
	case "U64", "uint64":
		return Uint64, nil
	case "I8", "int8":
		return Int8, nil
	case "I16", "int16":
		return Int16, nil
	case "I32", "int32":
		return Int32, nil
	case "I64", "int64":
		return Int64, nil
	case "F16", "float16":
		return Float16, nil
	case "F32", "float32":
		return Float32, nil
	case "F64", "float64":
		return Float64, nil
	case "BF16", "bfloat16":
		return BFloat16, nil
	case "C64", "complex64":
		return Complex64, nil
	}
	return 0, fmt.Errorf("unknown dtype %q", name)
}

// Element is a Go type that maps one to one onto an MLX dtype.
type Element interface {
	bool | uint8 | uint16 | uint32 | uint64 | int8 | int16 | int32 | int64 | float32 | float64
}

func dtypeOf[T Element]() Dtype {
	var z T
	switch any(z).(type) {
	case bool:
		return Bool
	case uint8:
		return Uint8
	case uint16:
		return Uint16
	case uint32:
		return Uint32
	case uint64:
		return Uint64
	case int8:
		return Int8
	case int16:
		return Int16
	case int32:
		return Int32
	case int64:
		return Int64
	case float32:
		return Float32
	default:
		return Float64
	}
}
