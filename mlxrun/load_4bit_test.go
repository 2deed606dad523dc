package mlxrun

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// load-4bit's matmul reaches the model, as the run log says, and dequantized products
// compute the same losses (bit for bit on the CPU backend, whose quantized matmul dequantizes
// too); auto keeps MLX's quantized kernels off CUDA. That the copies are made is
// model.TestDenseProductsMatchQuantized's part.
func TestMatmulSettingReachesTheModel(t *testing.T) {
	src := governedRecipe(t, 4, "2GB", quickstartData(), "")
	runs := map[string]runResult{}
	for _, mode := range []string{"auto", "quantized", "dequantized"} {
		runs[mode] = runRecipe(t, t.TempDir(), src, "stages.load.with.matmul="+mode)
		if r := runs[mode]; r.ExitCode != 0 || len(r.metrics) != 4 {
			t.Fatalf("matmul %s: exit %d, %d steps", mode, r.ExitCode, len(r.metrics))
		}
		log, err := os.ReadFile(filepath.Join(runs[mode].RunDir, "run.log"))
		if err != nil {
			t.Fatal(err)
		}
		want := `"dequantized_products":"blocks false, head false"`
		if mode == "dequantized" {
			want = `"dequantized_products":"blocks true, head true"`
		}
		if !strings.Contains(string(log), want) {
			t.Errorf("matmul %s: run.log lacks %s", mode, want)
		}
	}
	q, d := runs["quantized"].metrics, runs["dequantized"].metrics
	for i := range q {
		if q[i].Loss != d[i].Loss || runs["auto"].metrics[i].Loss != q[i].Loss {
			t.Errorf("step %d: losses %v (quantized), %v (dequantized), %v (auto)", i+1, q[i].Loss, d[i].Loss, runs["auto"].metrics[i].Loss)
		}
	}
}
