package mlx

/*
#include "shim.h"
*/
import "C"

// Unary op codes, shared with yai_unary in shim.cpp.
const (
	opAbs = iota
	opNeg
	opExp
	opLog
	opSqrt
	opRsqrt
	opSin
	opCos
	opTanh
	opSigmoid
	opSquare
	opLog1p
	opErf
	opFloor
	opCeil
	opRound
	opNot
	opStopGradient
	opCopy
	opSign
	opReciprocal
	opContiguous
)

var unaryNames = [...]string{"abs", "negative", "exp", "log", "sqrt", "rsqrt", "sin", "cos",
	"tanh", "sigmoid", "square", "log1p", "erf", "floor", "ceil", "round", "logical_not",
	"stop_gradient", "copy", "sign", "reciprocal", "contiguous"}

func unary(op int, a *Array) *Array {
	return newArray(unaryNames[op], []*Array{a}, func(out *C.yai_array) C.int {
		return C.yai_unary(C.int(op), a.ptr(), out)
	})
}

func Abs(a *Array) *Array        { return unary(opAbs, a) }
func Negative(a *Array) *Array   { return unary(opNeg, a) }
func Exp(a *Array) *Array        { return unary(opExp, a) }
func Log(a *Array) *Array        { return unary(opLog, a) }
func Sqrt(a *Array) *Array       { return unary(opSqrt, a) }
func Rsqrt(a *Array) *Array      { return unary(opRsqrt, a) }
func Sin(a *Array) *Array        { return unary(opSin, a) }
func Cos(a *Array) *Array        { return unary(opCos, a) }
func Tanh(a *Array) *Array       { return unary(opTanh, a) }
func Sigmoid(a *Array) *Array    { return unary(opSigmoid, a) }
func Square(a *Array) *Array     { return unary(opSquare, a) }
func Log1p(a *Array) *Array      { return unary(opLog1p, a) }
func Erf(a *Array) *Array        { return unary(opErf, a) }
func Floor(a *Array) *Array      { return unary(opFloor, a) }
func Ceil(a *Array) *Array       { return unary(opCeil, a) }
func Round(a *Array) *Array      { return unary(opRound, a) }
func LogicalNot(a *Array) *Array { return unary(opNot, a) }
func Sign(a *Array) *Array       { return unary(opSign, a) }
func Reciprocal(a *Array) *Array { return unary(opReciprocal, a) }
func Copy(a *Array) *Array       { return unary(opCopy, a) }
func Contiguous(a *Array) *Array { return unary(opContiguous, a) }

// StopGradient returns a with no gradient flowing back through it.
func StopGradient(a *Array) *Array { return unary(opStopGradient, a) }

// Binary op codes, shared with yai_binary in shim.cpp.
const (
	opAdd = iota
	opSub
	opMul
	opDiv
	opPow
	opMaximum
	opMinimum
	opEqual
	opNotEqual
	opLess
	opLessEqual
	opGreater
	opGreaterEqual
	opAnd
	opOr
	opMatmul
	opRemainder
	opFloorDivide
	opLogAddExp
	opDepends
)

var binaryNames = [...]string{"add", "subtract", "multiply", "divide", "power", "maximum",
	"minimum", "equal", "not_equal", "less", "less_equal", "greater", "greater_equal",
	"logical_and", "logical_or", "matmul", "remainder", "floor_divide", "logaddexp", "depends"}

func binary(op int, a, b *Array) *Array {
	return newArray(binaryNames[op], []*Array{a, b}, func(out *C.yai_array) C.int {
		return C.yai_binary(C.int(op), a.ptr(), b.ptr(), out)
	})
}

