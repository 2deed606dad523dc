package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
)

// magic opens every GGUF file: "GGUF" read as a little-endian uint32.
const magic = 0x46554747

// defaultAlignment applies when general.alignment is absent.
const defaultAlignment = 32

// Limits that keep a corrupt header from asking for absurd allocations.
const (
	maxDims       = 4
	maxNameLength = 1 << 16
	// maxArrayDepth bounds arrays of arrays (llama.cpp writes none deeper than 2): the reader
	// recurses once per level, so a file nesting millions would overflow the stack.
	maxArrayDepth = 8
)

// TensorInfo describes one tensor. Dims are in GGML order (fastest-varying first); Shape
// gives the row-major (numpy) order.
type TensorInfo struct {
	Name   string
	Dims   []uint64
	Type   TensorType
	Offset uint64 // from the start of the data section
}

// Shape is the row-major shape: the GGML dims reversed.
func (t TensorInfo) Shape() []int {
	s := make([]int, len(t.Dims))
	for i, d := range t.Dims {
		s[len(t.Dims)-1-i] = int(d)
	}
	return s
}

// Elements is the number of weights.
func (t TensorInfo) Elements() uint64 {
	n := uint64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// Size is the number of bytes the tensor's data takes.
func (t TensorInfo) Size() uint64 {
	return t.Elements() / uint64(t.Type.BlockSize()) * uint64(t.Type.TypeSize())
}

// File is an open GGUF file: its header is parsed, tensor data is read on demand.
type File struct {
	Path       string
	Version    uint32
	Metadata   *Metadata
	Tensors    []TensorInfo
	Alignment  uint64
	dataOffset uint64
	f          *os.File
	byName     map[string]int
}

// FormatError is a malformed file, with the byte offset where the problem was found.
type FormatError struct {
	File    string
	Offset  int64
	Problem string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("%s: offset %d: %s", e.File, e.Offset, e.Problem)
}

// TensorError is a problem with one tensor.
type TensorError struct {
	File, Tensor, Problem string
}

func (e *TensorError) Error() string {
	return fmt.Sprintf("%s: tensor %q: %s", e.File, e.Tensor, e.Problem)
}

// Open parses the header of the GGUF file at path. Close it when done.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	g := &File{Path: path, f: f, byName: map[string]int{}}
	if err := g.parse(f, st.Size()); err != nil {
		f.Close()
		return nil, err
	}
	return g, nil
}

// Close releases the file.
func (g *File) Close() error { return g.f.Close() }

// Tensor returns the info of the named tensor.
func (g *File) Tensor(name string) (TensorInfo, bool) {
	i, ok := g.byName[name]
	if !ok {
		return TensorInfo{}, false
	}
	return g.Tensors[i], true
}

// headerReader reads little-endian values and knows its offset, for error messages.
type headerReader struct {
	r    *bufio.Reader
	off  int64
	size int64
	file string
	err  error
}

func (h *headerReader) fail(at int64, format string, args ...any) {
	if h.err == nil {
		h.err = &FormatError{File: h.file, Offset: at, Problem: fmt.Sprintf(format, args...)}
	}
}

