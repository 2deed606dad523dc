package mlx

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
)

// gatherCase is a case recorded by testdata/gen_gather_fixtures.py: its inputs and outputs are
// NAME.in0, … and NAME.out0, … in gather.safetensors.
type gatherCase struct {
	Name    string          `json:"name"`
	Op      string          `json:"op"`
	Inputs  int             `json:"inputs"`
	Outputs int             `json:"outputs"`
	Params  json.RawMessage `json:"params"`
}

type gatherParams struct {
	HasLHS        bool   `json:"has_lhs"`
	HasRHS        bool   `json:"has_rhs"`
	HasBiases     bool   `json:"has_biases"`
	SortedIndices bool   `json:"sorted_indices"`
	Transpose     bool   `json:"transpose"`
	GroupSize     int    `json:"group_size"`
	Bits          int    `json:"bits"`
	Mode          string `json:"mode"`
	Kth           int    `json:"kth"`
	Axis          int    `json:"axis"`
	StartAxis     int    `json:"start_axis"`
	EndAxis       int    `json:"end_axis"`
	Shape         []int  `json:"shape"`
	Axis1         int    `json:"axis1"`
	Axis2         int    `json:"axis2"`
	Source        int    `json:"source"`
	Destination   int    `json:"destination"`
	Kind          string `json:"kind"`
	K             int    `json:"k"`
}

func (p gatherParams) quantization() Quantization {
	return Quantization{GroupSize: p.GroupSize, Bits: p.Bits, Mode: p.Mode}
}

