package stages

import (
	"github.com/yai-dev/yai/memplan"
	"github.com/yai-dev/yai/modeldir"
	"github.com/yai-dev/yai/stages/stage"
)

// Load4BitConfig configures loading the recipe's 4-bit model (mlx-community format).
type Load4BitConfig struct {
	ComputeDtype   string `yaml:"compute_dtype" default:"auto" enum:"auto,checkpoint,float32,float16,bfloat16" doc:"dtype the quantization scales and biases, norms and other floating tensors are converted to once at load (activations follow it); auto is float32 on the CPU backend, whose quantized matmul is ~70× slower on half-precision scales, and the checkpoint's dtype on a GPU"`
	Matmul         string `yaml:"matmul" default:"auto" enum:"auto,quantized,dequantized" doc:"how quantized layers multiply inputs of 32 rows or more: quantized runs MLX's quantized kernels; dequantized dequantizes the weight for each product and runs the dense GEMM (on CUDA 2.5-4× faster at 1,024 rows), its copies adding to the step's peak as the memory budget counts; auto is dequantized on the CUDA backend for the parts (the blocks' projections, the head) whose copies the limit holds with the estimate's 15% margin, quantized otherwise"`
	SequenceChunks string `yaml:"sequence_chunks" default:"auto" enum:"auto,off" doc:"how long rows are computed: auto takes attention a chunk of queries at a time (forward and backward, never a sequence × sequence tensor per head) and the MLP a chunk of rows at a time once a whole row's scores or MLP tensors would pass 256 MB, in chunks of at most 64 MB; off computes whole rows (the same results, more memory)"`
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
	Workload: func(c *Load4BitConfig, w *memplan.Workload) {
		w.ComputeDtype, w.Matmul = c.ComputeDtype, c.Matmul // the plan resolves them
		w.SequenceChunks = c.SequenceChunks
	},
})
