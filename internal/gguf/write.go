package gguf

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// KV is one metadata entry to write. Value is a Go value of a GGUF type: uint8 … float64,
// bool, string, or a slice of one of them ([]string, []int32, []float32, …).
type KV struct {
	Key   string
	Value any
}

// NewTensor is one tensor to write: Dims in GGML order (fastest-varying first), as
// TensorInfo has them.
type NewTensor struct {
	Name string
	Dims []uint64
	Type TensorType
}

// Size is the number of bytes the tensor's data takes.
func (t NewTensor) Size() uint64 {
	return TensorInfo{Dims: t.Dims, Type: t.Type}.Size()
}

// Write writes a GGUF v3 file: the metadata in the order given, the tensor infos, then each
// tensor's data, asked of data in order (it must return exactly Size bytes), aligned to 32
// bytes as llama.cpp and the gguf package align them.
func Write(w io.Writer, kvs []KV, tensors []NewTensor, data func(i int) ([]byte, error)) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	e := &encoder{w: bw}
	e.u32(magic)
	e.u32(3)
	e.u64(uint64(len(tensors)))
	e.u64(uint64(len(kvs)))
	for _, kv := range kvs {
		e.str(kv.Key)
		if err := e.value(kv.Value, true); err != nil {
			return fmt.Errorf("gguf: metadata key %q: %w", kv.Key, err)
		}
	}
	var offset uint64
	for _, t := range tensors {
		if !t.Type.known() || len(t.Dims) == 0 || len(t.Dims) > maxDims || t.Dims[0]%uint64(t.Type.BlockSize()) != 0 {
			return fmt.Errorf("gguf: tensor %q: cannot store dims %v as %s", t.Name, t.Dims, t.Type)
		}
		e.str(t.Name)
		e.u32(uint32(len(t.Dims)))
		for _, d := range t.Dims {
			e.u64(d)
		}
		e.u32(uint32(t.Type))
		e.u64(offset)
		offset = alignUp(offset+t.Size(), defaultAlignment)
	}
	e.pad()
	for i, t := range tensors {
		if e.err != nil {
			break
		}
		b, err := data(i)
		if err != nil {
			return err
		}
		if uint64(len(b)) != t.Size() {
			return fmt.Errorf("gguf: tensor %q: %d bytes of data, want %d", t.Name, len(b), t.Size())
		}
		e.bytes(b)
		e.pad()
	}
	if e.err != nil {
		return e.err
	}
	return bw.Flush()
}

type encoder struct {
	w   *bufio.Writer
	n   uint64
	err error
}

func (e *encoder) bytes(b []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(b)
		e.n += uint64(len(b))
	}
}

func (e *encoder) u32(v uint32) { e.bytes(binary.LittleEndian.AppendUint32(nil, v)) }
func (e *encoder) u64(v uint64) { e.bytes(binary.LittleEndian.AppendUint64(nil, v)) }
func (e *encoder) str(s string) { e.u64(uint64(len(s))); e.bytes([]byte(s)) }
func (e *encoder) pad()         { e.bytes(make([]byte, alignUp(e.n, defaultAlignment)-e.n)) }

// value writes v, preceded by its type tag when tagged (array elements are not tagged).
func (e *encoder) value(v any, tagged bool) error {
	tag := func(t ValueType) {
		if tagged {
			e.u32(uint32(t))
		}
	}
	switch x := v.(type) {
	case uint8:
		tag(TypeUint8)
		e.bytes([]byte{x})
	case int8:
		tag(TypeInt8)
		e.bytes([]byte{byte(x)})
	case uint16:
		tag(TypeUint16)
		e.bytes(binary.LittleEndian.AppendUint16(nil, x))
	case int16:
		tag(TypeInt16)
		e.bytes(binary.LittleEndian.AppendUint16(nil, uint16(x)))
	case uint32:
		tag(TypeUint32)
		e.u32(x)
	case int32:
		tag(TypeInt32)
		e.u32(uint32(x))
	case float32:
		tag(TypeFloat32)
		e.u32(math.Float32bits(x))
	case bool:
		tag(TypeBool)
		b := byte(0)
		if x {
			b = 1
		}
		e.bytes([]byte{b})
	case string:
		tag(TypeString)
		e.str(x)
	case uint64:
		tag(TypeUint64)
		e.u64(x)
	case int64:
		tag(TypeInt64)
		e.u64(uint64(x))
	case float64:
		tag(TypeFloat64)
		e.u64(math.Float64bits(x))
	case []string:
		return array(e, tagged, TypeString, x)
	case []int32:
		return array(e, tagged, TypeInt32, x)
	case []uint32:
		return array(e, tagged, TypeUint32, x)
	case []float32:
		return array(e, tagged, TypeFloat32, x)
	case []int64:
		return array(e, tagged, TypeInt64, x)
	case []bool:
		return array(e, tagged, TypeBool, x)
	default:
		return fmt.Errorf("value of Go type %T has no GGUF type", v)
	}
	return nil
}

func array[T any](e *encoder, tagged bool, elem ValueType, xs []T) error {
	if tagged {
		e.u32(uint32(TypeArray))
	}
	e.u32(uint32(elem))
	e.u64(uint64(len(xs)))
	for _, x := range xs {
		if err := e.value(x, false); err != nil {
			return err
		}
	}
	return nil
}
