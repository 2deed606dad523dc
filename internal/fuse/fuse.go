package fuse

import (
	"fmt"
	"os"

	"github.com/yai-dev/yai/internal/atomicfile"
	"github.com/yai-dev/yai/internal/lora"
	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/mlx"
)

// Options tune Fuse.
type Options struct {
	// Dequantize keeps the fused layers in float instead of quantizing them again.
	Dequantize bool
	// ShardBytes caps each weights file, as mlx-lm's save does (0: 5 GB).
	ShardBytes int
	// Bits and GroupSize, when nonzero, re-quantize the fused layers with these instead of
	// each layer's own (config.json records them per layer): more bits or smaller groups
	// keep more of a small update.
	Bits, GroupSize int
}

// Result says what Fuse wrote.
type Result struct {
	Layers []string // module paths fused, e.g. model.layers.3.self_attn.q_proj
	Files  []string // weight files written
}

// Fuse merges the adapters in adapterDir into the model in modelDir and writes the fused
// model to outDir, which must not exist. The directory is assembled beside outDir and
// renamed into place, so outDir appears complete or not at all.
func Fuse(modelDir, adapterDir, outDir string, opts Options) (Result, error) {
	var res Result
	if _, err := os.Lstat(outDir); err == nil {
		return res, fmt.Errorf("%s already exists: fuse never overwrites, choose a new directory", outDir)
	}
	m, err := model.Load(modelDir, model.LoadOptions{})
	if err != nil {
		return res, err
	}
	defer m.Free()
	a, err := lora.Load(m.Layers, adapterDir)
	if err != nil {
		return res, err
	}
	defer a.Free()

	tensors := m.Parameters()
	var plain []string                       // layers left in float, for config.json
	requant := map[string]mlx.Quantization{} // layers quantized with other settings
	var made []*mlx.Array                    // the fused tensors, freed once written
	defer func() { mlx.Free(made...) }()
	err = mlx.Do(func() error {
		for i, l := range a.Layers {
			fused, quantized, q := fuseLayer(l, opts)
			name := a.Names[i]
			for leaf, t := range fused {
				tensors[name+"."+leaf] = t
				made = append(made, t)
			}
			if !quantized {
				delete(tensors, name+".scales")
				delete(tensors, name+".biases")
				if _, _, wasQuantized := packed(l); wasQuantized {
					plain = append(plain, name)
				}
			}
			if quantized && (opts.Bits != 0 || opts.GroupSize != 0) {
				requant[name] = q
			}
			res.Layers = append(res.Layers, name)
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	err = atomicfile.NewDir(outDir, func(tmp string) error {
		var err error
		if res.Files, err = writeWeights(tmp, tensors, opts.ShardBytes); err != nil {
			return err
		}
		if err := writeConfig(modelDir, tmp, plain, requant); err != nil {
			return err
		}
		return copyTokenizerFiles(modelDir, tmp)
	})
	return res, err
}

// fuseLayer computes the fused tensors of one adapted layer by leaf name (weight, and
// scales and biases when quantized), whether they are quantized and how. It runs on the MLX
// thread; the arrays are evaluated and owned by the caller.
func fuseLayer(l *lora.Linear, opts Options) (map[string]*mlx.Array, bool, mlx.Quantization) {
	dequantize := opts.Dequantize
	s := mlx.NewScope()
	defer s.Close()
	w := l.Arrays()["linear.weight"]
	arrays, q, quantized := packed(l)
	if quantized {
		w = mlx.Dequantize(w, arrays["scales"], arrays["biases"], q, arrays["scales"].Dtype())
	}
	var delta *mlx.Array
	if l.Switch != nil {
		// LoRASwitchLinear.fuse: ((scale · lora_b) @ lora_a).astype(weight.dtype), one
		// product per expert: (experts, out, r) @ (experts, r, in).
		delta = mlx.AsType(mlx.Matmul(mlx.MulScalar(l.B, l.Scale), l.A), w.Dtype())
	} else {
		// ((scale · lora_bᵀ) @ lora_aᵀ).astype(weight.dtype), in mlx-lm's order.
		delta = mlx.AsType(mlx.Matmul(mlx.MulScalar(mlx.Transpose(l.B), l.Scale), mlx.Transpose(l.A)), w.Dtype())
	}
	fused := mlx.Add(w, delta)
	out := map[string]*mlx.Array{}
	var qq mlx.Quantization
	if quantized && !dequantize {
		qq = q
		if opts.Bits != 0 {
			qq.Bits = opts.Bits
		}
		if opts.GroupSize != 0 {
			qq.GroupSize = opts.GroupSize
		}
		wq, scales, biases := mlx.Quantize(fused, qq)
		out["weight"], out["scales"] = wq, scales
		if biases != nil {
			out["biases"] = biases
		}
	} else {
		out["weight"] = fused
	}
	kept := make([]*mlx.Array, 0, len(out))
	for _, t := range out {
		kept = append(kept, t)
	}
	mlx.Eval(kept...)
	s.Keep(kept...)
	mlx.Detach(kept...)
	return out, quantized && !dequantize, qq
}

// packed reports whether the layer l adapts is quantized, with its arrays (by leaf name) and
// packing.
func packed(l *lora.Linear) (map[string]*mlx.Array, mlx.Quantization, bool) {
	switch b := l.Base.(type) {
	case *model.QuantizedLinear:
		return b.Arrays(), b.Quant, true
	}
	switch b := l.Switch.(type) {
	case *model.QuantizedSwitchLinear:
		return b.Arrays(), b.Quant, true
	}
	return nil, mlx.Quantization{}, false
}
