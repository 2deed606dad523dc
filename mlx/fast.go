package mlx

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import "unsafe"

// RMSNorm is x / sqrt(mean(x²) + eps) * weight over the last axis; weight may be nil.
func RMSNorm(x, weight *Array, eps float32) *Array {
	return newArray("fast.rms_norm", []*Array{x, weight}, func(out *C.yai_array) C.int {
		return C.yai_rms_norm(x.ptr(), weight.ptr(), C.float(eps), out)
	})
}

// LayerNorm normalises over the last axis; weight and bias may be nil.
func LayerNorm(x, weight, bias *Array, eps float32) *Array {
	return newArray("fast.layer_norm", []*Array{x, weight, bias}, func(out *C.yai_array) C.int {
		return C.yai_layer_norm(x.ptr(), weight.ptr(), bias.ptr(), C.float(eps), out)
	})
}

// RoPE describes a rotary position embedding. Either Base or Freqs is set: Freqs holds
// precomputed frequencies (Llama-3 scaling computes them once).
type RoPE struct {
	Dims        int
	Traditional bool
	Base        float32
	Scale       float32
	Freqs       *Array
}

// Apply rotates x (…, seq, dims) starting at position offset.
func (r RoPE) Apply(x *Array, offset int) *Array {
	return r.apply(x, offset, nil)
}

// ApplyAt is Apply with the offset held in an array (one per batch row, or a scalar).
func (r RoPE) ApplyAt(x, offset *Array) *Array {
	return r.apply(x, 0, offset)
}

func (r RoPE) apply(x *Array, offset int, offsetArr *Array) *Array {
	hasBase := C.int(0)
	if r.Freqs == nil {
		hasBase = 1
	}
	scale := r.Scale
	if scale == 0 {
		scale = 1
	}
	return newArray("fast.rope", []*Array{x, r.Freqs, offsetArr}, func(out *C.yai_array) C.int {
		return C.yai_rope(x.ptr(), C.int(r.Dims), cBool(r.Traditional), C.float(r.Base), hasBase,
			C.float(scale), C.int(offset), offsetArr.ptr(), r.Freqs.ptr(), out)
	})
}

// Attention masks for ScaledDotProductAttention.
const (
	NoMask     = ""
	CausalMask = "causal"
)

// ScaledDotProductAttention is softmax(q·kᵀ·scale + mask)·v with q (B, Hq, L, D) and k, v
// (B, Hkv, S, D); Hq may be a multiple of Hkv (grouped-query attention). maskMode is NoMask,
// CausalMask, or "array" with mask an additive or boolean array.
func ScaledDotProductAttention(q, k, v *Array, scale float32, maskMode string, mask *Array) *Array {
	mode := C.CString(maskMode)
	defer C.free(unsafe.Pointer(mode))
	return newArray("fast.scaled_dot_product_attention", []*Array{q, k, v, mask}, func(out *C.yai_array) C.int {
		return C.yai_sdpa(q.ptr(), k.ptr(), v.ptr(), C.float(scale), mode, mask.ptr(), out)
	})
}
