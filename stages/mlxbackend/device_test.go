package mlxbackend

import (
	"path/filepath"
	"testing"

	"github.com/yai-dev/yai/memplan"
	"github.com/yai-dev/yai/mlx"
	"github.com/yai-dev/yai/recipe"
)

// The dry run estimates for the device the program's environment computes on: the device
// MLX reports here, and a CUDA device's cuBLAS workspace when the environment has one.
func TestValidateEstimatesForTheEnvironmentsDevice(t *testing.T) {
	c := budgetCase{name: "device", hidden: 128, inter: 256, vocab: 1000, heads: 4, kv: 2, layers: 2, loraLayers: 1, rank: 4, batch: 1, seq: 64}
	dir := t.TempDir()
	c.writeModel(t, filepath.Join(dir, "model"))
	src := []byte(c.recipe(filepath.Join(dir, "model"), ""))
	validate := func(env recipe.ValidateOptions) *recipe.Plan {
		p, ds := recipe.ValidateSource(filepath.Join(dir, "device.yaml"), src, nil, env)
		if p == nil || p.Decision.Budget == nil {
			t.Fatalf("recipe invalid:\n%s", ds.Format())
		}
		return p
	}
	here := Device()
	if here.GPU() != onGPU() {
		t.Errorf("Device() = %+v on a default device of type %v", here, mlx.DefaultDevice().Type)
	}
	env := Environment()
	p := validate(recipe.ValidateOptions{SkipData: true, Env: env})
	if p.Decision.Device != here || p.Decision.Budget.Workspace != here.MatmulWorkspace {
		t.Errorf("plan on %+v with workspace %d, want %+v", p.Decision.Device, p.Decision.Budget.Workspace, here)
	}
	env.SetDevice(memplan.CUDADevice("H100", 9, 0))
	p = validate(recipe.ValidateOptions{SkipData: true, Env: env})
	if p.Decision.Device.Backend != "cuda" || p.Decision.Budget.Workspace != 32<<20 {
		t.Errorf("plan on %+v with workspace %d, want CUDA's 32 MiB", p.Decision.Device, p.Decision.Budget.Workspace)
	}
}
