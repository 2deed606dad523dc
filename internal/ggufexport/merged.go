package ggufexport

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/yai-dev/yai/internal/gguf"
	"github.com/yai-dev/yai/internal/lora"
	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/mlx"
)

// MergedOptions tune Merged.
type MergedOptions struct {
	// Type stores the matrices (the CLI's default is F16); norms and other vectors stay F32, and a
	// matrix whose rows are not whole blocks of Type is stored F16, as llama.cpp's converter does.
	Type gguf.TensorType
	// Name is general.name (default: the model directory's name).
	Name string
}

// Result says what an export wrote.
type Result struct {
	Dir   string
	Files []string // names within Dir
	// Fused are the module paths whose adapters were merged (Merged), or exported
	// (Adapter).
	Fused []string
}

// Merged writes the model in modelDir, with the adapters in adapterDir merged into its
// weights (none when adapterDir is empty), as one GGUF file in a new directory out, with an
// Ollama Modelfile beside it. Quantized weights are dequantized and scale·B·A is added in
// float32, as `yai fuse --dequantize` does, before the result is stored as opts.Type.
func Merged(modelDir, adapterDir, out string, opts MergedOptions) (*Result, error) {
	if _, ok := fileType[opts.Type]; !ok {
		return nil, fmt.Errorf("tensor type %s cannot be written (supported: %s)", opts.Type, typeNames())
	}
	if opts.Name == "" {
		opts.Name = filepath.Base(filepath.Clean(modelDir))
	}
	m, err := model.Load(modelDir, model.LoadOptions{})
	if err != nil {
		return nil, err
	}
	defer m.Free()
	c := m.Config
	a, err := archFor(c, FormatMerged)
	if err != nil {
		return nil, err
	}
	packed := packedModules(m)
	adapted := map[string]*lora.Linear{}
	res := &Result{Dir: out}
	if adapterDir != "" {
		ad, err := lora.Load(m.Layers, adapterDir)
		if err != nil {
			return nil, err
		}
		defer ad.Free()
		for i, l := range ad.Layers {
			adapted[ad.Names[i]] = l
			res.Fused = append(res.Fused, ad.Names[i])
		}
	}
	hyper, ropeTensors, err := hyperKeys(a, c)
	if err != nil {
		return nil, err
	}
	tok, err := tokenizerKeys(modelDir, c.VocabSize)
	if err != nil {
		return nil, err
	}
	kvs := []gguf.KV{
		{Key: "general.architecture", Value: a.name},
		{Key: "general.type", Value: "model"},
		{Key: "general.name", Value: opts.Name},
	}
	kvs = append(kvs, hyper...)
	kvs = append(kvs, gguf.KV{Key: "general.file_type", Value: fileType[opts.Type]},
		gguf.KV{Key: "general.quantization_version", Value: uint32(2)})
	kvs = append(kvs, tok...)

	params := m.Parameters()
	var plans []tensorPlan
	var order []int // block index per plan, for llama.cpp's usual order
	for _, name := range m.TensorNames() {
		module, leaf, _ := cutLast(name, ".")
		if leaf != "weight" && leaf != "bias" {
			continue // MLX's quantization scales and biases
		}
		gname, block, err := a.ggufName(c, module)
		if err != nil {
			return nil, err
		}
		w := params[name]
		if w == nil {
			return nil, fmt.Errorf("%s: %s is not loaded", modelDir, name)
		}
		shape := w.Shape()
		q, isPacked := packed[module]
		if isPacked && leaf == "weight" {
			shape = slices.Clone(shape)
			shape[len(shape)-1] = shape[len(shape)-1] * 32 / q.Bits
		}
		typ := gguf.F32
		// Matrices (and stacks of experts' matrices) take opts.Type; the router stays F32, as
		// llama.cpp's converter and quantizer keep it.
		if len(shape) >= 2 && opts.Type != gguf.F32 && !strings.HasSuffix(gname, ".ffn_gate_inp") {
			typ = opts.Type
			if shape[len(shape)-1]%typ.BlockSize() != 0 {
				typ = gguf.F16
			}
		}
		p := tensorPlan{NewTensor: gguf.NewTensor{Name: gname + "." + leaf, Dims: dims(shape...), Type: typ}}
		heads := a.qkHeads(c, module)
		lin := adapted[module]
		p.values = func() ([]float32, error) {
			var v []float32
			err := mlx.Do(func() error {
				s := mlx.NewScope()
				defer s.Close()
				x := params[name]
				if isPacked && leaf == "weight" {
					x = mlx.Dequantize(x, params[module+".scales"], params[module+".biases"], q, mlx.Float32)
				}
				x = mlx.AsType(x, mlx.Float32)
				if a.normPlusOne && leaf == "weight" && strings.HasSuffix(gname, "norm") {
					x = mlx.AddScalar(x, 1)
				}
				switch {
				case lin != nil && leaf == "weight" && lin.Switch != nil:
					// (scale · lora_b) @ lora_a per expert: (experts, out, r) @ (experts, r, in).
					x = mlx.Add(x, mlx.Matmul(mlx.MulScalar(lin.B, lin.Scale), lin.A))
				case lin != nil && leaf == "weight":
					// (scale · lora_bᵀ) @ lora_aᵀ, in mlx-lm's fuse order.
					x = mlx.Add(x, mlx.Matmul(mlx.MulScalar(mlx.Transpose(lin.B), lin.Scale), mlx.Transpose(lin.A)))
				}
				v = x.Floats()
				return nil
			})
			if err == nil && heads > 0 {
				cols := 1
				if len(shape) == 2 {
					cols = shape[1]
				}
				v = permuteRows(v, shape[0], cols, heads)
			}
			return v, err
		}
		plans = append(plans, p)
		order = append(order, block)
	}
	for _, name := range slices.Sorted(maps.Keys(ropeTensors)) {
		v := ropeTensors[name]
		plans = append(plans, tensorPlan{NewTensor: gguf.NewTensor{Name: name, Dims: dims(len(v)), Type: gguf.F32},
			values: func() ([]float32, error) { return v, nil }})
		order = append(order, -1)
	}
	sortPlans(plans, order)

	file := fmt.Sprintf("%s-%s.gguf", opts.Name, opts.Type)
	tmpl, err := readChatTemplate(modelDir)
	if err != nil {
		return nil, err
	}
	err = newDir(out, func(tmp string) error {
		if err := writeGGUF(filepath.Join(tmp, file), kvs, plans); err != nil {
			return err
		}
		return writeText(tmp, "Modelfile", modelfile("./"+file, "", tmpl, stopTokens(kvs)))
	})
	if err != nil {
		return nil, err
	}
	res.Files = []string{file, "Modelfile"}
	return res, nil
}

