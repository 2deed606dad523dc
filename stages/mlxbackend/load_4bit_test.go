package mlxbackend

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yai-dev/yai/memplan"
	"github.com/yai-dev/yai/recipe"
)

// load-4bit's matmul reaches the model, as the run log says, and dequantized products
// compute the same losses: bit for bit on the CPU backend, whose quantized matmul dequantizes
// too, and to splitLossTol on a GPU, where float32 GEMMs run on TF32 tensor cores. auto keeps
// MLX's quantized kernels off CUDA; on CUDA it dequantizes what the dry run's budget counts.
// That the copies are made is model.TestDenseProductsMatchQuantized's part.
func TestMatmulSettingReachesTheModel(t *testing.T) {
	src := governedRecipe(t, 4, "2GB", quickstartData(), "")
	products := map[string]memplan.Products{"quantized": {}, "dequantized": {Blocks: true, Head: true}}
	plan, ds := recipe.ValidateSource(filepath.Join(t.TempDir(), "recipe.yaml"), []byte(src), []string{"stages.load.with.matmul=auto"}, recipe.ValidateOptions{Env: Environment()})
	if plan == nil || plan.Decision.Budget == nil {
		t.Fatalf("recipe invalid:\n%s", ds.Format())
	}
	products["auto"] = plan.Decision.Products
	if cuda := plan.Decision.Device.Backend == "cuda"; cuda == (products["auto"] == memplan.Products{}) {
		t.Fatalf("on %s the plan decides the products %+v for matmul: auto", plan.Decision.Device.Name, products["auto"])
	}
	runs := map[string]runResult{}
	for mode, p := range products {
		runs[mode] = runRecipe(t, t.TempDir(), src, "stages.load.with.matmul="+mode)
		if r := runs[mode]; r.ExitCode != 0 || len(r.metrics) != 4 {
			t.Fatalf("matmul %s: exit %d, %d steps", mode, r.ExitCode, len(r.metrics))
		}
		log, err := os.ReadFile(filepath.Join(runs[mode].RunDir, "run.log"))
		if err != nil {
			t.Fatal(err)
		}
		dense := p.DenseBlocks(plan.Model.Config.NumHiddenLayers, plan.Decision.Budget.Blocks)
		if want := fmt.Sprintf(`"dequantized_products":"%d blocks, head %v"`, dense, p.Head); !strings.Contains(string(log), want) {
			t.Errorf("matmul %s: run.log lacks %s", mode, want)
		}
	}
	tol := 0.0
	if onGPU() {
		tol = splitLossTol()
	}
	agree := func(a, b float64) bool { return math.Abs(a-b) <= tol*math.Abs(b) }
	q, d, a := runs["quantized"].metrics, runs["dequantized"].metrics, runs["auto"].metrics
	for i := range q {
		if !agree(float64(d[i].Loss), float64(q[i].Loss)) || !agree(float64(a[i].Loss), float64(q[i].Loss)) {
			t.Errorf("step %d: losses %v (quantized), %v (dequantized), %v (auto)", i+1, q[i].Loss, d[i].Loss, a[i].Loss)
		}
	}
}
