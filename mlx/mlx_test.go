package mlx

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// inScope runs fn on the MLX thread in a scope that frees everything fn made.
func inScope(t *testing.T, fn func()) {
	t.Helper()
	if err := Do(func() error {
		s := NewScope()
		defer s.Close()
		fn()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestRoundTripSlices(t *testing.T) {
	inScope(t, func() {
		f := FromSlice([]float32{1, 2.5, -3, 4, 5, 6}, 2, 3)
		if diff := cmp.Diff([]int{2, 3}, f.Shape()); diff != "" {
			t.Errorf("shape: %s", diff)
		}
		if diff := cmp.Diff([]float32{1, 2.5, -3, 4, 5, 6}, Data[float32](f)); diff != "" {
			t.Errorf("float32 data: %s", diff)
		}
		i := FromSlice([]int32{7, -8})
		if diff := cmp.Diff([]int32{7, -8}, Data[int32](i)); diff != "" {
			t.Errorf("int32 data: %s", diff)
		}
		u := FromSlice([]uint32{1 << 31, 3}, 2)
		if diff := cmp.Diff([]uint32{1 << 31, 3}, Data[uint32](u)); diff != "" {
			t.Errorf("uint32 data: %s", diff)
		}
		b := FromSlice([]bool{true, false, true})
		if diff := cmp.Diff([]bool{true, false, true}, Data[bool](b)); diff != "" {
			t.Errorf("bool data: %s", diff)
		}
		h := AsType(f, Float16)
		if diff := cmp.Diff([]float32{1, 2.5, -3, 4, 5, 6}, h.Floats()); diff != "" {
			t.Errorf("float16 data: %s", diff)
		}
		// 1.0 in float16 is 0x3C00 and in bfloat16 0x3F80.
		if got := Bits(h)[0]; got != 0x3C00 {
			t.Errorf("float16 bits of 1 = %#x", got)
		}
		bf := FromBits(BFloat16, []uint16{0x3F80, 0xC000}, 2)
		if diff := cmp.Diff([]float32{1, -2}, bf.Floats()); diff != "" {
			t.Errorf("bfloat16 from bits: %s", diff)
		}
		if got := Scalar(2.5, Float32).Item(); got != 2.5 {
			t.Errorf("scalar item = %v", got)
		}
		tr := Transpose(f) // a strided view must read back in logical order
		if diff := cmp.Diff([]float32{1, 4, 2.5, 5, -3, 6}, Data[float32](tr)); diff != "" {
			t.Errorf("transposed data: %s", diff)
		}
	})
}

func TestWrongDtypeAndSizePanicAsErrors(t *testing.T) {
	err := Do(func() error {
		a := FromSlice([]float32{1, 2})
		defer a.Free()
		_ = Data[int32](a)
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "array is float32, asked for int32") {
		t.Fatalf("err = %v", err)
	}
	err = Do(func() error {
		FromSlice([]float32{1, 2, 3}, 2, 2)
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "3 elements do not fill shape [2 2]") {
		t.Fatalf("err = %v", err)
	}
}

// TestShapeMismatchIsAnError shows a C++ exception returning as a Go error that names the op
// and the shapes, and the process going on.
func TestShapeMismatchIsAnError(t *testing.T) {
	before := LiveArrays()
	err := Do(func() error {
		s := NewScope()
		defer s.Close()
		a := Ones([]int{2, 3}, Float32)
		b := Ones([]int{4, 5}, Float32)
		Matmul(a, b)
		t.Error("matmul of mismatched shapes did not fail")
		return nil
	})
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v, want *Error", err)
	}
	if e.Op != "matmul" || fmt.Sprint(e.Shapes) != "[[2 3] [4 5]]" {
		t.Errorf("error names %s %v", e.Op, e.Shapes)
	}
	if !strings.HasPrefix(err.Error(), "mlx: matmul([2 3], [4 5]): ") {
		t.Errorf("message %q", err)
	}
	if LiveArrays() != before {
		t.Errorf("live arrays %d after the failed block, want %d", LiveArrays(), before)
	}
	inScope(t, func() { // MLX still works
		if got := Sum(Ones([]int{3}, Float32), false).Item(); got != 3 {
			t.Errorf("sum after error = %v", got)
		}
	})
}

func TestFreeIsIdempotentAndCounted(t *testing.T) {
	before, nativeBefore := LiveArrays(), NativeLiveArrays()
	a := Ones([]int{4}, Float32) // off the MLX thread: forwarded, caller owns it
	if LiveArrays() != before+1 || NativeLiveArrays() != nativeBefore+1 {
		t.Fatalf("live %d native %d, want %d %d", LiveArrays(), NativeLiveArrays(), before+1, nativeBefore+1)
	}
	a.Free()
	a.Free()
	if LiveArrays() != before || NativeLiveArrays() != nativeBefore {
		t.Fatalf("live %d native %d after Free, want %d %d", LiveArrays(), NativeLiveArrays(), before, nativeBefore)
	}
	if !a.Freed() {
		t.Error("Freed() is false after Free")
	}
	err := Do(func() error { a.Shape(); return nil })
	if err == nil || !strings.Contains(err.Error(), "already freed") {
		t.Errorf("use after free: %v", err)
	}
}

func TestScopeKeepsOnlyWhatIsKept(t *testing.T) {
	before := LiveArrays()
	var kept *Array
	err := Do(func() error {
		outer := NewScope()
		defer outer.Close()
		func() {
			inner := NewScope()
			defer inner.Close()
			x := Ones([]int{3}, Float32)
			y := MulScalar(x, 2)
			kept = inner.Keep(AddScalar(y, 1))
		}()
		if kept.Freed() {
			t.Error("kept array was freed by the inner scope")
		}
		if LiveArrays() != before+1 {
			t.Errorf("live %d inside outer scope, want %d", LiveArrays(), before+1)
		}
		if got := kept.Floats(); got[0] != 3 {
			t.Errorf("kept = %v", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !kept.Freed() || LiveArrays() != before {
		t.Errorf("outer scope left %d arrays", LiveArrays()-before)
	}
	var owned []*Array
	owned, err = Scoped(func() []*Array { return []*Array{Ones([]int{2}, Float32)} })
	if err != nil || owned[0].Freed() {
		t.Fatalf("Scoped: %v", err)
	}
	owned[0].Free()
	if LiveArrays() != before {
		t.Errorf("leak after Scoped: %d", LiveArrays()-before)
	}
	if err := func() (err error) {
		defer func() { err, _ = recover().(error) }()
		NewScope()
		return nil
	}(); err == nil || !strings.Contains(err.Error(), "inside mlx.Do") {
		t.Errorf("NewScope off the MLX thread: %v", err)
	}
}

// finiteDifference estimates d f / d in[arg][i] by central differences in float64 on the Go
// side of the inputs.
func finiteDifference(fn Func, in [][]float32, shapes [][]int, arg, i int, h float32) float64 {
	eval := func(delta float32) float64 {
		var v float64
		Do(func() error {
			s := NewScope()
			defer s.Close()
			args := make([]*Array, len(in))
			for j := range in {
				data := append([]float32(nil), in[j]...)
				if j == arg {
					data[i] += delta
				}
				args[j] = FromSlice(data, shapes[j]...)
			}
			v = fn(args)[0].Item()
			return nil
		})
		return v
	}
	return (eval(h) - eval(-h)) / float64(2*h)
}

func TestGradientsMatchFiniteDifferences(t *testing.T) {
	shapes := [][]int{{3, 5}, {5, 4}, {4}}
	in := make([][]float32, len(shapes))
	for j, s := range shapes {
		n := 1
		for _, d := range s {
			n *= d
		}
		in[j] = make([]float32, n)
		for i := range in[j] {
			in[j][i] = float32(math.Sin(float64(7*j+3*i+1))) * 1.5
		}
	}
	var grads [][]float32
	inScope(t, func() {
		args := make([]*Array, len(in))
		for j := range in {
			args[j] = FromSlice(in[j], shapes[j]...)
		}
		_, g := ValueAndGrad(compositeForTest)(args)
		for _, a := range g {
			grads = append(grads, a.Floats())
		}
	})
	checked := 0
	for arg := range in {
		for i := range in[arg] {
			fd := finiteDifference(compositeForTest, in, shapes, arg, i, 1e-2)
			if d := math.Abs(fd - float64(grads[arg][i])); d > 2e-3+2e-2*math.Abs(fd) {
				t.Errorf("d/d input%d[%d]: autograd %v, finite difference %v", arg, i, grads[arg][i], fd)
			}
			checked++
		}
	}
	if checked != 15+20+4 {
		t.Fatalf("checked %d partials", checked)
	}
}

func TestVJPAndCheckpointAndCompileAgree(t *testing.T) {
	inScope(t, func() {
		x := FromSlice([]float32{0.5, -1, 2, 0.25, 1.5, -0.75}, 2, 3)
		w := FromSlice([]float32{1, -2, 0.5, 0.3, 0.7, -1.1}, 3, 2)
		b := FromSlice([]float32{0.1, -0.2})
		in := []*Array{FromSlice([]float32{0.5, -1, 2, 0.25, 1.5}, 1, 5), FromSlice(make([]float32, 20), 5, 4), FromSlice([]float32{1, 2, 3, 4})}
		_ = in
		mlp := func(in []*Array) []*Array {
			return []*Array{Sum(Tanh(Add(Matmul(in[0], in[1]), in[2])), false)}
		}
		vals, plain := ValueAndGrad(mlp)([]*Array{x, w, b})

		ck := Checkpoint(mlp)
		defer ck.Free()
		cvals, cgrads := ValueAndGrad(ck.AsFunc())([]*Array{x, w, b})

		cp := Compile(mlp, false)
		defer cp.Free()
		compiled := cp.Call(x, w, b)

		outs, vjps := VJP(mlp, []*Array{x, w, b}, []*Array{Scalar(1, Float32)})

		want := vals[0].Item()
		for name, got := range map[string]float64{"checkpoint": cvals[0].Item(), "compile": compiled[0].Item(), "vjp": outs[0].Item()} {
			if math.Abs(got-want) > 1e-6 {
				t.Errorf("%s value %v, want %v", name, got, want)
			}
		}
		for i := range plain {
			p := plain[i].Floats()
			if diff := cmp.Diff(p, cgrads[i].Floats()); diff != "" {
				t.Errorf("checkpoint grad %d: %s", i, diff)
			}
			if diff := cmp.Diff(p, vjps[i].Floats()); diff != "" {
				t.Errorf("vjp %d: %s", i, diff)
			}
		}
	})
}

func TestCompileShapelessServesNewShapes(t *testing.T) {
	inScope(t, func() {
		double := Compile(func(in []*Array) []*Array { return []*Array{MulScalar(in[0], 2)} }, true)
		defer double.Free()
		for n := 1; n <= 4; n++ {
			got := double.Call(Ones([]int{n}, Float32))[0]
			if got.Size() != n || got.Floats()[n-1] != 2 {
				t.Errorf("shape %d: %v", n, got.Floats())
			}
		}
	})
}

func TestPanicInsideClosureIsAnError(t *testing.T) {
	before := LiveArrays()
	err := Do(func() error {
		s := NewScope()
		defer s.Close()
		ValueAndGrad(func(in []*Array) []*Array {
			Ones([]int{2}, Float32) // made inside the closure, must not leak
			panic("boom")
		})([]*Array{Ones([]int{2}, Float32)})
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "panic in function: boom") {
		t.Fatalf("err = %v", err)
	}
	if !strings.HasPrefix(err.Error(), "mlx: value_and_grad([2]): ") {
		t.Errorf("error does not name the transform: %q", err)
	}
	if LiveArrays() != before {
		t.Errorf("%d arrays leaked", LiveArrays()-before)
	}
}

func TestQuantizeErrorWithinBound(t *testing.T) {
	for _, q := range []Quantization{{32, 2, ""}, {32, 3, ""}, {32, 4, ""}, {64, 4, ""}, {128, 4, ""}, {64, 5, ""}, {64, 6, ""}, {64, 8, ""}} {
		t.Run(fmt.Sprintf("g%d_b%d", q.GroupSize, q.Bits), func(t *testing.T) {
			inScope(t, func() {
				key := RandomKey(7)
				w := Normal(key, []int{16, 256}, Float32, 0, 0.05)
				wq, scales, biases := Quantize(w, q)
				if got, want := wq.Shape(), []int{16, 256 * q.Bits / 32}; !cmp.Equal(got, want) {
					t.Errorf("packed shape %v, want %v", got, want)
				}
				if got, want := scales.Shape(), []int{16, 256 / q.GroupSize}; !cmp.Equal(got, want) {
					t.Errorf("scales shape %v, want %v", got, want)
				}
				deq := Dequantize(wq, scales, biases, q, -1).Floats()
				orig := w.Floats()
				sc := scales.Floats()
				// Affine quantization puts the group's larger-magnitude end exactly on the grid
				// (so zero is representable) and steps by scale from there: values within the
				// grid are off by at most half a step, values past its far end by the shortfall.
				levels := float64(int(1)<<q.Bits - 1)
				for g := 0; g < len(sc); g++ {
					lo, hi := math.Inf(1), math.Inf(-1)
					for _, v := range orig[g*q.GroupSize : (g+1)*q.GroupSize] {
						lo, hi = math.Min(lo, float64(v)), math.Max(hi, float64(v))
					}
					step := math.Abs(float64(sc[g]))
					bound := step/2 + math.Max(0, (hi-lo)-levels*step) + 1e-6
					for i := g * q.GroupSize; i < (g+1)*q.GroupSize; i++ {
						if d := math.Abs(float64(orig[i] - deq[i])); d > bound {
							t.Errorf("element %d: error %g above the bound %g", i, d, bound)
							return
						}
					}
				}
				x := Normal(RandomKey(8), []int{3, 256}, Float32, 0, 1)
				qm := QuantizedMatmul(x, wq, scales, biases, true, q).Floats()
				dm := Matmul(x, Transpose(Dequantize(wq, scales, biases, q, -1))).Floats()
				// On a GPU the two paths use different kernels (TF32 tensor cores for the plain
				// product): measured on an H200 they differ by up to 1e-3 relative.
				tol := 1e-4
				if DefaultDevice().Type == GPU {
					tol = 2e-3
				}
				for i := range qm {
					if d := math.Abs(float64(qm[i] - dm[i])); d > tol*math.Max(1, math.Abs(float64(dm[i]))) {
						t.Errorf("quantized_matmul[%d] = %v, dequantize+matmul = %v", i, qm[i], dm[i])
						return
					}
				}
			})
		})
	}
}

func TestSafetensorsRoundTripEveryDtype(t *testing.T) {
	path := filepath.Join(t.TempDir(), "all.safetensors")
	meta := map[string]string{"format": "mlx", "note": "round trip"}
	want := map[string][]float32{}
	inScope(t, func() {
		base := FromSlice([]float32{1, -2, 3.5, 0, 7, -0.25}, 2, 3)
		tensors := map[string]*Array{}
		for _, dt := range []Dtype{Bool, Uint8, Uint16, Uint32, Uint64, Int8, Int16, Int32, Int64, Float16, Float32, BFloat16} {
			src := base
			if dt == Uint8 || dt == Uint16 || dt == Uint32 || dt == Uint64 {
				src = Abs(base)
			}
			a := AsType(src, dt)
			tensors[dt.String()] = a
			want[dt.String()] = a.Floats()
		}
		if err := SaveSafetensors(path, tensors, meta); err != nil {
			t.Fatal(err)
		}
	})
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("save left %d files, want only the target", len(entries))
	}
	inScope(t, func() {
		got, gotMeta, err := LoadSafetensors(path)
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			for _, a := range got {
				a.Free()
			}
		}()
		if diff := cmp.Diff(meta, gotMeta); diff != "" {
			t.Errorf("metadata: %s", diff)
		}
		if len(got) != len(want) {
			t.Errorf("%d tensors, want %d", len(got), len(want))
		}
		for name, w := range want {
			a := got[name]
			if a == nil {
				t.Errorf("tensor %s missing", name)
				continue
			}
			if a.Dtype().String() != name {
				t.Errorf("tensor %s came back as %s", name, a.Dtype())
			}
			if diff := cmp.Diff(w, a.Floats()); diff != "" {
				t.Errorf("tensor %s: %s", name, diff)
			}
		}
	})
}

func TestSafetensorsWrittenByPythonLoad(t *testing.T) {
	raw, err := os.ReadFile("testdata/python_tensors.json")
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]fixtureArray
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	tensors, meta, err := LoadSafetensors("testdata/python.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, a := range tensors {
			a.Free()
		}
	}()
	if diff := cmp.Diff(map[string]string{"format": "mlx", "producer": "python"}, meta); diff != "" {
		t.Errorf("metadata: %s", diff)
	}
	if len(tensors) != len(want) {
		t.Errorf("%d tensors, want %d", len(tensors), len(want))
	}
	inScope(t, func() {
		for name, w := range want {
			a := tensors[name]
			if a == nil {
				t.Errorf("missing %s", name)
				continue
			}
			if a.Dtype().String() != w.Dtype || !cmp.Equal(a.Shape(), w.Shape) {
				t.Errorf("%s: %s %v, want %s %v", name, a.Dtype(), a.Shape(), w.Dtype, w.Shape)
				continue
			}
			f := AsType(a, Float64)
			got := Data[float64](f)
			if diff := cmp.Diff(w.Data, got); diff != "" {
				t.Errorf("%s: %s", name, diff)
			}
		}
	})
}

func TestLoadSafetensorsErrorNamesFile(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.safetensors")
	os.WriteFile(bad, []byte("not a safetensors file"), 0o644)
	_, _, err := LoadSafetensors(bad)
	if err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("err = %v", err)
	}
}

func TestMemoryFiguresFollowAllocation(t *testing.T) {
	if err := Do(func() error {
		ClearCache()
		base := Memory()
		a := Zeros([]int{1 << 20}, Float32) // 4 MiB
		Eval(a)
		grown := Memory()
		if grown.Active < base.Active+4<<20 {
			t.Errorf("active %d after a 4 MiB array, was %d", grown.Active, base.Active)
		}
		if grown.Peak < grown.Active {
			t.Errorf("peak %d below active %d", grown.Peak, grown.Active)
		}
		a.Free()
		// a GPU backend hands a buffer back once the device has finished with it
		Synchronize()
		freed := Memory()
		if freed.Active > base.Active {
			t.Errorf("active %d after Free, was %d before", freed.Active, base.Active)
		}
		if freed.Cache < 4<<20 {
			t.Errorf("cache %d: the freed buffer should be cached", freed.Cache)
		}
		ClearCache()
		if c := Memory().Cache; c != 0 {
			t.Errorf("cache %d after ClearCache", c)
		}
		ResetPeakMemory()
		if p := Memory(); p.Peak > p.Active {
			t.Errorf("peak %d above active %d after reset", p.Peak, p.Active)
		}
		prev := SetCacheLimit(1 << 30)
		if again := SetCacheLimit(prev); again != 1<<30 {
			t.Errorf("SetCacheLimit returned %d, want the limit set before", again)
		}
		prevLimit := SetMemoryLimit(8 << 30)
		if MemoryLimit() != 8<<30 {
			t.Errorf("memory limit %d", MemoryLimit())
		}
		SetMemoryLimit(prevLimit)
		SetWiredLimit(0)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// The cache limit bounds what MLX keeps of freed buffers (memory.cache_limit). MLX's GPU
// allocators check it before adding a buffer, so there the cache may pass it by one buffer:
// of three freed 4 MiB buffers under a 2 MiB limit at most one is kept (two on no backend),
// and a 1 MiB buffer, which fits, is kept.
func TestCacheLimitBoundsTheCache(t *testing.T) {
	if err := Do(func() error {
		ClearCache()
		defer SetCacheLimit(SetCacheLimit(2 << 20))
		free := func(n, elems int) uint64 {
			arrays := make([]*Array, n)
			for i := range arrays {
				arrays[i] = Zeros([]int{elems}, Float32)
			}
			Eval(arrays...)
			for _, a := range arrays {
				a.Free()
			}
			Synchronize() // a GPU backend hands a buffer back once the device has finished with it
			defer ClearCache()
			return Memory().Cache
		}
		if got := free(3, 1<<20); got > 2<<20+4<<20+4096 {
			t.Errorf("cache %d bytes after freeing three 4 MiB buffers under a 2 MiB cache limit", got)
		}
		if got := free(1, 1<<18); got < 1<<20 {
			t.Errorf("cache %d bytes after freeing a 1 MiB buffer under a 2 MiB cache limit: it fits and should be kept", got)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// mlpStep is one SGD step of a two-layer MLP on a fixed batch: the loop shape of training.
func mlpStep(params []*Array, x, y *Array, lr float64) (loss *Array, next []*Array) {
	lossFn := func(in []*Array) []*Array {
		h := Tanh(Add(Matmul(x, in[0]), in[1]))
		out := Add(Matmul(h, in[2]), in[3])
		return []*Array{Mean(Square(Subtract(out, y)), false)}
	}
	vals, grads := ValueAndGrad(lossFn)(params)
	next = make([]*Array, len(params))
	for i, p := range params {
		next[i] = Subtract(p, MulScalar(grads[i], lr))
	}
	return vals[0], next
}

// trainStep runs one SGD step in its own scope, replacing params in place with the evaluated
// new ones and freeing the old: the ownership pattern of a training loop.
func trainStep(params []*Array, x, y *Array) float64 {
	s := NewScope()
	defer s.Close()
	loss, next := mlpStep(params, x, y, 0.05)
	Eval(append(next, loss)...)
	s.Keep(next...)
	Free(params...)
	copy(params, next)
	return loss.Item()
}

func mlpParams(key uint64, in, hidden, out int) []*Array {
	k := RandomKey(key)
	defer k.Free()
	k1, k2 := SplitKey(k)
	defer Free(k1, k2)
	return []*Array{
		Normal(k1, []int{in, hidden}, Float32, 0, 0.1), Zeros([]int{hidden}, Float32),
		Normal(k2, []int{hidden, out}, Float32, 0, 0.1), Zeros([]int{out}, Float32),
	}
}

// TestScopedTrainingLoopIsFlat runs 10,000 value-and-grad steps, each in its own scope, and
// checks that live handles and active memory end where they were after warm-up.
func TestScopedTrainingLoopIsFlat(t *testing.T) {
	err := Do(func() error {
		params := mlpParams(1, 16, 32, 4)
		x := Normal(RandomKey(2), []int{8, 16}, Float32, 0, 1)
		y := Normal(RandomKey(3), []int{8, 4}, Float32, 0, 1)
		defer Free(append(params, x, y)...)
		step := func() float64 { return trainStep(params, x, y) }
		first := 0.0
		for i := 0; i < 100; i++ { // warm-up fills the allocator cache
			if l := step(); i == 0 {
				first = l
			}
		}
		Synchronize() // a GPU backend frees buffers once the device is done with them
		liveBefore, memBefore := LiveArrays(), Memory().Active
		var last float64
		for i := 0; i < 10000; i++ {
			last = step()
		}
		Synchronize()
		if d := LiveArrays() - liveBefore; d != 0 {
			t.Errorf("live handles changed by %d over 10,000 steps", d)
		}
		if memAfter := Memory().Active; memAfter != memBefore {
			t.Errorf("active memory %d after 10,000 steps, %d before", memAfter, memBefore)
		}
		if !(last < first) {
			t.Errorf("loss did not fall: %v → %v", first, last)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentCallers checks that ops from many goroutines are serialised onto the MLX
// thread and each gets its own correct result.
func TestConcurrentCallers(t *testing.T) {
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				v := float32(g*100 + i)
				a := FromSlice([]float32{v, 1, 2}, 3)
				b := MulScalar(a, 2) // forwarded op by op
				got := Data[float32](b)
				Free(a, b)
				if got[0] != 2*v || got[2] != 4 {
					errs <- fmt.Errorf("goroutine %d step %d: %v", g, i, got)
					return
				}
				var sum float64
				if err := Do(func() error { // a whole block on the MLX thread
					s := NewScope()
					defer s.Close()
					sum = Sum(Full([]int{g + 1}, float64(i), Float32), false).Item()
					return nil
				}); err != nil {
					errs <- err
					return
				}
				if sum != float64((g+1)*i) {
					errs <- fmt.Errorf("goroutine %d: sum %v", g, sum)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// The default device's description: a CUDA GPU has a name and a compute capability, which
// the memory estimate reads (cuBLAS's workspace depends on it); other devices have none.
func TestDefaultDeviceInfo(t *testing.T) {
	info := DefaultDeviceInfo()
	t.Logf("%+v", info)
	cuda := DefaultDevice().Type == GPU && goruntime.GOOS != "darwin"
	if cuda && (info.Name == "" || info.ComputeCapability[0] < 5) {
		t.Errorf("CUDA device described as %+v", info)
	}
	if !cuda && info.ComputeCapability != [2]int{} {
		t.Errorf("compute capability %v outside CUDA", info.ComputeCapability)
	}
	defer SetDefaultDevice(DefaultDevice())
	SetDefaultDevice(Device{Type: CPU})
	if cpu := DefaultDeviceInfo(); cpu.ComputeCapability != [2]int{} {
		t.Errorf("the CPU described as %+v", cpu)
	}
}

func TestDeviceAndVersion(t *testing.T) {
	if !strings.HasPrefix(Version(), "0.32.") {
		t.Errorf("version %q", Version())
	}
	d := DefaultDevice()
	if !GPUAvailable() && d.Type != CPU {
		t.Errorf("default device %v without a GPU", d)
	}
	SetDefaultDevice(Device{Type: CPU})
	if DefaultDevice() != (Device{Type: CPU}) {
		t.Errorf("device after SetDefaultDevice: %v", DefaultDevice())
	}
	SetDefaultDevice(d)

	cpu := Device{Type: CPU}
	orig := DefaultStream(cpu)
	s := NewStream(cpu)
	if s.Index == orig.Index {
		t.Fatalf("new stream has the default stream's index %d", s.Index)
	}
	SetDefaultStream(s)
	if got := DefaultStream(cpu); got != s {
		t.Errorf("default stream %v, want %v", got, s)
	}
	inScope(t, func() { // ops run on the new stream
		if got := Sum(Ones([]int{5}, Float32), false).Item(); got != 5 {
			t.Errorf("sum on a new stream = %v", got)
		}
	})
	SetDefaultStream(orig)
}

// Depends passes its first input through, value and gradient, and sends the second no
// gradient: it only orders evaluation.
func TestDependsPassesThrough(t *testing.T) {
	var value, ga, gd []float32
	inScope(t, func() {
		f := func(args []*Array) []*Array {
			x := Depends(args[0], args[1])
			sq := Multiply(x, x)
			return []*Array{Sum(sq, false)}
		}
		a := FromSlice([]float32{1, -2, 3}, 3)
		dep := FromSlice([]float32{5, 6}, 2)
		vals, g := ValueAndGrad(f, 0, 1)([]*Array{a, dep})
		value, ga, gd = vals[0].Floats(), g[0].Floats(), g[1].Floats()
	})
	if value[0] != 14 || !slices.Equal(ga, []float32{2, -4, 6}) || !slices.Equal(gd, []float32{0, 0}) {
		t.Errorf("value %v, gradient %v and %v; want 14, [2 -4 6] and [0 0]", value, ga, gd)
	}
}
