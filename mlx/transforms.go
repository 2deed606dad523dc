package mlx

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"runtime/cgo"
	"runtime/debug"
)

// Eval computes the given arrays now. Evaluate what you keep: an unevaluated array holds
// its whole graph, and every intermediate in it, alive.
func Eval(arrays ...*Array) {
	arrays = nonNil(arrays)
	if len(arrays) == 0 {
		return
	}
	v := newVec(arrays)
	defer v.free()
	call("eval", arrays, func() C.int { return C.yai_eval(v.h) })
}

// AsyncEval starts computing the arrays and returns at once.
func AsyncEval(arrays ...*Array) {
	arrays = nonNil(arrays)
	if len(arrays) == 0 {
		return
	}
	v := newVec(arrays)
	defer v.free()
	call("async_eval", arrays, func() C.int { return C.yai_async_eval(v.h) })
}

func nonNil(arrays []*Array) []*Array {
	out := arrays[:0:0]
	for _, a := range arrays {
		if a != nil {
			out = append(out, a)
		}
	}
	return out
}

// Func is a function of arrays that MLX can transform (differentiate, checkpoint, compile).
// Its inputs are owned by the transform; arrays it creates are freed after it returns, except
// what it returns, which MLX keeps.
type Func func(inputs []*Array) []*Array

//export yaiCallGo
func yaiCallGo(handle C.uintptr_t, in C.yai_vec, out *C.yai_vec, errp **C.char) C.int {
	fn := cgo.Handle(handle).Value().(Func)
	err := func() (err error) {
		s := NewScope()
		defer s.Close()
		defer func() {
			if r := recover(); r != nil {
				if e, ok := r.(*Error); ok {
					err = e
				} else {
					err = fmt.Errorf("panic in function: %v\n%s", r, debug.Stack())
				}
			}
		}()
		inputs := vec{in, true}.borrow()
		outputs := fn(inputs)
		// The native vector copies the outputs, so the scope may free the Go handles.
		*out = newVec(outputs).h
		return nil
	}()
	if err != nil {
		*errp = C.CString(err.Error())
		return 1
	}
	return 0
}

// borrow wraps the elements as new Arrays without taking the vector (its owner frees it).
func (v vec) borrow() []*Array {
	n := int(C.yai_vec_size(v.h))
	out := make([]*Array, n)
	for i := range out {
		var h C.yai_array
		call("vector", nil, func() C.int { return C.yai_vec_get(v.h, C.int(i), &h) })
		out[i] = wrap(h, v.onThread)
	}
	return out
}

// ValueAndGrad returns a function computing fn's outputs and the gradient of its first
// output (a scalar) with respect to the inputs at argnums (all inputs when none are given).
func ValueAndGrad(fn Func, argnums ...int) func(inputs []*Array) (values, grads []*Array) {
	return func(inputs []*Array) (values, grads []*Array) {
		nums := argnums
		if len(nums) == 0 {
			nums = make([]int, len(inputs))
			for i := range nums {
				nums[i] = i
			}
		}
		h := cgo.NewHandle(fn)
		defer h.Delete()
		in := newVec(inputs)
		defer in.free()
		ap, n := cInts(nums)
		var vals, gs C.yai_vec
		onThread := call("value_and_grad", inputs, func() C.int {
			return C.yai_value_and_grad(C.uintptr_t(h), in.h, ap, n, &vals, &gs)
		})
		return vec{vals, onThread}.take(), vec{gs, onThread}.take()
	}
}

// VJP computes fn's outputs at primals and the vector-Jacobian products with cotangents.
func VJP(fn Func, primals, cotangents []*Array) (outputs, vjps []*Array) {
	h := cgo.NewHandle(fn)
	defer h.Delete()
	p := newVec(primals)
	defer p.free()
	c := newVec(cotangents)
	defer c.free()
	var outs, vs C.yai_vec
	onThread := call("vjp", append(append([]*Array{}, primals...), cotangents...), func() C.int {
		return C.yai_vjp(C.uintptr_t(h), p.h, c.h, &outs, &vs)
	})
	return vec{outs, onThread}.take(), vec{vs, onThread}.take()
}

// Closure is a transformed Func held by MLX (checkpointed or compiled). Free it when done:
// a compiled closure keeps its compiled graphs until then.
type Closure struct {
	fn     C.yai_fn
	handle cgo.Handle
	// vjp is CustomVJP's gradient function (zero otherwise).
	vjp cgo.Handle
}

func closureOf(op string, fn Func, transform func(base C.yai_fn, out *C.yai_fn) C.int) *Closure {
	h := cgo.NewHandle(fn)
	var base, out C.yai_fn
	call(op, nil, func() C.int { return C.yai_fn_from_go(C.uintptr_t(h), &base) })
	defer call(op, nil, func() C.int { return C.yai_fn_free(base) })
	call(op, nil, func() C.int { return transform(base, &out) })
	return &Closure{fn: out, handle: h}
}

// CustomVJP returns fn with its gradient computed by vjp instead of by differentiating fn:
// vjp receives fn's inputs, then the cotangents of its outputs, then its outputs, and
// returns one cotangent per input. What vjp does not read is not kept for the backward
// pass.
func CustomVJP(fn, vjp Func) *Closure {
	vh := cgo.NewHandle(vjp)
	c := closureOf("custom_vjp", fn, func(base C.yai_fn, out *C.yai_fn) C.int {
		return C.yai_fn_custom_vjp(base, C.uintptr_t(vh), out)
	})
	c.vjp = vh
	return c
}

// Checkpoint returns fn with gradient checkpointing: its intermediates are recomputed in
// the backward pass instead of being kept.
func Checkpoint(fn Func) *Closure {
	return closureOf("checkpoint", fn, func(base C.yai_fn, out *C.yai_fn) C.int {
		return C.yai_fn_checkpoint(base, out)
	})
}

// Compile returns fn compiled by MLX. MLX keeps one compiled graph per input shape unless
// shapeless is set, so callers bucket shapes to keep the cache bounded. Arrays fn captures
// instead of taking as inputs are baked in as constants.
func Compile(fn Func, shapeless bool) *Closure {
	return closureOf("compile", fn, func(base C.yai_fn, out *C.yai_fn) C.int {
		return C.yai_fn_compile(base, cBool(shapeless), out)
	})
}

// Call runs the closure.
func (c *Closure) Call(inputs ...*Array) []*Array {
	if c.fn == nil {
		panic(&Error{Op: "call", Msg: "closure was already freed"})
	}
	in := newVec(inputs)
	defer in.free()
	var out C.yai_vec
	onThread := call("call", inputs, func() C.int { return C.yai_fn_call(c.fn, in.h, &out) })
	return vec{out, onThread}.take()
}

// AsFunc lets a closure be used inside other transforms.
func (c *Closure) AsFunc() Func { return func(in []*Array) []*Array { return c.Call(in...) } }

// Free releases the closure and anything MLX cached for it. Calling it again does nothing.
func (c *Closure) Free() {
	if c == nil || c.fn == nil {
		return
	}
	fn := c.fn
	call("free", nil, func() C.int { return C.yai_fn_free(fn) })
	c.fn = nil
	c.handle.Delete()
	if c.vjp != 0 {
		c.vjp.Delete()
		c.vjp = 0
	}
}
