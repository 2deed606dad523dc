package main

import (
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/yai-dev/yai/internal/ggufimport"
	"github.com/yai-dev/yai/mlx"
)

func init() {
	register(command{name: "import", summary: "convert a GGUF model (llama.cpp, Ollama) into an MLX model directory", run: runImport})
}

const importUsage = `
Usage: yai import GGUF_FILE --out DIR [--bits 4] [--group-size 64] [--dtype float32]

Reads a GGUF file of a Llama, Mistral or Qwen2 model (tensors in F32, F16, BF16, the Q, K
and IQ quants, TQ1_0, TQ2_0, MXFP4 or NVFP4), dequantizes it and writes an mlx-community
model directory:
config.json, model.safetensors re-quantized to MLX affine (or kept float with --bits 0),
tokenizer.json and tokenizer_config.json with the chat template. DIR must not exist.`

func runImport(args []string) int {
	fset := newFlagSet("import", importUsage)
	def := ggufimport.DefaultOptions()
	out := fset.String("out", "", "output model directory (must not exist)")
	bits := fset.Int("bits", def.Bits, "MLX affine quantization bits: 2, 3, 4, 5, 6, 8; 0 keeps weights float")
	group := fset.Int("group-size", def.GroupSize, "quantization group size: 32, 64 or 128")
	dtype := fset.String("dtype", def.Dtype.String(), "dtype of scales, biases and float weights: float32 (fast on CPU), float16, bfloat16")
	pos, code, ok := parseFlags(fset, args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return usageError(fset, "want one GGUF_FILE")
	}
	if *out == "" {
		return usageError(fset, "--out DIR is required")
	}
	switch {
	case !slices.Contains([]int{0, 2, 3, 4, 5, 6, 8}, *bits):
		return usageError(fset, "--bits must be 2, 3, 4, 5, 6 or 8 (0 keeps weights float), got %d", *bits)
	case *bits != 0 && !slices.Contains([]int{32, 64, 128}, *group):
		return usageError(fset, "--group-size must be 32, 64 or 128, got %d", *group)
	}
	dt, err := mlx.ParseDtype(*dtype)
	if err != nil {
		return usageError(fset, "--dtype: %v", err)
	}
	start := time.Now()
	sum, err := ggufimport.Import(pos[0], *out, ggufimport.Options{Bits: *bits, GroupSize: *group, Dtype: dt})
	if err != nil {
		fmt.Fprintln(os.Stderr, "yai import:", err)
		return 1
	}
	how := "kept float"
	if *bits > 0 {
		how = fmt.Sprintf("%d re-quantized to %d-bit (group %d)", sum.Quantized, *bits, *group)
	}
	fmt.Printf("imported %s model (%d tensors, %s, %s; vocabulary %d) into %s in %.1fs\n",
		sum.Architecture, sum.Tensors, how, dt, sum.Vocab, *out, time.Since(start).Seconds())
	return 0
}
