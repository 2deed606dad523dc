// Package peft moves LoRA adapters between yai (mlx-lm's layout) and Hugging Face PEFT's:
// adapter_model.safetensors and adapter_config.json, as peft's save_pretrained writes them,
// for the float Hugging Face model the 4-bit base was made from.
//
// The layouts differ in three ways. mlx-lm keeps lora_a (in, r) and lora_b (r, out) and
// computes x·A·B; peft keeps nn.Linear weights, lora_A (r, in) and lora_B (out, r), so both
// are transposed. mlx-lm stores the scale; peft stores lora_alpha and scales by
// lora_alpha / r (or / √r with use_rslora), so lora_alpha = scale · r. And peft names a
// tensor by the module's path in the wrapped transformers model:
// base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight.
package peft

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/yai-dev/yai/modeldir"
)

// File names peft reads from an adapter directory.
const (
	WeightsFile = "adapter_model.safetensors"
	ConfigFile  = "adapter_config.json"
)

// prefix is what peft's PeftModelForCausalLM puts before the transformers model's own
// module paths in saved adapter names.
const prefix = "base_model.model."

// A family says how its modules are named in the transformers model peft wraps. rename
// pairs are prefixes of module paths, yai's (mlx-lm's) first; none means the same names.
type family struct {
	rename [][2]string
}

// families are the families whose adapters export, by modeldir's family name, each checked
// with peft and torch in the long tier. The Llama family covers mistral too. Phi-3 is not
// listed: its names are transformers' too, but transformers' Phi-3 logits on the tiny
// LongRoPE preset differ from mlx-lm's (which always scales by the long factors).
var families = map[string]family{
	"llama":       {},
	"qwen2":       {},
	"qwen3":       {},
	"gemma2":      {},
	"gemma3_text": {},
}

// Supported lists the families PEFT export and import support.
func Supported() []string {
	out := make([]string, 0, len(families))
	for f := range families {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

func familyOf(cfg *modeldir.Config) (family, error) {
	f, ok := families[cfg.Family.Name]
	if !ok {
		return f, fmt.Errorf("peft: model_type %q (family %s) has no PEFT mapping yet (supported families: %s)",
			cfg.ModelType, cfg.Family.Name, strings.Join(Supported(), ", "))
	}
	return f, nil
}

// hfPath is module path p (mlx-lm's name) in the transformers model.
func (f family) hfPath(p string) string {
	for _, r := range f.rename {
		if strings.HasPrefix(p, r[0]) {
			return r[1] + strings.TrimPrefix(p, r[0])
		}
	}
	return p
}

// yaiPath is the inverse of hfPath.
func (f family) yaiPath(p string) string {
	for _, r := range f.rename {
		if strings.HasPrefix(p, r[1]) {
			return r[0] + strings.TrimPrefix(p, r[1])
		}
	}
	return p
}

// blockModule splits "model.layers.3.self_attn.q_proj" into block 3 and key
// "self_attn.q_proj"; ok is false for a path outside the blocks.
func blockModule(p string) (block int, key string, ok bool) {
	i := strings.Index(p, "layers.")
	if i < 0 {
		return 0, "", false
	}
	rest := p[i+len("layers."):]
	dot := strings.IndexByte(rest, '.')
	if dot <= 0 {
		return 0, "", false
	}
	if _, err := fmt.Sscanf(rest[:dot], "%d", &block); err != nil {
		return 0, "", false
	}
	return block, rest[dot+1:], true
}

// peftConfig is the part of adapter_config.json import reads. Fields that change what the
// adapter computes and that yai's adapters cannot express are read to refuse them.
type peftConfig struct {
	PeftType      string         `json:"peft_type"`
	R             int            `json:"r"`
	LoraAlpha     float64        `json:"lora_alpha"`
	LoraDropout   float64        `json:"lora_dropout"`
	Bias          string         `json:"bias"`
	FanInFanOut   bool           `json:"fan_in_fan_out"`
	UseRslora     bool           `json:"use_rslora"`
	UseDora       bool           `json:"use_dora"`
	LoraBias      bool           `json:"lora_bias"`
	ModulesToSave []string       `json:"modules_to_save"`
	RankPattern   map[string]any `json:"rank_pattern"`
	AlphaPattern  map[string]any `json:"alpha_pattern"`
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
