package stages

import (
	"github.com/yai-dev/yai/modeldir"
	"github.com/yai-dev/yai/stages/stage"
)

// Load4BitConfig configures loading the recipe's 4-bit model (mlx-community format).
type Load4BitConfig struct {
	ComputeDtype string `yaml:"compute_dtype" default:"auto" enum:"auto,checkpoint,float32,float16,bfloat16" doc:"dtype the quantization scales and biases, norms and other floating tensors are converted to once at load (activations follow it); auto is float32 on the CPU backend, whose quantized matmul is ~70× slower on half-precision scales, and the checkpoint's dtype on a GPU"`
	Matmul       string `yaml:"matmul" default:"auto" enum:"auto,quantized,dequantized" doc:"how quantized layers multiply inputs of 32 rows or more: quantized runs MLX's quantized kernels; dequantized dequantizes the weight for each product and runs the dense GEMM (on CUDA 2.5-4× faster at 1,024 rows), its copies adding to the step's peak as the memory budget counts; auto is dequantized on the CUDA backend for the parts (the blocks' projections, the head) whose copies the limit holds with the estimate's 15% margin, quantized otherwise"`
}

// Products says which quantized layers multiply through dequantized weights: the blocks'
// projections, the output head.
type Products struct{ Blocks, Head bool }

// Products resolves matmul on a CUDA backend or not, where the limit holds the copies of
// room (see RunInfo.ProductsRoom).
func (c *Load4BitConfig) Products(cuda bool, room Products) Products {
	switch {
	case c.Matmul == "dequantized":
		return Products{Blocks: true, Head: true}
	case MatmulAuto(c.Matmul) && cuda:
		return room
	}
	return Products{}
}

// MatmulAuto reports whether a matmul setting leaves the choice to the backend and the limit.
func MatmulAuto(setting string) bool { return setting == "auto" || setting == "" }

// ResolveDtype resolves compute_dtype for a checkpoint whose floating tensors are in
// checkpoint (a dtype name such as "float16"), on a GPU backend or not.
func (c *Load4BitConfig) ResolveDtype(checkpoint string, gpu bool) string {
	switch c.ComputeDtype {
	case "checkpoint":
		return checkpoint
	case "auto", "":
		if gpu {
			return checkpoint
		}
		return "float32"
	}
	return c.ComputeDtype
}

// Load4Bit loads the recipe's model.
var Load4Bit = Define(Def[Load4BitConfig]{
	Name:    "load-4bit",
	Summary: "load the recipe's 4-bit model (weights stay quantized)",
	Doc: "Reads config.json and the safetensors shards of the model named by the recipe's `model:` " +
		"and builds the network with quantized linear layers (a layer is quantized when its scales " +
		"are present). Floating tensors are converted once to compute_dtype, which activations " +
		"then use. A tensor the model does not use is always an error. Runs once, at setup.",
	Events: []stage.Event{stage.Setup},
	Once:   true,
	CheckModel: func(c *Load4BitConfig, m *modeldir.Info) []Problem {
		if m.Config.Quantization == nil {
			return []Problem{Warnf("kind", "the model has no quantization in config.json; load-4bit expects a quantized model")}
		}
		return nil
	},
	Workload: func(c *Load4BitConfig, w *Workload) {
		w.ComputeDtype, w.Matmul = c.ComputeDtype, c.Matmul
		w.Products = c.Products(false, Products{})
	},
})