func Add(a, b *Array) *Array          { return binary(opAdd, a, b) }
func Subtract(a, b *Array) *Array     { return binary(opSub, a, b) }
func Multiply(a, b *Array) *Array     { return binary(opMul, a, b) }
func Divide(a, b *Array) *Array       { return binary(opDiv, a, b) }
func Power(a, b *Array) *Array        { return binary(opPow, a, b) }
func Maximum(a, b *Array) *Array      { return binary(opMaximum, a, b) }
func Minimum(a, b *Array) *Array      { return binary(opMinimum, a, b) }
func Equal(a, b *Array) *Array        { return binary(opEqual, a, b) }
func NotEqual(a, b *Array) *Array     { return binary(opNotEqual, a, b) }
func Less(a, b *Array) *Array         { return binary(opLess, a, b) }
func LessEqual(a, b *Array) *Array    { return binary(opLessEqual, a, b) }
func Greater(a, b *Array) *Array      { return binary(opGreater, a, b) }
func GreaterEqual(a, b *Array) *Array { return binary(opGreaterEqual, a, b) }
func LogicalAnd(a, b *Array) *Array   { return binary(opAnd, a, b) }
func LogicalOr(a, b *Array) *Array    { return binary(opOr, a, b) }
func Matmul(a, b *Array) *Array       { return binary(opMatmul, a, b) }
func Remainder(a, b *Array) *Array    { return binary(opRemainder, a, b) }
func FloorDivide(a, b *Array) *Array  { return binary(opFloorDivide, a, b) }
func LogAddExp(a, b *Array) *Array    { return binary(opLogAddExp, a, b) }

// Depends returns a unchanged, computed only once dep has been: it orders work inside one graph
// (MLX may otherwise evaluate independent branches side by side, all alive at once).
// Gradients flow to a alone.
func Depends(a, dep *Array) *Array { return binary(opDepends, a, dep) }

// AddScalar, MulScalar and friends combine an array with a Go number, keeping the array's
// dtype (MLX's weak scalar promotion).
func AddScalar(a *Array, v float64) *Array { return withScalar(opAdd, a, v) }
func MulScalar(a *Array, v float64) *Array { return withScalar(opMul, a, v) }
func DivScalar(a *Array, v float64) *Array { return withScalar(opDiv, a, v) }
func SubScalar(a *Array, v float64) *Array { return withScalar(opSub, a, v) }
func PowScalar(a *Array, v float64) *Array { return withScalar(opPow, a, v) }

func withScalar(op int, a *Array, v float64) *Array {
	dt := a.Dtype()
	if !dt.IsFloat() && v != float64(int64(v)) {
		dt = Float32
	}
	s := Scalar(v, dt)
	defer s.Free()
	return binary(op, a, s)
}

// Reduction codes, shared with yai_reduce in shim.cpp.
const (
	redSum = iota
	redMean
	redMax
	redMin
	redProd
	redLogSumExp
	redAll
	redAny
	redVar
)

var reduceNames = [...]string{"sum", "mean", "max", "min", "prod", "logsumexp", "all", "any", "var"}

// reduce reduces over axes; no axes means every axis.
func reduce(op int, a *Array, keepdims bool, axes []int) *Array {
	ap, n := cInts(axes)
	all := C.int(0)
	if len(axes) == 0 {
		all = 1
	}
	return newArray(reduceNames[op], []*Array{a}, func(out *C.yai_array) C.int {
		return C.yai_reduce(C.int(op), a.ptr(), ap, n, all, cBool(keepdims), out)
	})
}

// Sum over the given axes (all axes when none are given).
func Sum(a *Array, keepdims bool, axes ...int) *Array  { return reduce(redSum, a, keepdims, axes) }
func Mean(a *Array, keepdims bool, axes ...int) *Array { return reduce(redMean, a, keepdims, axes) }
func Max(a *Array, keepdims bool, axes ...int) *Array  { return reduce(redMax, a, keepdims, axes) }
func Min(a *Array, keepdims bool, axes ...int) *Array  { return reduce(redMin, a, keepdims, axes) }
func Prod(a *Array, keepdims bool, axes ...int) *Array { return reduce(redProd, a, keepdims, axes) }
func LogSumExp(a *Array, keepdims bool, axes ...int) *Array {
	return reduce(redLogSumExp, a, keepdims, axes)
}
func All(a *Array, keepdims bool, axes ...int) *Array { return reduce(redAll, a, keepdims, axes) }
func Any(a *Array, keepdims bool, axes ...int) *Array { return reduce(redAny, a, keepdims, axes) }
func Var(a *Array, keepdims bool, axes ...int) *Array { return reduce(redVar, a, keepdims, axes) }

func cInts(v []int) (*C.int, C.int) { return cShape(v) }

