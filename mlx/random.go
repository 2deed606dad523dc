package mlx

/*
#include "shim.h"
*/
import "C"

// Random numbers always take an explicit key, so a run is reproducible from its seed and
// no hidden global state changes between steps.

// RandomKey makes a PRNG key from a seed.
func RandomKey(seed uint64) *Array {
	return newArray("random.key", nil, func(out *C.yai_array) C.int { return C.yai_random_key(C.uint64_t(seed), out) })
}

// RandomSplit derives num independent keys from key, stacked along the first axis.
func RandomSplit(key *Array, num int) *Array {
	return newArray("random.split", []*Array{key}, func(out *C.yai_array) C.int {
		return C.yai_random_split(key.ptr(), C.int(num), out)
	})
}

// SplitKey derives two keys from key.
func SplitKey(key *Array) (a, b *Array) {
	ks := RandomSplit(key, 2)
	defer ks.Free()
	parts := Split(ks, 2, 0)
	a = Squeeze(parts[0], 0)
	b = Squeeze(parts[1], 0)
	Free(parts...)
	return a, b
}

// Uniform samples from [lo, hi).
func Uniform(key *Array, lo, hi float64, shape []int, dt Dtype) *Array {
	l := Scalar(lo, dt)
	h := Scalar(hi, dt)
	defer Free(l, h)
	sp, n := cShape(shape)
	return newArray("random.uniform", []*Array{key}, func(out *C.yai_array) C.int {
		return C.yai_random_uniform(l.ptr(), h.ptr(), sp, n, C.int(dt), key.ptr(), out)
	})
}

// Normal samples from a normal distribution with mean loc and standard deviation scale.
func Normal(key *Array, shape []int, dt Dtype, loc, scale float32) *Array {
	sp, n := cShape(shape)
	return newArray("random.normal", []*Array{key}, func(out *C.yai_array) C.int {
		return C.yai_random_normal(sp, n, C.int(dt), C.float(loc), C.float(scale), key.ptr(), out)
	})
}

// Bernoulli samples booleans that are true with probability p (dropout masks).
func Bernoulli(key *Array, p float64, shape []int) *Array {
	pa := Scalar(p, Float32)
	defer pa.Free()
	sp, n := cShape(shape)
	return newArray("random.bernoulli", []*Array{key}, func(out *C.yai_array) C.int {
		return C.yai_random_bernoulli(pa.ptr(), sp, n, key.ptr(), out)
	})
}

// Categorical samples indices from unnormalised log-probabilities along axis.
func Categorical(key, logits *Array, axis int) *Array {
	return newArray("random.categorical", []*Array{key, logits}, func(out *C.yai_array) C.int {
		return C.yai_random_categorical(logits.ptr(), C.int(axis), key.ptr(), out)
	})
}
