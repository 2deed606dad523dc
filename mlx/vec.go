package mlx

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import "unsafe"

// vec is a native std::vector of arrays, used to pass lists across the boundary.
type vec struct {
	h        C.yai_vec
	onThread bool // whether the arrays taken from it join the caller's scope
}

func newVec(arrays []*Array) vec {
	hs := make([]C.yai_array, len(arrays))
	for i, a := range arrays {
		hs[i] = a.ptr()
	}
	var p *C.yai_array
	if len(hs) > 0 {
		p = &hs[0]
	}
	var out C.yai_vec
	onThread := call("vector", arrays, func() C.int { return C.yai_vec_new(p, C.int(len(hs)), &out) })
	return vec{out, onThread}
}

func (v vec) free() {
	if v.h != nil {
		C.yai_vec_free(v.h)
	}
}

// take wraps every element as a new Array and frees the vector.
func (v vec) take() []*Array {
	defer v.free()
	return v.borrow()
}

// unpackStrings splits a malloc'd run of NUL-terminated strings and frees it.
func unpackStrings(p *C.char, n C.size_t) []string {
	defer C.free(unsafe.Pointer(p))
	if n == 0 {
		return nil
	}
	b := C.GoBytes(unsafe.Pointer(p), C.int(n))
	var out []string
	start := 0
	for i, c := range b {
		if c == 0 {
			out = append(out, string(b[start:i]))
			start = i + 1
		}
	}
	return out
}