func cBool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// Full is an array of the given shape filled with v.
func Full(shape []int, v float64, dt Dtype) *Array {
	sp, n := cShape(shape)
	return newArray("full", nil, func(out *C.yai_array) C.int {
		return C.yai_full(sp, n, C.double(v), C.int(dt), out)
	})
}

func Zeros(shape []int, dt Dtype) *Array { return Full(shape, 0, dt) }
func Ones(shape []int, dt Dtype) *Array  { return Full(shape, 1, dt) }

// Arange is start, start+step, … below stop.
func Arange(start, stop, step float64, dt Dtype) *Array {
	return newArray("arange", nil, func(out *C.yai_array) C.int {
		return C.yai_arange(C.double(start), C.double(stop), C.double(step), C.int(dt), out)
	})
}

// AsType converts the elements to dt.
func AsType(a *Array, dt Dtype) *Array {
	return newArray("astype", []*Array{a}, func(out *C.yai_array) C.int {
		return C.yai_astype(a.ptr(), C.int(dt), out)
	})
}

// Reshape gives a a new shape with the same number of elements; one axis may be -1.
func Reshape(a *Array, shape ...int) *Array {
	sp, n := cShape(shape)
	return newArray("reshape", []*Array{a}, func(out *C.yai_array) C.int {
		return C.yai_reshape(a.ptr(), sp, n, out)
	})
}

// Transpose permutes the axes; with no axes it reverses them.
func Transpose(a *Array, axes ...int) *Array {
	ap, n := cInts(axes)
	if len(axes) == 0 {
		n = -1
	}
	return newArray("transpose", []*Array{a}, func(out *C.yai_array) C.int {
		return C.yai_transpose(a.ptr(), ap, n, out)
	})
}

func BroadcastTo(a *Array, shape ...int) *Array {
	sp, n := cShape(shape)
	return newArray("broadcast_to", []*Array{a}, func(out *C.yai_array) C.int {
		return C.yai_broadcast_to(a.ptr(), sp, n, out)
	})
}

func ExpandDims(a *Array, axis int) *Array {
	return newArray("expand_dims", []*Array{a}, func(out *C.yai_array) C.int {
		return C.yai_expand_dims(a.ptr(), C.int(axis), out)
	})
}

// Flatten merges the axes startAxis through endAxis (inclusive; negative axes count from the
// end) into one.
func Flatten(a *Array, startAxis, endAxis int) *Array {
	return newArray("flatten", []*Array{a}, func(out *C.yai_array) C.int {
		return C.yai_flatten(a.ptr(), C.int(startAxis), C.int(endAxis), out)
	})
}

// Unflatten splits axis into the given shape, whose product is the axis' size (one entry may
// be -1).
func Unflatten(a *Array, axis int, shape ...int) *Array {
	sp, n := cShape(shape)
	return newArray("unflatten", []*Array{a}, func(out *C.yai_array) C.int {
		return C.yai_unflatten(a.ptr(), C.int(axis), sp, n, out)
	})
}

// SwapAxes exchanges two axes.
func SwapAxes(a *Array, axis1, axis2 int) *Array {
	return newArray("swapaxes", []*Array{a}, func(out *C.yai_array) C.int {
		return C.yai_swapaxes(a.ptr(), C.int(axis1), C.int(axis2), out)
	})
}

// MoveAxis moves axis source to position destination, keeping the others in order.
func MoveAxis(a *Array, source, destination int) *Array {
	return newArray("moveaxis", []*Array{a}, func(out *C.yai_array) C.int {
		return C.yai_moveaxis(a.ptr(), C.int(source), C.int(destination), out)
	})
}

// Squeeze removes the given axes of size one (all of them when none are given).
func Squeeze(a *Array, axes ...int) *Array {
	ap, n := cInts(axes)
	if len(axes) == 0 {
		n = -1
	}
	return newArray("squeeze", []*Array{a}, func(out *C.yai_array) C.int {
		return C.yai_squeeze(a.ptr(), ap, n, out)
	})
}

func Concatenate(arrays []*Array, axis int) *Array {
	v := newVec(arrays)
	defer v.free()
	return newArray("concatenate", arrays, func(out *C.yai_array) C.int {
		return C.yai_concatenate(v.h, C.int(axis), out)
	})
}

