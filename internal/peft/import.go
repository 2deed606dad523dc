package peft

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/yai-dev/yai/internal/atomicfile"
	"github.com/yai-dev/yai/internal/lora"
	"github.com/yai-dev/yai/mlx"
	"github.com/yai-dev/yai/modeldir"
)

// ImportResult says what Import wrote.
type ImportResult struct {
	Config lora.Config // as written to adapter_config.json
}

// Import converts the PEFT LoRA adapter in peftDir (as peft's save_pretrained writes it) for
// the model in modelDir into yai's adapter files in outDir, which must not exist. yai's
// adapters cover the last N blocks with the same projections in each; an adapter that does
// not, or uses what yai's LoRA layer does not compute (DoRA, trained biases, per-module
// ranks, modules_to_save), is refused with the reason.
func Import(modelDir, peftDir, outDir string) (ImportResult, error) {
	var res ImportResult
	info, err := modeldir.Inspect(modelDir)
	if err != nil {
		return res, err
	}
	fam, err := familyOf(info.Config)
	if err != nil {
		return res, err
	}
	pc, err := readPeftConfig(peftDir)
	if err != nil {
		return res, err
	}
	wpath := filepath.Join(peftDir, WeightsFile)
	if _, err := os.Stat(wpath); err != nil {
		if _, binErr := os.Stat(filepath.Join(peftDir, "adapter_model.bin")); binErr == nil {
			return res, fmt.Errorf("peft: %s holds adapter_model.bin (pickle); save it with safe_serialization=True to get %s", peftDir, WeightsFile)
		}
		return res, fmt.Errorf("peft: %w", err)
	}
	tensors, _, err := mlx.LoadSafetensors(wpath)
	if err != nil {
		return res, fmt.Errorf("peft: %w", err)
	}
	defer func() {
		for _, t := range tensors {
			t.Free()
		}
	}()

	type pair struct{ a, b *mlx.Array }
	pairs := map[string]*pair{} // by yai module path
	blockKeys := map[int][]string{}
	var problems []string
	for _, n := range sortedKeys(tensors) {
		rest, ok := strings.CutPrefix(n, prefix)
		var m string
		var isA bool
		if ok {
			if m, ok = strings.CutSuffix(rest, ".lora_A.weight"); ok {
				isA = true
			} else {
				m, ok = strings.CutSuffix(rest, ".lora_B.weight")
			}
		}
		if !ok {
			problems = append(problems, n+": not a LoRA weight yai can use (want base_model.model.<module>.lora_A.weight or .lora_B.weight)")
			continue
		}
		m = fam.yaiPath(m)
		block, key, ok := blockModule(m)
		if !ok {
			problems = append(problems, n+": adapts a module outside the transformer blocks")
			continue
		}
		p := pairs[m]
		if p == nil {
			p = &pair{}
			pairs[m] = p
			blockKeys[block] = append(blockKeys[block], key)
		}
		if isA {
			p.a = tensors[n]
		} else {
			p.b = tensors[n]
		}
	}
	L := info.Config.NumHiddenLayers
	out := map[string]*mlx.Array{}
	for _, m := range sortedKeys(pairs) {
		p := pairs[m]
		if p.a == nil || p.b == nil {
			problems = append(problems, m+": lora_A and lora_B must both be present")
			continue
		}
		as, bs := p.a.Shape(), p.b.Shape()
		in, outF := info.LinearDims(m)
		switch {
		case len(as) != 2 || len(bs) != 2 || as[0] != pc.R || bs[1] != pc.R:
			problems = append(problems, fmt.Sprintf("%s: lora_A %v, lora_B %v: want (r, in) and (out, r) with r = %d", m, as, bs, pc.R))
			continue
		case in == 0:
			problems = append(problems, m+": the model has no such projection")
			continue
		case as[1] != in || bs[0] != outF:
			problems = append(problems, fmt.Sprintf("%s: lora_A %v, lora_B %v do not fit the model's projection (in %d, out %d)", m, as, bs, in, outF))
			continue
		}
		out[m+".lora_a"], out[m+".lora_b"] = p.a, p.b
	}
	// yai's adapters are the last NumLayers blocks, each with the same keys.
	var blocks []int
	for b := range blockKeys {
		blocks = append(blocks, b)
	}
	slices.Sort(blocks)
	var keys []string
	if len(blocks) > 0 {
		keys = slices.Sorted(slices.Values(blockKeys[blocks[0]]))
		for i, b := range blocks {
			if b != L-len(blocks)+i {
				problems = append(problems, fmt.Sprintf("the adapter covers blocks %v of %d: yai's adapters cover the last blocks without gaps", blocks, L))
				break
			}
			if got := slices.Sorted(slices.Values(blockKeys[b])); !slices.Equal(got, keys) {
				problems = append(problems, fmt.Sprintf("block %d adapts %v, block %d adapts %v: yai adapts the same projections in every block", blocks[0], keys, b, got))
				break
			}
		}
	}
	if len(problems) > 0 {
		return res, fmt.Errorf("peft: %s cannot be imported:\n  %s", peftDir, strings.Join(problems, "\n  "))
	}
	if len(out) == 0 {
		return res, fmt.Errorf("peft: %s holds no LoRA weights", peftDir)
	}
	scale := pc.LoraAlpha / float64(pc.R)
	if pc.UseRslora {
		scale = pc.LoraAlpha / math.Sqrt(float64(pc.R))
	}
	res.Config = lora.Config{Keys: keys, NumLayers: len(blocks), Rank: pc.R, Scale: scale, Dropout: pc.LoraDropout}

	final := make(map[string]*mlx.Array, len(out))
	defer func() {
		for _, t := range final {
			t.Free()
		}
	}()
	err = mlx.Do(func() error {
		for k, t := range out {
			// Back to mlx-lm's (in, r) and (r, out), in float32 as yai trains them.
			f := mlx.AsType(t, mlx.Float32)
			tt := mlx.Transpose(f)
			final[k] = mlx.Contiguous(tt)
			mlx.Free(f, tt)
			mlx.Eval(final[k])
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	err = atomicfile.NewDir(outDir, func(tmp string) error {
		return lora.SaveFiles(tmp, res.Config, final)
	})
	return res, err
}

// readPeftConfig reads adapter_config.json and refuses what yai's LoRA does not compute.
func readPeftConfig(dir string) (peftConfig, error) {
	path := filepath.Join(dir, ConfigFile)
	var pc peftConfig
	raw, err := os.ReadFile(path)
	if err != nil {
		return pc, fmt.Errorf("peft: %w", err)
	}
	if err := json.Unmarshal(raw, &pc); err != nil {
		return pc, fmt.Errorf("peft: %s: %w", path, err)
	}
	var why []string
	if pc.PeftType != "LORA" {
		why = append(why, fmt.Sprintf("peft_type %q (only LORA)", pc.PeftType))
	}
	if pc.R <= 0 {
		why = append(why, fmt.Sprintf("r %d", pc.R))
	}
	if pc.UseDora {
		why = append(why, "use_dora (DoRA rescales the weight; yai's LoRA does not)")
	}
	if pc.Bias != "" && pc.Bias != "none" {
		why = append(why, fmt.Sprintf("bias %q (trained biases)", pc.Bias))
	}
	if pc.LoraBias {
		why = append(why, "lora_bias")
	}
	if pc.FanInFanOut {
		why = append(why, "fan_in_fan_out (Conv1D layers)")
	}
	if len(pc.ModulesToSave) > 0 {
		why = append(why, fmt.Sprintf("modules_to_save %v (fully trained modules)", pc.ModulesToSave))
	}
	if len(pc.RankPattern) > 0 || len(pc.AlphaPattern) > 0 {
		why = append(why, "rank_pattern/alpha_pattern (per-module ranks or alphas)")
	}
	if len(why) > 0 {
		return pc, errors.New("peft: " + path + ": yai cannot import " + strings.Join(why, "; "))
	}
	return pc, nil
}
