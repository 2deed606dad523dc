package mlx

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import "unsafe"

// Quantization describes how a weight matrix is packed: mode "affine" (scales and biases per
// group), group size 32, 64 or 128, and 2, 3, 4, 5, 6 or 8 bits.
type Quantization struct {
	GroupSize int
	Bits      int
	Mode      string
}

func (q Quantization) mode() string {
	if q.Mode == "" {
		return "affine"
	}
	return q.Mode
}

// Quantize packs w (out, in) along its last axis into uint32 words, with per-group scales
// and biases (biases are nil for modes without them).
func Quantize(w *Array, q Quantization) (wq, scales, biases *Array) {
	mode := C.CString(q.mode())
	defer C.free(unsafe.Pointer(mode))
	var out C.yai_vec
	onThread := call("quantize", []*Array{w}, func() C.int {
		return C.yai_quantize(w.ptr(), C.int(q.GroupSize), C.int(q.Bits), mode, &out)
	})
	parts := vec{out, onThread}.take()
	wq, scales = parts[0], parts[1]
	if len(parts) > 2 {
		biases = parts[2]
	}
	return wq, scales, biases
}

// Dequantize unpacks a quantized matrix into dt (the scales' dtype when dt is negative).
func Dequantize(wq, scales, biases *Array, q Quantization, dt Dtype) *Array {
	mode := C.CString(q.mode())
	defer C.free(unsafe.Pointer(mode))
	return newArray("dequantize", []*Array{wq, scales, biases}, func(out *C.yai_array) C.int {
		return C.yai_dequantize(wq.ptr(), scales.ptr(), biases.ptr(), C.int(q.GroupSize), C.int(q.Bits), mode, C.int(dt), out)
	})
}

// QuantizedMatmul is x @ dequantize(w)ᵀ when transpose is true (the layout of linear
// layers), without materialising the dequantized matrix.
func QuantizedMatmul(x, wq, scales, biases *Array, transpose bool, q Quantization) *Array {
	mode := C.CString(q.mode())
	defer C.free(unsafe.Pointer(mode))
	return newArray("quantized_matmul", []*Array{x, wq, scales, biases}, func(out *C.yai_array) C.int {
		return C.yai_quantized_matmul(x.ptr(), wq.ptr(), scales.ptr(), biases.ptr(), cBool(transpose),
			C.int(q.GroupSize), C.int(q.Bits), mode, out)
	})
}

// GatherQMM is GatherMM with a quantized b: x's matrices at lhsIndices times the dequantized
// matrices of w at rhsIndices (transposed when transpose is true, the layout of linear
// layers), w's leading axes being experts (E, out, in/pack). A nil index array means none;
// biases are nil for modes without them. sortedIndices promises that the one index array
// given is sorted. MLX differentiates it with respect to x, scales and biases, not w or the
// indices: stop their gradient (StopGradient) when differentiating with respect to every
// input, as Checkpoint does.
func GatherQMM(x, w, scales, biases, lhsIndices, rhsIndices *Array, transpose bool, q Quantization, sortedIndices bool) *Array {
	mode := C.CString(q.mode())
	defer C.free(unsafe.Pointer(mode))
	return newArray("gather_qmm", []*Array{x, w, scales, biases, lhsIndices, rhsIndices}, func(out *C.yai_array) C.int {
		return C.yai_gather_qmm(x.ptr(), w.ptr(), scales.ptr(), biases.ptr(), lhsIndices.ptr(), rhsIndices.ptr(),
			cBool(transpose), C.int(q.GroupSize), C.int(q.Bits), mode, cBool(sortedIndices), out)
	})
}
