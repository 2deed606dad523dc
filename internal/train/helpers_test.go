package train

import (
	"math"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/testenv"
	"github.com/yai-dev/yai/mlx"
)

func runPython(tb testing.TB, args ...string) {
	tb.Helper()
	cmd := exec.Command(testenv.Python(tb), args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("%v: %v\n%s", args, err, out)
	}
}

// makeModel writes a random 4-bit Llama (and, with dataRows > 0, a text dataset) with
// mlx-lm's own code and returns the model and data directories.
func makeModel(tb testing.TB, dtype string, layers, hidden, dataRows int) (modelDir, dataDir string) {
	tb.Helper()
	dir := tb.TempDir()
	modelDir, dataDir = filepath.Join(dir, "model"), filepath.Join(dir, "data")
	args := []string{"testdata/make_model.py", modelDir, dtype, strconv.Itoa(layers), strconv.Itoa(hidden)}
	if dataRows > 0 {
		args = append(args, dataDir, strconv.Itoa(dataRows))
	}
	runPython(tb, args...)
	return modelDir, dataDir
}

// loadModel loads a model made by makeModel (float32, hidden size 64, no data) with the given
// number of layers; the test's cleanup frees it.
func loadModel(tb testing.TB, layers int) *model.Model {
	tb.Helper()
	modelDir, _ := makeModel(tb, "float32", layers, 64, 0)
	m, err := model.Load(modelDir, model.LoadOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(m.Free)
	return m
}

// batchFrom turns a (B, L) token array and (B, 2) offsets/lengths array into a Batch.
func batchFrom(tokens, lengths *mlx.Array) Batch {
	shape := tokens.Shape()
	ol := lengths.Ints()
	b := Batch{Tokens: tokens.Ints(), Rows: shape[0], Cols: shape[1]}
	for r := range b.Rows {
		b.Offsets = append(b.Offsets, int(ol[2*r]))
		b.Lengths = append(b.Lengths, int(ol[2*r+1]))
	}
	return b
}

// maxDiff is the largest |a-b| relative to max(1, |b|) of two arrays of the same shape; arrays
// of different shapes differ infinitely, so a comparison never passes on a common prefix.
func maxDiff(a, b *mlx.Array) float64 {
	if !slices.Equal(a.Shape(), b.Shape()) {
		return math.Inf(1)
	}
	return maxDiffValues(a.Floats(), b.Floats())
}

// maxDiffValues is maxDiff over flat values, which must be as many.
func maxDiffValues(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	worst := 0.0
	for i := range a {
		d := math.Abs(float64(a[i])-float64(b[i])) / math.Max(1, math.Abs(float64(b[i])))
		worst = max(worst, d)
	}
	return worst
}
