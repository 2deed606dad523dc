package ggufimport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/yai-dev/yai/internal/gguf"
	"github.com/yai-dev/yai/mlx"
)

// quantSpec is MLX affine quantization of the output weights.
type quantSpec struct {
	bits, groupSize int
	// plain lists the layers left float among quantized ones (MoE routers), which
	// config.json names so that no loader has to guess.
	plain []string
}

// weightPlan is how one GGUF tensor becomes one tensor (kept float) or three (weight,
// scales, biases) of the output.
type weightPlan struct {
	src      gguf.TensorInfo
	name     string // mlx-lm name of the tensor
	shape    []int  // row-major, as mlx-lm expects it
	quantize bool
	// permuteHeads > 0 undoes llama.cpp's q/k row interleaving over that many heads.
	permuteHeads int
	// minusOne undoes the converter's weight + 1 of Gemma's norms.
	minusOne bool
}

// planWeights maps every GGUF tensor onto the checkpoint mlx-lm expects, checking names,
// shapes and types against the hyperparameters before any data is read.
func planWeights(g *gguf.File, h *hyper, quant *quantSpec) ([]weightPlan, error) {
	expected := expectedShapes(h)
	var plans []weightPlan
	var errs []error
	fail := func(t gguf.TensorInfo, format string, args ...any) {
		errs = append(errs, &gguf.TensorError{File: g.Path, Tensor: t.Name, Problem: fmt.Sprintf(format, args...)})
	}
	seen := map[string]bool{}
	unsupported := map[gguf.TensorType]int{} // tensors per type Dequantize cannot read
	for _, t := range g.Tensors {
		if t.Name == ropeFreqsTensor {
			continue // read into config.json's rope_scaling
		}
		name, ok := hfName(t.Name, h.layers, h.archInfo.names)
		if !ok {
			fail(t, "unknown tensor for a %s model", h.arch)
			continue
		}
		want, ok := expected[name]
		if !ok {
			fail(t, "unexpected for this %s model (maps to %s)", h.arch, name)
			continue
		}
		seen[name] = true // present: a wrong shape or type is its problem, not a missing tensor
		if !slices.Equal(t.Shape(), want) {
			fail(t, "shape %v, the metadata implies %v", t.Shape(), want)
			continue
		}
		if !gguf.CanDequantize(t.Type) {
			unsupported[t.Type]++
			continue
		}
		p := weightPlan{src: t, name: name, shape: want}
		if quant != nil && len(want) >= 2 && !isNorm(name) && !isRouter(name) && want[len(want)-1]%quant.groupSize == 0 && strings.HasSuffix(name, ".weight") {
			p.quantize = true
		}
		p.minusOne = h.archInfo.normPlusOne && isNorm(name)
		if h.archInfo.permutedQK {
			switch {
			case strings.Contains(name, "self_attn.q_proj."):
				p.permuteHeads = h.heads
			case strings.Contains(name, "self_attn.k_proj."):
				p.permuteHeads = h.kvHeads
			}
		}
		plans = append(plans, p)
	}
	if len(unsupported) > 0 {
		errs = append([]error{unsupportedTypesError(g.Path, unsupported)}, errs...)
	}
	var missing []string
	for name := range expected {
		if !seen[name] && requiredTensor(name, h) {
			missing = append(missing, name)
		}
	}
	slices.Sort(missing)
	for _, name := range missing {
		errs = append(errs, fmt.Errorf("%s: tensor for %s is missing", g.Path, name))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	slices.SortFunc(plans, func(a, b weightPlan) int { return strings.Compare(a.name, b.name) })
	return plans, nil
}

// unsupportedTypesError is one error for every tensor type of the file Dequantize cannot
// read, with how many tensors use it, sorted by type name.
func unsupportedTypesError(path string, counts map[gguf.TensorType]int) error {
	types := make([]gguf.TensorType, 0, len(counts))
	for t := range counts {
		types = append(types, t)
	}
	slices.SortFunc(types, func(a, b gguf.TensorType) int { return strings.Compare(a.String(), b.String()) })
	parts := make([]string, len(types))
	for i, t := range types {
		parts[i] = fmt.Sprintf("%s (%s)", t, plural(counts[t], "tensor"))
	}
	verb := "types are"
	if len(types) == 1 {
		verb = "type is"
	}
	return fmt.Errorf("%s: %d tensor %s not supported: %s; supported: %s", path, len(types), verb,
		strings.Join(parts, ", "), gguf.SupportedTypes())
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// requiredTensor: biases are optional (present for Qwen2's q, k, v), every weight is needed.
func requiredTensor(name string, h *hyper) bool {
	if strings.HasSuffix(name, ".bias") {
		return h.archInfo.modelType == "qwen2" && !strings.Contains(name, "o_proj")
	}
	return name != "lm_head.weight" || !h.tied
}

// expectedShapes lists every tensor a model of these hyperparameters may hold.
func expectedShapes(h *hyper) map[string][]int {
	m := map[string][]int{
		"model.embed_tokens.weight": {h.vocab, h.hidden},
		"model.norm.weight":         {h.hidden},
	}
	if !h.tied {
		m["lm_head.weight"] = []int{h.vocab, h.hidden}
	}
	block := h.blockShapes()
	for i := range h.layers {
		for name, shape := range block {
			m[fmt.Sprintf("model.layers.%d.%s", i, name)] = shape
		}
	}
	return m
}

// safetensorsDtype names an MLX float dtype as safetensors does.
func safetensorsDtype(dt mlx.Dtype) string {
	return map[mlx.Dtype]string{mlx.Float32: "F32", mlx.Float16: "F16", mlx.BFloat16: "BF16"}[dt]
}

// entries are the output tensors of the plan, in file order.
func (p weightPlan) entries(quant *quantSpec, dtype mlx.Dtype) []tensorEntry {
	dt := safetensorsDtype(dtype)
	if !p.quantize {
		return []tensorEntry{{name: p.name, dtype: dt, shape: p.shape}}
	}
	base := strings.TrimSuffix(p.name, ".weight")
	last := len(p.shape) - 1
	cols := p.shape[last]
	groups := append(slices.Clone(p.shape[:last]), cols/quant.groupSize)
	packed := append(slices.Clone(p.shape[:last]), cols*quant.bits/32)
	return []tensorEntry{
		{name: base + ".biases", dtype: dt, shape: groups},
		{name: base + ".scales", dtype: dt, shape: groups},
		{name: p.name, dtype: "U32", shape: packed},
	}
}

// convert dequantizes one GGUF tensor, undoes the q/k permutation, casts and (maybe)
// quantizes it with MLX, and hands each output tensor's bytes to emit. Every MLX array it
// makes is freed before it returns.
func (p weightPlan) convert(g *gguf.File, quant *quantSpec, dtype mlx.Dtype, emit func(name string, data []byte) error) error {
	vals, err := g.ReadFloat32(p.src)
	if err != nil {
		return err
	}
	if p.permuteHeads > 0 {
		cols := 1
		if len(p.shape) == 2 {
			cols = p.shape[1]
		}
		if p.shape[0]%(2*p.permuteHeads) != 0 {
			return &gguf.TensorError{File: g.Path, Tensor: p.src.Name, Problem: fmt.Sprintf("%d rows do not split into %d heads of rotary pairs", p.shape[0], p.permuteHeads)}
		}
		vals = unpermuteRows(vals, p.shape[0], cols, p.permuteHeads)
	}
	if p.minusOne {
		for i := range vals {
			vals[i]--
		}
	}
	type output struct {
		name string
		data []byte
	}
	var outs []output
	err = mlx.Do(func() error {
		s := mlx.NewScope()
		defer s.Close()
		a := mlx.FromSlice(vals, p.shape...)
		if dtype != mlx.Float32 {
			a = mlx.AsType(a, dtype)
		}
		if !p.quantize {
			outs = append(outs, output{p.name, arrayBytes(a)})
			return nil
		}
		wq, scales, biases := mlx.Quantize(a, mlx.Quantization{GroupSize: quant.groupSize, Bits: quant.bits, Mode: "affine"})
		base := strings.TrimSuffix(p.name, ".weight")
		outs = append(outs, output{base + ".biases", arrayBytes(biases)}, output{base + ".scales", arrayBytes(scales)},
			output{p.name, arrayBytes(wq)})
		return nil
	})
	if err != nil {
		return &gguf.TensorError{File: g.Path, Tensor: p.src.Name, Problem: err.Error()}
	}
	for _, o := range outs {
		if err := emit(o.name, o.data); err != nil {
			return err
		}
	}
	return nil
}

// arrayBytes copies an evaluated array out as little-endian bytes.
func arrayBytes(a *mlx.Array) []byte {
	switch a.Dtype() {
	case mlx.Float32:
		v := mlx.Data[float32](a)
		out := make([]byte, 4*len(v))
		for i, f := range v {
			binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(f))
		}
		return out
	case mlx.Uint32:
		v := mlx.Data[uint32](a)
		out := make([]byte, 4*len(v))
		for i, u := range v {
			binary.LittleEndian.PutUint32(out[4*i:], u)
		}
		return out
	case mlx.Float16, mlx.BFloat16:
		v := mlx.Bits(a)
		out := make([]byte, 2*len(v))
		for i, u := range v {
			binary.LittleEndian.PutUint16(out[2*i:], u)
		}
		return out
	}
	panic("ggufimport: unexpected dtype " + a.Dtype().String())
}