// packedModules are the model's quantized modules by path, with their packing.
func packedModules(m *model.Model) map[string]mlx.Quantization {
	out := map[string]mlx.Quantization{}
	prefix := m.Config.Prefix // language_model. for a multimodal checkpoint's text model
	if m.Embedding.Packed {
		out[prefix+"model.embed_tokens"] = m.Embedding.Quant
	}
	if q, ok := m.LMHead.(*model.QuantizedLinear); ok {
		out[prefix+"lm_head"] = q.Quant
	}
	for i, b := range m.Layers {
		for key, l := range b.Linears() {
			if q, ok := (*l).(*model.QuantizedLinear); ok {
				out[fmt.Sprintf("%smodel.layers.%d.%s", prefix, i, key)] = q.Quant
			}
		}
		for key, l := range b.Switches() {
			if q, ok := (*l).(*model.QuantizedSwitchLinear); ok {
				out[fmt.Sprintf("%smodel.layers.%d.%s", prefix, i, key)] = q.Quant
			}
		}
	}
	return out
}

// sortPlans puts the embedding first, the blocks in order, the rest last, by name within.
func sortPlans(plans []tensorPlan, block []int) {
	rank := func(i int) int {
		switch {
		case strings.HasPrefix(plans[i].Name, "token_embd"):
			return -1
		case block[i] < 0:
			return 1 << 30
		}
		return block[i]
	}
	idx := make([]int, len(plans))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(x, y int) bool {
		i, j := idx[x], idx[y]
		if rank(i) != rank(j) {
			return rank(i) < rank(j)
		}
		return plans[i].Name < plans[j].Name
	})
	sorted := make([]tensorPlan, len(plans))
	for k, i := range idx {
		sorted[k] = plans[i]
	}
	copy(plans, sorted)
}

func cutLast(s, sep string) (before, after string, found bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

func typeNames() string {
	var s []string
	for _, t := range Types() {
		s = append(s, t.String())
	}
	return strings.Join(s, ", ")
}
