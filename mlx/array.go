package mlx

/*
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"log/slog"
	"unsafe"
)

// Array is a handle on one MLX array. It owns its native handle until Free.
type Array struct {
	h     C.yai_array
	scope *Scope // the scope that frees it, nil when the caller owns it
}

// wrap takes ownership of a new native handle; an array made on the MLX thread joins the
// innermost open scope.
func wrap(h C.yai_array, onThread bool) *Array {
	live.Add(1)
	a := &Array{h: h}
	if onThread && len(scopes) > 0 {
		s := scopes[len(scopes)-1]
		a.scope = s
		s.arrays = append(s.arrays, a)
	}
	return a
}

// ptr is the native handle, or nil for a nil optional argument. Using a freed array panics.
func (a *Array) ptr() C.yai_array {
	if a == nil {
		return nil
	}
	if a.h == nil {
		panic(&Error{Op: "use", Msg: "array was already freed"})
	}
	return a.h
}

// newArray runs a shim call that produces one array.
func newArray(op string, inputs []*Array, f func(out *C.yai_array) C.int) *Array {
	var out C.yai_array
	onThread := call(op, inputs, func() C.int { return f(&out) })
	return wrap(out, onThread)
}

// Free releases the native handle. Calling it again, or on nil, does nothing.
func (a *Array) Free() {
	if a == nil || a.h == nil {
		return
	}
	h := a.h
	call("free", nil, func() C.int { return C.yai_array_free(h) })
	a.h = nil
	live.Add(-1)
}

// Freed reports whether Free has been called.
func (a *Array) Freed() bool { return a.h == nil }

// Free frees every array given; nil entries are skipped.
func Free(arrays ...*Array) {
	for _, a := range arrays {
		a.Free()
	}
}

// Clone returns a new handle on the same array (no data is copied).
func (a *Array) Clone() *Array {
	return newArray("clone", []*Array{a}, func(out *C.yai_array) C.int { return C.yai_array_clone(a.ptr(), out) })
}

// Shape is the array's shape.
func (a *Array) Shape() []int {
	h := a.ptr()
	n := int(C.yai_array_ndim(h))
	if n == 0 {
		return []int{}
	}
	buf := make([]C.int, n)
	C.yai_array_shape(h, &buf[0])
	out := make([]int, n)
	for i, v := range buf {
		out[i] = int(v)
	}
	return out
}

// Dim is the size of one axis; negative axes count from the end.
func (a *Array) Dim(axis int) int {
	s := a.Shape()
	if axis < 0 {
		axis += len(s)
	}
	return s[axis]
}

// Ndim is the number of axes.
func (a *Array) Ndim() int { return int(C.yai_array_ndim(a.ptr())) }

// Dtype is the element type.
func (a *Array) Dtype() Dtype { return Dtype(C.yai_array_dtype(a.ptr())) }

// Size is the number of elements.
func (a *Array) Size() int { return int(C.yai_array_size(a.ptr())) }

// Nbytes is the size of the array's data in bytes.
func (a *Array) Nbytes() int { return int(C.yai_array_nbytes(a.ptr())) }

func (a *Array) String() string {
	if a == nil || a.h == nil {
		return "array(freed)"
	}
	return fmt.Sprintf("array(%v, %s)", a.Shape(), a.Dtype())
}

// LogValue describes the array in logs without reading its data.
func (a *Array) LogValue() slog.Value {
	if a == nil || a.h == nil {
		return slog.StringValue("freed")
	}
	return slog.GroupValue(slog.Any("shape", a.Shape()), slog.String("dtype", a.Dtype().String()))
}

func cShape(shape []int) (*C.int, C.int) {
	if len(shape) == 0 {
		return nil, 0
	}
	buf := make([]C.int, len(shape))
	for i, v := range shape {
		buf[i] = C.int(v)
	}
	return &buf[0], C.int(len(shape))
}

// FromSlice creates an array of the given shape holding a copy of data. With no shape the
// array is one-dimensional.
func FromSlice[T Element](data []T, shape ...int) *Array {
	return fromBytes(dtypeOf[T](), unsafe.Pointer(unsafe.SliceData(data)), len(data), shape)
}

// FromBits creates a float16 or bfloat16 array from raw 16-bit patterns.
func FromBits(dt Dtype, data []uint16, shape ...int) *Array {
	if dt != Float16 && dt != BFloat16 {
		panic(&Error{Op: "from_bits", Msg: "dtype " + dt.String() + " is not a 16-bit float"})
	}
	return fromBytes(dt, unsafe.Pointer(unsafe.SliceData(data)), len(data), shape)
}

func fromBytes(dt Dtype, data unsafe.Pointer, n int, shape []int) *Array {
	if shape == nil {
		shape = []int{n}
	}
	want := 1
	for _, d := range shape {
		want *= d
	}
	if want != n {
		panic(&Error{Op: "from_slice", Shapes: [][]int{shape}, Msg: fmt.Sprintf("%d elements do not fill shape %v", n, shape)})
	}
	if n == 0 {
		data = nil
	}
	sp, nd := cShape(shape)
	return newArray("from_slice", nil, func(out *C.yai_array) C.int {
		return C.yai_array_from_data(data, sp, nd, C.int(dt), out)
	})
}

// Scalar creates a zero-dimensional array of the given dtype.
func Scalar(v float64, dt Dtype) *Array {
	return newArray("scalar", nil, func(out *C.yai_array) C.int { return C.yai_array_scalar(C.double(v), C.int(dt), out) })
}

// Data evaluates a and copies its elements out. T must match the array's dtype.
func Data[T Element](a *Array) []T {
	if want := dtypeOf[T](); a.Dtype() != want {
		panic(&Error{Op: "data", Shapes: [][]int{a.Shape()}, Msg: fmt.Sprintf("array is %s, asked for %s", a.Dtype(), want)})
	}
	out := make([]T, a.Size())
	readInto(a, unsafe.Pointer(unsafe.SliceData(out)), len(out)*a.Dtype().Size())
	return out
}

// Bits evaluates a float16 or bfloat16 array and copies out its raw 16-bit patterns.
func Bits(a *Array) []uint16 {
	if dt := a.Dtype(); dt != Float16 && dt != BFloat16 {
		panic(&Error{Op: "bits", Shapes: [][]int{a.Shape()}, Msg: "array is " + dt.String()})
	}
	out := make([]uint16, a.Size())
	readInto(a, unsafe.Pointer(unsafe.SliceData(out)), len(out)*2)
	return out
}

func readInto(a *Array, dst unsafe.Pointer, nbytes int) {
	h := a.ptr()
	call("read", []*Array{a}, func() C.int { return C.yai_array_read(h, dst, C.size_t(nbytes)) })
}

// Floats evaluates a and returns its elements converted to float32, whatever its dtype.
func (a *Array) Floats() []float32 {
	if a.Dtype() == Float32 {
		return Data[float32](a)
	}
	f := AsType(a, Float32)
	defer f.Free()
	return Data[float32](f)
}

// Ints evaluates a and returns its elements converted to int32.
func (a *Array) Ints() []int32 {
	if a.Dtype() == Int32 {
		return Data[int32](a)
	}
	f := AsType(a, Int32)
	defer f.Free()
	return Data[int32](f)
}

// Item evaluates a one-element array and returns its value as float64.
func (a *Array) Item() float64 {
	var v C.double
	h := a.ptr()
	call("item", []*Array{a}, func() C.int { return C.yai_array_item(h, &v) })
	return float64(v)
}