// gatherFixtures loads the recorded cases; the caller frees the arrays.
func gatherFixtures(t *testing.T) ([]gatherCase, map[string]*Array) {
	t.Helper()
	raw, err := os.ReadFile("testdata/gather.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Version string       `json:"mlx_version"`
		Cases   []gatherCase `json:"cases"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	if f.Version != Version() {
		t.Fatalf("fixtures were recorded with mlx %s, the library is %s: regenerate them", f.Version, Version())
	}
	tensors, _, err := LoadSafetensors("testdata/gather.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	return f.Cases, tensors
}

func (c gatherCase) arrays(t *testing.T, tensors map[string]*Array, kind string, n int) []*Array {
	t.Helper()
	out := make([]*Array, n)
	for i := range out {
		name := fmt.Sprintf("%s.%s%d", c.Name, kind, i)
		if out[i] = tensors[name]; out[i] == nil {
			t.Fatalf("gather.safetensors lacks %s", name)
		}
	}
	return out
}

// optionalArgs takes the optional arrays the flags say were passed, in order, from rest.
func optionalArgs(rest []*Array, present ...bool) []*Array {
	out := make([]*Array, len(present))
	for i, p := range present {
		if p {
			out[i], rest = rest[0], rest[1:]
		}
	}
	return out
}

// switchLinear is mlx-lm's SwitchLinear (w (E, out, in)) or, with q set, QuantizedSwitchLinear.
type switchLinear struct {
	w, scales, biases *Array
	q                 *Quantization
}

func (l switchLinear) apply(x, idx *Array, sorted bool) *Array {
	if l.q != nil {
		return GatherQMM(x, l.w, l.scales, l.biases, nil, idx, true, *l.q, sorted)
	}
	return GatherMM(x, SwapAxes(l.w, -1, -2), nil, idx, sorted)
}

// switchGLU is mlx-lm's SwitchGLU: x (…, D) through the experts at indices (…, k); from 64
// routed rows it sorts them by expert first (_gather_sort) and unsorts the result.
func switchGLU(x, indices *Array, gate, up, down switchLinear, swiglu *Closure) *Array {
	x = ExpandDims(ExpandDims(x, -2), -3) // mx.expand_dims(x, (-2, -3))
	indices = StopGradient(indices)
	doSort := indices.Size() >= 64
	idx := indices
	var inv *Array
	if doSort {
		m := indices.Dim(-1)
		flat := Flatten(indices, 0, -1)
		order := Argsort(flat, 0)
		inv = Argsort(order, 0)
		rows := FloorDivide(order, Scalar(float64(m), order.Dtype()))
		x = Take(Flatten(x, 0, -3), rows, 0)
		idx = Take(flat, order, 0)
	}
	xUp := up.apply(x, idx, doSort)
	xGate := gate.apply(x, idx, doSort)
	x = down.apply(swiglu.Call(xGate, xUp)[0], idx, doSort)
	if doSort {
		x = Unflatten(Take(x, inv, 0), 0, indices.Shape()...)
	}
	return Squeeze(x, -2)
}

// newSwiGLU is mlx-lm's swiglu(gate, x) = silu(gate)·x, compiled shapeless as mlx-lm does.
func newSwiGLU() *Closure {
	return Compile(func(in []*Array) []*Array {
		gate, x := in[0], in[1]
		return []*Array{Multiply(Multiply(gate, Sigmoid(gate)), x)}
	}, true)
}

// moeBlock is mlx-lm's Qwen3MoeSparseMoeBlock (kind "qwen3", norm_topk_prob) or
// MixtralSparseMoeBlock (kind "mixtral"): a router picking k experts per token, SwitchGLU.
func moeBlock(kind string, k int, x, gateW *Array, gate, up, down switchLinear, swiglu *Closure) *Array {
	gates := Matmul(x, Transpose(gateW))
	e := gates.Dim(-1)
	var inds, scores *Array
	switch kind {
	case "qwen3":
		gates = Softmax(gates, true, -1)
		inds = StopGradient(SliceAxis(ArgPartition(gates, -k, -1), -1, e-k, e))
		scores = TakeAlongAxis(gates, inds, -1)
		scores = Divide(scores, Sum(scores, true, -1))
	case "mixtral":
		inds = StopGradient(SliceAxis(ArgPartition(Negative(gates), k-1, -1), -1, 0, k))
		scores = TakeAlongAxis(gates, inds, -1)
		scores = Softmax(scores, true, -1)
	default:
		panic("unknown MoE block " + kind)
	}
	y := switchGLU(x, inds, gate, up, down, swiglu)
	return AsType(Sum(Multiply(y, ExpandDims(scores, -1)), false, -2), y.Dtype())
}

// moeLinears reads the three expert projections (gate, up, down) from in: one weight each,
// or weight, scales and biases when q is set.
func moeLinears(in []*Array, q *Quantization) (gate, up, down switchLinear) {
	var ls [3]switchLinear
	for i := range ls {
		if q != nil {
			ls[i] = switchLinear{w: in[3*i], scales: in[3*i+1], biases: in[3*i+2], q: q}
		} else {
			ls[i] = switchLinear{w: in[i]}
		}
	}
	return ls[0], ls[1], ls[2]
}

// runGatherOp applies the op a case names, the way gen_gather_fixtures.py called mlx.
func runGatherOp(t *testing.T, c gatherCase, in []*Array, p gatherParams, swiglu *Closure) []*Array {
	one := func(a *Array) []*Array { return []*Array{a} }
	switch c.Op {
	case "gather_mm":
		o := optionalArgs(in[2:], p.HasLHS, p.HasRHS)
		return one(GatherMM(in[0], in[1], o[0], o[1], p.SortedIndices))
	case "gather_qmm":
		o := optionalArgs(in[3:], p.HasBiases, p.HasLHS, p.HasRHS)
		return one(GatherQMM(in[0], in[1], in[2], o[0], o[1], o[2], p.Transpose, p.quantization(), p.SortedIndices))
	case "argpartition":
		return one(ArgPartition(in[0], p.Kth, p.Axis))
	case "flatten":
		return one(Flatten(in[0], p.StartAxis, p.EndAxis))
	case "unflatten":
		return one(Unflatten(in[0], p.Axis, p.Shape...))
	case "swapaxes":
		return one(SwapAxes(in[0], p.Axis1, p.Axis2))
	case "moveaxis":
		return one(MoveAxis(in[0], p.Source, p.Destination))
	case "moe_block":
		var q *Quantization
		if p.GroupSize != 0 {
			qq := p.quantization()
			q = &qq
		}
		gate, up, down := moeLinears(in[3:], q)
		return []*Array{
			moeBlock(p.Kind, p.K, in[0], in[2], gate, up, down, swiglu),
			moeBlock(p.Kind, p.K, in[1], in[2], gate, up, down, swiglu),
		}
	case "grad_gather_mm", "grad_gather_qmm", "grad_moe_block":
		fn, argnums := gatherLoss(c.Op, p, swiglu)
		vals, grads := ValueAndGrad(fn, argnums...)(in)
		return append(vals, grads...)
	}
	t.Fatalf("fixture op %q has no Go counterpart", c.Op)
	return nil
}

// gatherLoss is the function a gradient case differentiates, sum(f(…)·cot) with cot the last
// input, and the inputs it is differentiated with respect to. Indices and packed quantized
// weights pass through StopGradient, as in mlx-lm (which stops the router's indices and
// freezes quantized experts): MLX has no gradient for them, and Checkpoint differentiates
// with respect to every input it is given.
func gatherLoss(op string, p gatherParams, swiglu *Closure) (Func, []int) {
	switch op {
	case "grad_gather_mm": // x, b, indices, cot
		return func(in []*Array) []*Array {
			return []*Array{Sum(Multiply(GatherMM(in[0], in[1], nil, StopGradient(in[2]), p.SortedIndices), in[3]), false)}
		}, []int{0, 1}
	case "grad_gather_qmm": // x, w, scales, biases, indices, cot
		return func(in []*Array) []*Array {
			y := GatherQMM(in[0], StopGradient(in[1]), in[2], in[3], nil, StopGradient(in[4]), true, p.quantization(), p.SortedIndices)
			return []*Array{Sum(Multiply(y, in[5]), false)}
		}, []int{0, 2, 3}
	case "grad_moe_block": // x, router, gate, up, down, cot
		return func(in []*Array) []*Array {
			gate, up, down := moeLinears(in[2:5], nil)
			y := moeBlock(p.Kind, p.K, in[0], in[1], gate, up, down, swiglu)
			return []*Array{Sum(Multiply(y, in[5]), false)}
		}, []int{0, 1, 2, 3, 4}
	}
	panic("no loss for " + op)
}

// bitsOf evaluates a and returns its elements' bit patterns.
func bitsOf(t *testing.T, a *Array) []uint64 {
	t.Helper()
	var out []uint64
	switch a.Dtype() {
	case Float32:
		for _, v := range Data[float32](a) {
			out = append(out, uint64(math.Float32bits(v)))
		}
	case Float16, BFloat16:
		for _, v := range Bits(a) {
			out = append(out, uint64(v))
		}
	case Uint32:
		for _, v := range Data[uint32](a) {
			out = append(out, uint64(v))
		}
	case Int32:
		for _, v := range Data[int32](a) {
			out = append(out, uint64(uint32(v)))
		}
	default:
		t.Fatalf("no bit comparison for %s", a.Dtype())
	}
	return out
}

// compareToPython requires got to be bit-identical to want on the CPU, where both came from
// the same libmlx. Elsewhere float results need only agree within the GPU tolerance of the
// other fixtures (the kernels differ), and argpartition's indices only partition alike.
func compareToPython(t *testing.T, label string, c gatherCase, p gatherParams, got, want *Array) {
	t.Helper()
	if got.Dtype() != want.Dtype() || fmt.Sprint(got.Shape()) != fmt.Sprint(want.Shape()) {
		t.Errorf("%s: %s %v, want %s %v", label, got.Dtype(), got.Shape(), want.Dtype(), want.Shape())
		return
	}
	if DefaultDevice().Type == CPU {
		g, w := bitsOf(t, got), bitsOf(t, want)
		for i := range w {
			if g[i] != w[i] {
				t.Errorf("%s: element %d has bits %#x, Python mlx %#x (not bit-identical)", label, i, g[i], w[i])
				return
			}
		}
		return
	}
	if c.Op == "argpartition" {
		got, want = partitionSides(got, p), partitionSides(want, p)
	}
	if !want.Dtype().IsFloat() {
		if fmt.Sprint(got.Ints()) != fmt.Sprint(want.Ints()) {
			t.Errorf("%s: %v, want %v", label, got.Ints(), want.Ints())
		}
		return
	}
	tol := tolerance(want.Dtype())
	if strings.Contains(c.Op, "qmm") || strings.Contains(c.Op, "moe") {
		tol *= 4 // dequantization and the router add rounding of their own on a GPU
	}
	g, w := got.Floats(), want.Floats()
	for i := range w {
		if d := math.Abs(float64(g[i] - w[i])); d > tol*math.Max(1, math.Abs(float64(w[i]))) {
			t.Errorf("%s: element %d = %v, want %v (tolerance %g)", label, i, g[i], w[i], tol)
			return
		}
	}
}

// partitionSides makes argpartition's indices comparable across kernels: the indices on each
// side of the kth position, sorted, and the kth index itself.
func partitionSides(idx *Array, p gatherParams) *Array {
	idx = MoveAxis(idx, p.Axis, -1)
	n := idx.Dim(-1)
	kth := p.Kth
	if kth < 0 {
		kth += n
	}
	return Concatenate([]*Array{
		Sort(SliceAxis(idx, -1, 0, kth), -1),
		SliceAxis(idx, -1, kth, kth+1),
		Sort(SliceAxis(idx, -1, kth+1, n), -1),
	}, -1)
}

// TestGatherOpsMatchPythonMLX runs every case of gen_gather_fixtures.py: gather_mm,
// gather_qmm (affine 4-bit group 64, 8-bit group 32, mxfp4 without biases), argpartition,
// the reshapes of SwitchGLU, mlx-lm's Qwen3 and Mixtral MoE blocks end to end (both of
// SwitchGLU's paths), and gradients through them.
func TestGatherOpsMatchPythonMLX(t *testing.T) {
	before := LiveArrays()
	defer func() {
		if LiveArrays() != before {
			t.Errorf("%d arrays live after the test, %d before", LiveArrays(), before)
		}
	}()
	cases, tensors := gatherFixtures(t)
	defer freeAll(tensors)
	if len(cases) < 40 {
		t.Fatalf("only %d fixture cases", len(cases))
	}
	swiglu := newSwiGLU()
	defer swiglu.Free()
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			var p gatherParams
			if err := json.Unmarshal(c.Params, &p); err != nil {
				t.Fatal(err)
			}
			inScope(t, func() {
				in, want := c.arrays(t, tensors, "in", c.Inputs), c.arrays(t, tensors, "out", c.Outputs)
				got := runGatherOp(t, c, in, p, swiglu)
				if len(got) != len(want) {
					t.Fatalf("%d outputs, want %d", len(got), len(want))
				}
				for i := range got {
					compareToPython(t, fmt.Sprintf("output %d", i), c, p, got[i], want[i])
				}
			})
		})
	}
}

func freeAll(tensors map[string]*Array) {
	for _, a := range tensors {
		a.Free()
	}
}

// TestGatherGradsUnderCheckpointAndCompile takes the recorded gradients again through the
// package's other transforms: value-and-grad of a checkpointed loss, and a compiled function
// that runs value-and-grad inside. On the CPU they too must match Python mlx bit for bit.
func TestGatherGradsUnderCheckpointAndCompile(t *testing.T) {
	cases, tensors := gatherFixtures(t)
	defer freeAll(tensors)
	swiglu := newSwiGLU()
	defer swiglu.Free()
	ran := 0
	for _, c := range cases {
		if !strings.HasPrefix(c.Op, "grad_") {
			continue
		}
		ran++
		t.Run(c.Name, func(t *testing.T) {
			var p gatherParams
			if err := json.Unmarshal(c.Params, &p); err != nil {
				t.Fatal(err)
			}
			fn, argnums := gatherLoss(c.Op, p, swiglu)
			ck := Checkpoint(fn)
			defer ck.Free()
			cp := Compile(func(in []*Array) []*Array {
				vals, grads := ValueAndGrad(fn, argnums...)(in)
				return append(vals, grads...)
			}, false)
			defer cp.Free()
			inScope(t, func() {
				in, want := c.arrays(t, tensors, "in", c.Inputs), c.arrays(t, tensors, "out", c.Outputs)
				vals, grads := ValueAndGrad(ck.AsFunc(), argnums...)(in)
				for name, got := range map[string][]*Array{"checkpoint": append(vals, grads...), "compile": cp.Call(in...)} {
					if len(got) != len(want) {
						t.Fatalf("%s: %d outputs, want %d", name, len(got), len(want))
					}
					for i := range got {
						compareToPython(t, fmt.Sprintf("%s output %d", name, i), c, p, got[i], want[i])
					}
				}
			})
		})
	}
	if ran < 7 {
		t.Fatalf("only %d gradient cases", ran)
	}
}

// TestGatherErrorsAreErrors: bad shapes and parameters come back as *Error naming the op and
// the shapes of the arrays given, nil optional arrays left out.
func TestGatherErrorsAreErrors(t *testing.T) {
	cases := map[string]func(){
		"gather_mm": func() {
			a, b := Zeros([]int{2, 1, 16}, Float32), Zeros([]int{4, 8, 8}, Float32)
			GatherMM(a, b, nil, FromSlice([]uint32{0, 3}), false)
		},
		"gather_qmm": func() {
			wq, s, bi := Quantize(Zeros([]int{4, 32, 128}, Float32), Quantization{GroupSize: 64, Bits: 4})
			GatherQMM(Zeros([]int{2, 1, 128}, Float32), wq, s, bi, nil, FromSlice([]uint32{0, 3}), true,
				Quantization{GroupSize: 32, Bits: 4}, false)
		},
		"argpartition": func() { ArgPartition(Zeros([]int{2, 3}, Float32), 5, -1) },
	}
	for op, fn := range cases {
		err := Do(func() error {
			s := NewScope()
			defer s.Close()
			fn()
			return nil
		})
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("%s: error %v, want *Error", op, err)
			continue
		}
		if e.Op != op || len(e.Shapes) == 0 {
			t.Errorf("%s: error %v names op %q and %d shapes", op, e, e.Op, len(e.Shapes))
		}
	}
}
