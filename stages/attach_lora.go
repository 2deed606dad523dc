package stages

import (
	"fmt"
	"strings"

	"github.com/yai-dev/yai/memplan"
	"github.com/yai-dev/yai/modeldir"
	"github.com/yai-dev/yai/stages/stage"
)

// AttachLoRAConfig configures the LoRA adapters added to the loaded model.
type AttachLoRAConfig struct {
	Rank    int      `yaml:"rank" default:"16" min:"1" max:"512" doc:"LoRA rank r: adapters are (in, r) and (r, out)"`
	Alpha   float64  `yaml:"alpha" default:"32" min:"0" doc:"LoRA alpha; the update is scaled by alpha/rank"`
	Layers  int      `yaml:"layers" default:"16" min:"1" doc:"adapt only the last N transformer blocks"`
	Keys    []string `yaml:"keys" doc:"modules to adapt inside each block, e.g. self_attn.q_proj (a bare q_proj is matched by suffix); unset: the family's query and value projections (q_proj and v_proj; Phi-3's fused qkv_proj)"`
	Dropout float64  `yaml:"dropout" default:"0" min:"0" max:"0.99" doc:"dropout on the adapter input while training"`
}

// Scale is the absolute factor applied to the adapter output (mlx-lm's `scale`).
func (c AttachLoRAConfig) Scale() float64 { return c.Alpha / float64(c.Rank) }

// AttachLoRA adds the adapters; the dry run checks its layers and keys against the model.
var AttachLoRA = Define(Def[AttachLoRAConfig]{
	Name:    "attach-lora",
	Summary: "add trainable LoRA adapters to the last N blocks; freeze the rest",
	Doc: "Wraps the named linear modules of the last `layers` blocks with LoRA adapters " +
		"(lora_a uniform ±1/√in, lora_b zeros, float32) and freezes every other parameter. " +
		"Runs once, at setup, after load-4bit.",
	Events:     []stage.Event{stage.Setup},
	Once:       true,
	CheckModel: checkLoRAAgainstModel,
	Workload: func(c *AttachLoRAConfig, w *memplan.Workload) {
		w.Rank, w.Layers, w.Keys = c.Rank, c.Layers, c.Keys
	},
})

// KeysFor is what the adapters wrap in model m's blocks: the recipe's keys, else the
// family's default (modeldir.Config.LoRAKeys).
func (c AttachLoRAConfig) KeysFor(m *modeldir.Config) []string {
	if len(c.Keys) > 0 {
		return c.Keys
	}
	return m.LoRAKeys()
}

// checkLoRAAgainstModel: the adapted blocks exist and every key names a module of them.
func checkLoRAAgainstModel(c *AttachLoRAConfig, m *modeldir.Info) []Problem {
	var out []Problem
	layers := m.Config.NumHiddenLayers
	if c.Layers > layers {
		out = append(out, Errorf("with.layers", "layers: %d is more than the model's %d layers", c.Layers, layers))
	}
	if len(m.Tensors) == 0 {
		return out // the model check reports a directory without weights
	}
	modules := m.BlockModules(layers - 1)
	for i, k := range c.KeysFor(m.Config) {
		if _, ok := modeldir.MatchModule(modules, k); !ok && !inSomeBlock(m, k) {
			at, what := fmt.Sprintf("with.keys.%d", i), fmt.Sprintf("keys: %q", k)
			if len(c.Keys) == 0 {
				at, what = "with", fmt.Sprintf("keys (unset, model_type %s's default): %q", m.Config.ModelType, k)
			}
			hint := DidYouMean(k, modules)
			if fused, ok := modeldir.FusedModule(modules, k); ok {
				hint = fmt.Sprintf(" (the model fuses it into %q: adapt that)", fused)
			}
			p := Errorf(at, "%s matches no module of block %d%s", what, layers-1, hint)
			p.Detail = "modules: " + strings.Join(modules, ", ")
			out = append(out, p)
		}
	}
	return out
}

// inSomeBlock reports whether a block of the model has a module key names: a family may mix
// dense blocks and mixtures of experts, and adapters go on the blocks that have the module.
func inSomeBlock(m *modeldir.Info, key string) bool {
	for i := range m.Config.NumHiddenLayers {
		if _, ok := modeldir.MatchModule(m.BlockModules(i), key); ok {
			return true
		}
	}
	return false
}