func (h *headerReader) bytes(n int) []byte {
	if h.err != nil {
		return nil
	}
	if int64(n) > h.size-h.off {
		h.fail(h.off, "unexpected end of file: %d bytes needed, %d left", n, h.size-h.off)
		return nil
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(h.r, b); err != nil {
		h.fail(h.off, "read: %v", err)
		return nil
	}
	h.off += int64(n)
	return b
}

func (h *headerReader) u8() uint8 {
	if b := h.bytes(1); b != nil {
		return b[0]
	}
	return 0
}

func (h *headerReader) u16() uint16 {
	if b := h.bytes(2); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

func (h *headerReader) u32() uint32 {
	if b := h.bytes(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (h *headerReader) u64() uint64 {
	if b := h.bytes(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (h *headerReader) str() string {
	at := h.off
	n := h.u64()
	if h.err != nil {
		return ""
	}
	if n > uint64(h.size-h.off) {
		h.fail(at, "string of %d bytes runs past the end of the file", n)
		return ""
	}
	return string(h.bytes(int(n)))
}

// count reads an element count and checks it could fit in the rest of the file at
// minBytes each.
func (h *headerReader) count(what string, minBytes int64) int {
	at := h.off
	n := h.u64()
	if h.err != nil {
		return 0
	}
	if n > uint64(h.size-h.off)/uint64(minBytes) {
		h.fail(at, "%s count %d cannot fit in the file", what, n)
		return 0
	}
	return int(n)
}

func (g *File) parse(r io.Reader, size int64) error {
	h := &headerReader{r: bufio.NewReaderSize(r, int(min(size, 1<<20))), size: size, file: g.Path}
	if m := h.u32(); h.err == nil && m != magic {
		h.fail(0, "not a GGUF file (magic %#08x)", m)
	}
	g.Version = h.u32()
	if h.err == nil && g.Version != 2 && g.Version != 3 {
		h.fail(4, "unsupported GGUF version %d (supported: 2, 3)", g.Version)
	}
	nTensors := h.count("tensor", 8+4+8+4)
	nKV := h.count("metadata", 8+4)
	g.Metadata = &Metadata{file: g.Path, values: map[string]Value{}}
	for i := 0; i < nKV && h.err == nil; i++ {
		at := h.off
		key := h.str()
		v := h.value(ValueType(h.u32()), key)
		if h.err != nil {
			break
		}
		if g.Metadata.Has(key) {
			h.fail(at, "metadata key %q appears twice", key)
			break
		}
		g.Metadata.keys = append(g.Metadata.keys, key)
		g.Metadata.values[key] = v
	}
	for i := 0; i < nTensors && h.err == nil; i++ {
		g.readTensorInfo(h)
	}
	if h.err != nil {
		return h.err
	}
	g.Alignment = defaultAlignment
	if g.Metadata.Has("general.alignment") {
		a, err := g.Metadata.Uint("general.alignment")
		if err != nil {
			return err
		}
		if a == 0 || a&(a-1) != 0 {
			return g.Metadata.keyError("general.alignment", "%d is not a power of two", a)
		}
		g.Alignment = a
	}
	g.dataOffset = alignUp(uint64(h.off), g.Alignment)
	return g.checkTensors(uint64(size))
}

func alignUp(n, a uint64) uint64 { return (n + a - 1) / a * a }

func (g *File) readTensorInfo(h *headerReader) {
	at := h.off
	name := h.str()
	nDims := h.u32()
	if h.err != nil {
		return
	}
	if len(name) > maxNameLength {
		h.fail(at, "tensor name of %d bytes", len(name))
		return
	}
	if nDims == 0 || nDims > maxDims {
		h.fail(at, "tensor %q has %d dimensions (1 to %d)", name, nDims, maxDims)
		return
	}
	dims := make([]uint64, nDims)
	for d := range dims {
		dims[d] = h.u64()
	}
	typ := TensorType(h.u32())
	offset := h.u64()
	if h.err != nil {
		return
	}
	if _, dup := g.byName[name]; dup {
		h.fail(at, "tensor %q appears twice", name)
		return
	}
	g.byName[name] = len(g.Tensors)
	g.Tensors = append(g.Tensors, TensorInfo{Name: name, Dims: dims, Type: typ, Offset: offset})
}

// checkTensors validates every tensor's type, shape and extent against the file.
func (g *File) checkTensors(fileSize uint64) error {
	var errs []error
	for _, t := range g.Tensors {
		fail := func(format string, args ...any) {
			errs = append(errs, &TensorError{File: g.Path, Tensor: t.Name, Problem: fmt.Sprintf(format, args...)})
		}
		if !t.Type.known() {
			fail("unknown tensor type %d", uint32(t.Type))
			continue
		}
		n := uint64(1)
		overflow := false
		for _, d := range t.Dims {
			if d == 0 || d > math.MaxInt32 {
				overflow = true
				break
			}
			n *= d
			if n > 1<<40 {
				overflow = true
				break
			}
		}
		if overflow {
			fail("bad dimensions %v", t.Dims)
			continue
		}
		if t.Dims[0]%uint64(t.Type.BlockSize()) != 0 {
			fail("first dimension %d is not a multiple of the %s block size %d", t.Dims[0], t.Type, t.Type.BlockSize())
			continue
		}
		if t.Offset%g.Alignment != 0 {
			fail("data offset %d is not aligned to %d", t.Offset, g.Alignment)
			continue
		}
		if end := g.dataOffset + t.Offset + t.Size(); end > fileSize || end < t.Offset {
			fail("data at offset %d (%d bytes) runs past the end of the file (%d bytes)", g.dataOffset+t.Offset, t.Size(), fileSize)
		}
	}
	return errors.Join(errs...)
}

// value reads a metadata value of type t.
func (h *headerReader) value(t ValueType, key string) Value {
	at := h.off
	switch t {
	case TypeUint8:
		return Value{Type: t, V: h.u8()}
	case TypeInt8:
		return Value{Type: t, V: int8(h.u8())}
	case TypeUint16:
		return Value{Type: t, V: h.u16()}
	case TypeInt16:
		return Value{Type: t, V: int16(h.u16())}
	case TypeUint32:
		return Value{Type: t, V: h.u32()}
	case TypeInt32:
		return Value{Type: t, V: int32(h.u32())}
	case TypeFloat32:
		return Value{Type: t, V: math.Float32frombits(h.u32())}
	case TypeBool:
		b := h.u8()
		if b > 1 {
			h.fail(at, "metadata key %q: bool value %d", key, b)
		}
		return Value{Type: t, V: b == 1}
	case TypeString:
		return Value{Type: t, V: h.str()}
	case TypeUint64:
		return Value{Type: t, V: h.u64()}
	case TypeInt64:
		return Value{Type: t, V: int64(h.u64())}
	case TypeFloat64:
		return Value{Type: t, V: math.Float64frombits(h.u64())}
	case TypeArray:
		return h.array(key, 1)
	}
	h.fail(at, "metadata key %q: unknown value type %d", key, uint32(t))
	return Value{}
}

func (h *headerReader) array(key string, depth int) Value {
	at := h.off
	elem := ValueType(h.u32())
	if h.err != nil {
		return Value{}
	}
	if elem == TypeArray && depth >= maxArrayDepth {
		h.fail(at, "metadata key %q: arrays nested more than %d deep", key, maxArrayDepth)
		return Value{}
	}
	minBytes := map[ValueType]int64{TypeUint8: 1, TypeInt8: 1, TypeBool: 1, TypeUint16: 2, TypeInt16: 2,
		TypeUint32: 4, TypeInt32: 4, TypeFloat32: 4, TypeUint64: 8, TypeInt64: 8, TypeFloat64: 8,
		TypeString: 8, TypeArray: 12}[elem]
	if minBytes == 0 {
		h.fail(at, "metadata key %q: unknown array element type %d", key, uint32(elem))
		return Value{}
	}
	n := h.count("array element", minBytes)
	v := Value{Type: TypeArray, Elem: elem}
	switch elem {
	case TypeString:
		s := make([]string, n)
		for i := range s {
			s[i] = h.str()
		}
		v.V = s
	case TypeUint8:
		v.V = readArray(h, n, func() uint8 { return h.u8() })
	case TypeInt8:
		v.V = readArray(h, n, func() int8 { return int8(h.u8()) })
	case TypeBool:
		v.V = readArray(h, n, func() bool { return h.u8() != 0 })
	case TypeUint16:
		v.V = readArray(h, n, func() uint16 { return h.u16() })
	case TypeInt16:
		v.V = readArray(h, n, func() int16 { return int16(h.u16()) })
	case TypeUint32:
		v.V = readArray(h, n, func() uint32 { return h.u32() })
	case TypeInt32:
		v.V = readArray(h, n, func() int32 { return int32(h.u32()) })
	case TypeFloat32:
		v.V = readArray(h, n, func() float32 { return math.Float32frombits(h.u32()) })
	case TypeUint64:
		v.V = readArray(h, n, func() uint64 { return h.u64() })
	case TypeInt64:
		v.V = readArray(h, n, func() int64 { return int64(h.u64()) })
	case TypeFloat64:
		v.V = readArray(h, n, func() float64 { return math.Float64frombits(h.u64()) })
	case TypeArray:
		v.V = readArray(h, n, func() Value { return h.array(key, depth+1) })
	}
	return v
}

func readArray[T any](h *headerReader, n int, read func() T) []T {
	out := make([]T, n)
	for i := range out {
		if h.err != nil {
			return nil
		}
		out[i] = read()
	}
	return out
}

// ReadRaw returns the stored bytes of a tensor.
func (g *File) ReadRaw(t TensorInfo) ([]byte, error) {
	buf := make([]byte, t.Size())
	if _, err := g.f.ReadAt(buf, int64(g.dataOffset+t.Offset)); err != nil {
		return nil, &TensorError{File: g.Path, Tensor: t.Name, Problem: fmt.Sprintf("read data at offset %d: %v", g.dataOffset+t.Offset, err)}
	}
	return buf, nil
}

// ReadFloat32 reads a tensor and dequantizes it to float32, row-major.
func (g *File) ReadFloat32(t TensorInfo) ([]float32, error) {
	raw, err := g.ReadRaw(t)
	if err != nil {
		return nil, err
	}
	out, err := Dequantize(t.Type, raw, int(t.Elements()))
	if err != nil {
		return nil, &TensorError{File: g.Path, Tensor: t.Name, Problem: err.Error()}
	}
	return out, nil
}
