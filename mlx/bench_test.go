package mlx

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"testing"

	"github.com/yai-dev/yai/internal/testenv"
)

// pythonSeconds runs testdata/bench_reference.py and returns its seconds per iteration.
func pythonSeconds(b *testing.B, args ...any) float64 {
	b.Helper()
	cmdArgs := []string{"testdata/bench_reference.py"}
	for _, a := range args {
		cmdArgs = append(cmdArgs, fmt.Sprint(a))
	}
	out, err := exec.Command(testenv.Python(b), cmdArgs...).Output()
	if err != nil {
		b.Fatalf("python reference: %v", err)
	}
	var r struct{ Seconds float64 }
	if err := json.Unmarshal(out, &r); err != nil {
		b.Fatalf("python reference output %q: %v", out, err)
	}
	return r.Seconds
}

// BenchmarkOp measures one bound op through cgo (graph construction, no evaluation) on the
// MLX thread, and forwarded from another goroutine, against mx.add in Python.
func BenchmarkOp(b *testing.B) {
	py := pythonSeconds(b, "op", 200000)
	b.Run("on-thread", func(b *testing.B) {
		Do(func() error {
			x, y := Ones([]int{4}, Float32), Ones([]int{4}, Float32)
			defer Free(x, y)
			Eval(x, y)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				Add(x, y).Free()
			}
			b.StopTimer()
			return nil
		})
		reportRatio(b, py)
	})
	b.Run("forwarded", func(b *testing.B) {
		x, y := Ones([]int{4}, Float32), Ones([]int{4}, Float32)
		defer Free(x, y)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			Add(x, y).Free()
		}
		b.StopTimer()
		reportRatio(b, py)
	})
}

// reportRatio adds the Python time per op and yai's speed relative to it (above 1 is faster).
func reportRatio(b *testing.B, pySeconds float64) {
	goSeconds := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(pySeconds*1e9, "python-ns/op")
	b.ReportMetric(pySeconds/goSeconds, "speed-vs-python")
}

// BenchmarkMLPStep is one value-and-grad SGD step of a two-layer MLP, evaluated, in Go and
// in Python mlx, same shapes, same run. Memory must stay flat across iterations.
func BenchmarkMLPStep(b *testing.B) {
	for _, size := range []struct{ in, hidden, out, batch int }{{16, 32, 4, 8}, {512, 1024, 64, 64}} {
		name := strconv.Itoa(size.in) + "x" + strconv.Itoa(size.hidden)
		b.Run(name, func(b *testing.B) {
			py := pythonSeconds(b, "mlp", size.in, size.hidden, size.out, size.batch, 200)
			var liveDrift int64
			var memDrift int64
			Do(func() error {
				params := mlpParams(1, size.in, size.hidden, size.out)
				x := Normal(RandomKey(2), []int{size.batch, size.in}, Float32, 0, 1)
				y := Normal(RandomKey(3), []int{size.batch, size.out}, Float32, 0, 1)
				defer Free(append(params, x, y)...)
				step := func() { trainStep(params, x, y) }
				for i := 0; i < 20; i++ {
					step()
				}
				live, mem := LiveArrays(), Memory().Active
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					step()
				}
				b.StopTimer()
				liveDrift, memDrift = LiveArrays()-live, int64(Memory().Active)-int64(mem)
				return nil
			})
			reportRatio(b, py)
			b.ReportMetric(float64(liveDrift), "live-handle-drift")
			b.ReportMetric(float64(memDrift), "active-bytes-drift")
		})
	}
}
