package ggufexport

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/yai-dev/yai/internal/gguf"
	"github.com/yai-dev/yai/internal/lora"
	"github.com/yai-dev/yai/mlx"
	"github.com/yai-dev/yai/modeldir"
)

// AdapterOptions tune Adapter.
type AdapterOptions struct {
	// BaseGGUF is the GGUF file of the base model the adapter goes with (the one the model
	// was imported from, or a Merged export without adapters): the Modelfile's FROM. Without
	// it no Modelfile is written.
	BaseGGUF string
	// Name is general.name (default: the adapter directory's name).
	Name string
}

// AdapterFile is the name of the GGUF LoRA adapter an Adapter export writes.
const AdapterFile = "adapter.gguf"

// Adapter writes the LoRA adapters in adapterDir, trained on the model in modelDir, as a
// llama.cpp GGUF LoRA adapter in a new directory out (with a Modelfile when
// opts.BaseGGUF is set), as llama.cpp's convert_lora_to_gguf.py writes one: per adapted
// matrix blk.N.<name>.weight.lora_a (rank × in) and .lora_b (out × rank) in float32,
// adapter.lora.alpha = scale · rank so that llama.cpp's alpha / rank is yai's scale, and
// the rows of lora_b of q and k in llama.cpp's order where the base's rows are permuted.
func Adapter(modelDir, adapterDir, out string, opts AdapterOptions) (*Result, error) {
	c, err := modeldir.ReadConfig(modelDir)
	if err != nil {
		return nil, err
	}
	a, err := archFor(c, FormatAdapter)
	if err != nil {
		return nil, err
	}
	cfg, err := lora.ReadConfig(adapterDir)
	if err != nil {
		return nil, err
	}
	if opts.Name == "" {
		opts.Name = filepath.Base(filepath.Clean(adapterDir))
	}
	var stops []string // the base GGUF's end-of-sequence and end-of-turn texts
	if opts.BaseGGUF != "" {
		if opts.BaseGGUF, err = filepath.Abs(opts.BaseGGUF); err != nil {
			return nil, err
		}
		if stops, err = checkBase(opts.BaseGGUF, a, c); err != nil {
			return nil, err
		}
	}
	tensors, err := lora.ReadWeights(adapterDir)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, t := range tensors {
			t.Free()
		}
	}()
	res := &Result{Dir: out}
	var plans []tensorPlan
	var order []int
	rank := 0
	for name := range tensors {
		module, ok := strings.CutSuffix(name, ".lora_a")
		if !ok {
			if _, isB := strings.CutSuffix(name, ".lora_b"); !isB {
				return nil, fmt.Errorf("%s: tensor %s is not a LoRA matrix", adapterDir, name)
			}
			continue
		}
		A, B := tensors[name], tensors[module+".lora_b"]
		if B == nil {
			return nil, fmt.Errorf("%s: %s has no lora_b", adapterDir, module)
		}
		gname, block, err := a.ggufName(c, module)
		if err != nil {
			return nil, err
		}
		if A.Ndim() == 3 {
			// A mixture's stacked experts (LoRASwitchLinear): lora_a (experts, r, in) and
			// lora_b (experts, out, r) are already llama.cpp's per-expert A and B.
			if B.Ndim() != 3 || A.Dim(0) != B.Dim(0) || A.Dim(1) != B.Dim(2) {
				return nil, fmt.Errorf("%s: %s: lora_a is %v but lora_b is %v", adapterDir, module, A.Shape(), B.Shape())
			}
			rank = A.Dim(1)
			plans = append(plans,
				tensorPlan{NewTensor: gguf.NewTensor{Name: gname + ".weight.lora_a", Dims: dims(A.Shape()...), Type: gguf.F32},
					values: func() ([]float32, error) { return floats(A) }},
				tensorPlan{NewTensor: gguf.NewTensor{Name: gname + ".weight.lora_b", Dims: dims(B.Shape()...), Type: gguf.F32},
					values: func() ([]float32, error) { return floats(B) }})
			order = append(order, block, block)
			res.Fused = append(res.Fused, module)
			continue
		}
		in, r, outDim := A.Dim(0), A.Dim(1), B.Dim(1)
		if B.Dim(0) != r {
			return nil, fmt.Errorf("%s: %s: lora_a is %v but lora_b is %v", adapterDir, module, A.Shape(), B.Shape())
		}
		rank = r
		heads := a.qkHeads(c, module)
		// MLX keeps x @ lora_a @ lora_b: lora_a (in, r), lora_b (r, out). PEFT and llama.cpp
		// keep the transposes: A (r, in), B (out, r).
		plans = append(plans,
			tensorPlan{NewTensor: gguf.NewTensor{Name: gname + ".weight.lora_a", Dims: dims(r, in), Type: gguf.F32},
				values: func() ([]float32, error) { return transposed(A, in, r) }},
			tensorPlan{NewTensor: gguf.NewTensor{Name: gname + ".weight.lora_b", Dims: dims(outDim, r), Type: gguf.F32},
				values: func() ([]float32, error) {
					v, err := transposed(B, r, outDim)
					if err == nil && heads > 0 {
						v = permuteRows(v, outDim, r, heads)
					}
					return v, err
				}})
		order = append(order, block, block)
		res.Fused = append(res.Fused, module)
	}
	if len(plans) == 0 {
		return nil, fmt.Errorf("%s: no adapters in %s", adapterDir, lora.WeightsFile)
	}
	sortPlans(plans, order)
	sort.Strings(res.Fused)
	kvs := []gguf.KV{
		{Key: "general.architecture", Value: a.name},
		{Key: "general.type", Value: "adapter"},
		{Key: "general.name", Value: opts.Name},
		{Key: "adapter.type", Value: "lora"},
		{Key: "adapter.lora.alpha", Value: float32(cfg.Scale * float64(rank))},
	}
	var mf string
	if opts.BaseGGUF != "" {
		tmpl, err := readChatTemplate(modelDir)
		if err != nil {
			return nil, err
		}
		mf = modelfile(opts.BaseGGUF, "./"+AdapterFile, tmpl, stops)
	}
	err = newDir(out, func(tmp string) error {
		if err := writeGGUF(filepath.Join(tmp, AdapterFile), kvs, plans); err != nil {
			return err
		}
		if mf != "" {
			return writeText(tmp, "Modelfile", mf)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	res.Files = []string{AdapterFile}
	if mf != "" {
		res.Files = append(res.Files, "Modelfile")
	}
	return res, nil
}

// floats reads x as float32, row-major.
func floats(x *mlx.Array) ([]float32, error) {
	var v []float32
	err := mlx.Do(func() error { v = x.Floats(); return nil })
	return v, err
}

// transposed reads a (rows, cols) array as float32 and returns its transpose, row-major.
func transposed(x *mlx.Array, rows, cols int) ([]float32, error) {
	var v []float32
	if err := mlx.Do(func() error { v = x.Floats(); return nil }); err != nil {
		return nil, err
	}
	out := make([]float32, len(v))
	for i := range rows {
		for j := range cols {
			out[j*rows+i] = v[i*cols+j]
		}
	}
	return out, nil
}

// checkBase checks that the base GGUF is a model of the adapter's architecture and shape,
// so that llama.cpp will accept the adapter beside it, and returns the texts of its
// end-of-turn and end-of-sequence tokens (the Modelfile's stops: the base's tokenizer is the
// one Ollama runs, whatever its kind).
func checkBase(path string, a arch, c *modeldir.Config) ([]string, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("base GGUF: %w", err)
	}
	g, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	defer g.Close()
	got, err := g.Metadata.String("general.architecture")
	if err != nil {
		return nil, err
	}
	if got != a.name {
		return nil, fmt.Errorf("%s: architecture %s, but the adapters are for %s", path, got, a.name)
	}
	for key, want := range map[string]int{"block_count": c.NumHiddenLayers, "embedding_length": c.HiddenSize} {
		n, err := g.Metadata.Int(a.name+"."+key, 1<<30)
		if err != nil {
			return nil, err
		}
		if n != want {
			return nil, fmt.Errorf("%s: %s.%s is %d, but the adapters' model has %d", path, a.name, key, n, want)
		}
	}
	tokens, err := g.Metadata.Strings("tokenizer.ggml.tokens")
	if err != nil {
		return nil, nil // no vocabulary: no stops
	}
	var stops []string
	for _, key := range []string{"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eos_token_id"} {
		if id, err := g.Metadata.Int(key, len(tokens)-1); err == nil && !slices.Contains(stops, tokens[id]) {
			stops = append(stops, tokens[id])
		}
	}
	return stops, nil
}