func Stack(arrays []*Array, axis int) *Array {
	v := newVec(arrays)
	defer v.free()
	return newArray("stack", arrays, func(out *C.yai_array) C.int {
		return C.yai_stack(v.h, C.int(axis), out)
	})
}

// Split cuts a into equal sections along axis.
func Split(a *Array, sections, axis int) []*Array {
	return splitArray(a, nil, sections, axis)
}

// SplitAt cuts a along axis before each index.
func SplitAt(a *Array, indices []int, axis int) []*Array {
	return splitArray(a, indices, 0, axis)
}

func splitArray(a *Array, indices []int, sections, axis int) []*Array {
	ip, n := cInts(indices)
	var out C.yai_vec
	onThread := call("split", []*Array{a}, func() C.int {
		return C.yai_split(a.ptr(), ip, n, C.int(sections), C.int(axis), &out)
	})
	return vec{out, onThread}.take()
}

// Slice takes a[start:stop:strides]; start, stop and strides have one entry per axis (nil
// strides means 1).
func Slice(a *Array, start, stop, strides []int) *Array {
	if strides == nil {
		strides = make([]int, len(start))
		for i := range strides {
			strides[i] = 1
		}
	}
	if len(start) != len(stop) || len(start) != len(strides) {
		panic(&Error{Op: "slice", Shapes: [][]int{a.Shape()}, Msg: "start, stop and strides differ in length"})
	}
	s0, n := cShape(start)
	s1, _ := cShape(stop)
	s2, _ := cShape(strides)
	return newArray("slice", []*Array{a}, func(out *C.yai_array) C.int {
		return C.yai_slice(a.ptr(), s0, s1, s2, n, out)
	})
}

// SliceAxis takes a[..., start:stop, ...] along one axis.
func SliceAxis(a *Array, axis, start, stop int) *Array {
	shape := a.Shape()
	if axis < 0 {
		axis += len(shape)
	}
	lo := make([]int, len(shape))
	hi := append([]int(nil), shape...)
	lo[axis], hi[axis] = start, stop
	return Slice(a, lo, hi, nil)
}

// SliceUpdate returns src with src[start:stop:strides] replaced by update.
func SliceUpdate(src, update *Array, start, stop, strides []int) *Array {
	if strides == nil {
		strides = make([]int, len(start))
		for i := range strides {
			strides[i] = 1
		}
	}
	s0, n := cShape(start)
	s1, _ := cShape(stop)
	s2, _ := cShape(strides)
	return newArray("slice_update", []*Array{src, update}, func(out *C.yai_array) C.int {
		return C.yai_slice_update(src.ptr(), update.ptr(), s0, s1, s2, n, out)
	})
}

// Take gathers entries of a at indices along axis.
func Take(a, indices *Array, axis int) *Array {
	return newArray("take", []*Array{a, indices}, func(out *C.yai_array) C.int {
		return C.yai_take(a.ptr(), indices.ptr(), C.int(axis), 1, out)
	})
}

// TakeFlat gathers entries of the flattened a.
func TakeFlat(a, indices *Array) *Array {
	return newArray("take", []*Array{a, indices}, func(out *C.yai_array) C.int {
		return C.yai_take(a.ptr(), indices.ptr(), 0, 0, out)
	})
}

func TakeAlongAxis(a, indices *Array, axis int) *Array {
	return newArray("take_along_axis", []*Array{a, indices}, func(out *C.yai_array) C.int {
		return C.yai_take_along_axis(a.ptr(), indices.ptr(), C.int(axis), out)
	})
}

// Where picks from a where cond is true, else from b.
func Where(cond, a, b *Array) *Array {
	return newArray("where", []*Array{cond, a, b}, func(out *C.yai_array) C.int {
		return C.yai_where(cond.ptr(), a.ptr(), b.ptr(), out)
	})
}

// Softmax over axes; precise computes in float32 for half-precision inputs.
func Softmax(a *Array, precise bool, axes ...int) *Array {
	if len(axes) == 0 {
		axes = []int{-1}
	}
	ap, n := cInts(axes)
	return newArray("softmax", []*Array{a}, func(out *C.yai_array) C.int {
		return C.yai_softmax(a.ptr(), ap, n, cBool(precise), out)
	})
}

