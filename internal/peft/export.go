package peft

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/yai-dev/yai/internal/atomicfile"
	"github.com/yai-dev/yai/internal/lora"
	"github.com/yai-dev/yai/mlx"
	"github.com/yai-dev/yai/modeldir"
)

// ExportOptions tune Export.
type ExportOptions struct {
	// BaseModel is written as base_model_name_or_path: the float model peft loads the
	// adapter onto (a Hugging Face repo id or a directory). Empty: the model directory.
	BaseModel string
}

// ExportResult says what Export wrote.
type ExportResult struct {
	Modules []string // peft's module paths, e.g. model.layers.3.self_attn.q_proj
	Rank    int
	Alpha   float64
}

// Export writes the adapters in adapterDir (yai's or mlx-lm's files) for the model in
// modelDir as a PEFT LoRA adapter into outDir, which must not exist; it appears complete or
// not at all.
func Export(modelDir, adapterDir, outDir string, opts ExportOptions) (ExportResult, error) {
	var res ExportResult
	cfg, err := modeldir.ReadConfig(modelDir)
	if err != nil {
		return res, err
	}
	fam, err := familyOf(cfg)
	if err != nil {
		return res, err
	}
	acfg, err := lora.ReadConfig(adapterDir)
	if err != nil {
		return res, err
	}
	tensors, err := lora.ReadWeights(adapterDir)
	if err != nil {
		return res, fmt.Errorf("peft: %w", err)
	}
	defer func() {
		for _, t := range tensors {
			t.Free()
		}
	}()

	// Modules come from the tensors, so an adapter file is exported as it is, whatever
	// keys its config lists.
	modules := map[string]bool{}
	for n := range tensors {
		m, ok := strings.CutSuffix(n, ".lora_a")
		if !ok {
			m, ok = strings.CutSuffix(n, ".lora_b")
		}
		if !ok {
			return res, fmt.Errorf("peft: %s: %s is not a LoRA tensor (want <module>.lora_a and .lora_b)", adapterDir, n)
		}
		modules[m] = true
	}
	rank := acfg.Rank
	out := map[string]*mlx.Array{}
	keys, blocks := map[string]bool{}, map[int]bool{}
	var problems []string
	for _, m := range sortedKeys(modules) {
		a, b := tensors[m+".lora_a"], tensors[m+".lora_b"]
		switch {
		case a == nil || b == nil:
			problems = append(problems, m+": lora_a and lora_b must both be present")
			continue
		case len(a.Shape()) != 2 || len(b.Shape()) != 2:
			problems = append(problems, fmt.Sprintf("%s: lora_a %v, lora_b %v: a stack of experts' adapters has no PEFT equivalent", m, a.Shape(), b.Shape()))
			continue
		case a.Shape()[1] != rank || b.Shape()[0] != rank:
			problems = append(problems, fmt.Sprintf("%s: lora_a %v, lora_b %v do not have rank %d (adapter_config.json)", m, a.Shape(), b.Shape(), rank))
			continue
		}
		block, key, ok := blockModule(m)
		if !ok {
			problems = append(problems, m+": not a module of a transformer block")
			continue
		}
		keys[key], blocks[block] = true, true
		hf := prefix + fam.hfPath(m)
		// mlx-lm computes x·A·B with A (in, r) and B (r, out); nn.Linear keeps (out, in),
		// so both are transposed (below).
		out[hf+".lora_A.weight"], out[hf+".lora_B.weight"] = a, b
		res.Modules = append(res.Modules, fam.hfPath(m))
	}
	if len(problems) > 0 {
		return res, fmt.Errorf("peft: %s cannot be exported:\n  %s", adapterDir, strings.Join(problems, "\n  "))
	}
	if len(out) == 0 {
		return res, fmt.Errorf("peft: %s holds no adapters", adapterDir)
	}
	layers := make([]int, 0, len(blocks))
	for b := range blocks {
		layers = append(layers, b)
	}
	slices.Sort(layers)
	base := opts.BaseModel
	if base == "" {
		if base, err = filepath.Abs(modelDir); err != nil {
			return res, err
		}
	}
	res.Rank, res.Alpha = rank, acfg.Scale*float64(rank)
	// The fields peft's LoraConfig needs to rebuild these adapters; it fills the rest with
	// its defaults. layers_to_transform keeps peft off the blocks yai did not adapt.
	conf := map[string]any{
		"peft_type":               "LORA",
		"task_type":               "CAUSAL_LM",
		"base_model_name_or_path": base,
		"r":                       rank,
		"lora_alpha":              res.Alpha,
		"lora_dropout":            acfg.Dropout,
		"target_modules":          sortedKeys(keys),
		"layers_to_transform":     layers,
		"bias":                    "none",
		"fan_in_fan_out":          false,
		"use_rslora":              false,
		"use_dora":                false,
		"modules_to_save":         nil,
		"rank_pattern":            map[string]any{},
		"alpha_pattern":           map[string]any{},
		"init_lora_weights":       true,
		"inference_mode":          true,
		"revision":                nil,
	}
	js, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return res, err
	}
	final := make(map[string]*mlx.Array, len(out))
	defer func() {
		for _, t := range final {
			t.Free()
		}
	}()
	err = mlx.Do(func() error {
		for k, t := range out {
			tt := mlx.Transpose(t)
			final[k] = mlx.Contiguous(tt) // safetensors stores row-major data, not a view
			tt.Free()
			mlx.Eval(final[k])
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	err = atomicfile.NewDir(outDir, func(tmp string) error {
		if err := mlx.SaveSafetensors(filepath.Join(tmp, WeightsFile), final, map[string]string{"format": "pt"}); err != nil {
			return err
		}
		return atomicfile.Write(filepath.Join(tmp, ConfigFile), append(js, '\n'), 0o644)
	})
	return res, err
}