func argOp(op int, name string, a *Array, axis int, keepdims bool) *Array {
	return newArray(name, []*Array{a}, func(out *C.yai_array) C.int {
		return C.yai_argreduce(C.int(op), a.ptr(), C.int(axis), cBool(keepdims), out)
	})
}

func Argmax(a *Array, axis int, keepdims bool) *Array { return argOp(0, "argmax", a, axis, keepdims) }
func Argmin(a *Array, axis int, keepdims bool) *Array { return argOp(1, "argmin", a, axis, keepdims) }
func Argsort(a *Array, axis int) *Array               { return argOp(2, "argsort", a, axis, false) }
func Sort(a *Array, axis int) *Array                  { return argOp(3, "sort", a, axis, false) }

// ArgPartition returns the indices that partition a along axis around its kth element: the
// index of the element that would sit at position kth in a sorted copy is at kth, those of
// smaller elements before it and of larger ones after, each side in no particular order. A
// negative kth counts from the end. The indices are uint32.
func ArgPartition(a *Array, kth, axis int) *Array {
	return newArray("argpartition", []*Array{a}, func(out *C.yai_array) C.int {
		return C.yai_argpartition(a.ptr(), C.int(kth), C.int(axis), out)
	})
}

func Cumsum(a *Array, axis int, reverse, inclusive bool) *Array {
	return newArray("cumsum", []*Array{a}, func(out *C.yai_array) C.int {
		return C.yai_cumsum(a.ptr(), C.int(axis), cBool(reverse), cBool(inclusive), out)
	})
}

// Clip bounds a to [lo, hi]; either bound may be nil.
func Clip(a, lo, hi *Array) *Array {
	return newArray("clip", []*Array{a, lo, hi}, func(out *C.yai_array) C.int {
		return C.yai_clip(a.ptr(), lo.ptr(), hi.ptr(), out)
	})
}

func Tril(a *Array, k int) *Array {
	return newArray("tril", []*Array{a}, func(out *C.yai_array) C.int { return C.yai_tri(0, a.ptr(), C.int(k), out) })
}

func Triu(a *Array, k int) *Array {
	return newArray("triu", []*Array{a}, func(out *C.yai_array) C.int { return C.yai_tri(1, a.ptr(), C.int(k), out) })
}

// Addmm is alpha*(a@b) + beta*c.
func Addmm(c, a, b *Array, alpha, beta float32) *Array {
	return newArray("addmm", []*Array{c, a, b}, func(out *C.yai_array) C.int {
		return C.yai_addmm(c.ptr(), a.ptr(), b.ptr(), C.float(alpha), C.float(beta), out)
	})
}

// Pad adds lo[i] and hi[i] elements of value before and after axis i.
func Pad(a *Array, lo, hi []int, value float64) *Array {
	v := Scalar(value, a.Dtype())
	defer v.Free()
	lp, n := cShape(lo)
	hp, _ := cShape(hi)
	return newArray("pad", []*Array{a}, func(out *C.yai_array) C.int {
		return C.yai_pad(a.ptr(), lp, hp, n, v.ptr(), out)
	})
}

// GatherMM is a matrix product with matrix-level gather: for each entry of the (broadcast)
// index arrays it multiplies the matrix of a at lhsIndices with the matrix of b at
// rhsIndices, where a's and b's leading axes (all but the last two) are flattened to index
// them. A nil index array means none: that side's batch axes broadcast as in Matmul. The
// result has the index arrays' broadcast shape followed by the product's (M, N).
// sortedIndices promises that the one index array given is sorted, which lets MLX use a
// faster kernel. MLX has no gradient with respect to the indices: stop it (StopGradient)
// when differentiating with respect to every input, as Checkpoint does.
func GatherMM(a, b, lhsIndices, rhsIndices *Array, sortedIndices bool) *Array {
	return newArray("gather_mm", []*Array{a, b, lhsIndices, rhsIndices}, func(out *C.yai_array) C.int {
		return C.yai_gather_mm(a.ptr(), b.ptr(), lhsIndices.ptr(), rhsIndices.ptr(), cBool(sortedIndices), out)
	})
}
