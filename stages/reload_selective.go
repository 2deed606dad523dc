package stages

import (
	"fmt"

	"github.com/yai-dev/yai/modeldir"
	"github.com/yai-dev/yai/stages/stage"
)

// ReloadSelectiveConfig configures a selective reload.
type ReloadSelectiveConfig struct {
	Tensors    []string `yaml:"tensors" default:"targets,head" doc:"tensors to re-materialise from the model files: 'targets' (the LoRA target modules), 'head' (lm_head and final norm), or tensor-name suffixes"`
	ClearCache bool     `yaml:"clear_cache" default:"true" doc:"clear the MLX cache between dropping and reloading"`
}

// ReloadSelective frees and re-materialises chosen base weights.
var ReloadSelective = Define(Def[ReloadSelectiveConfig]{
	Name:    "reload-selective",
	Summary: "drop non-training arrays, clear the cache, reload only the named tensors",
	Doc: "Frees every array that is not training state (LoRA weights, optimizer state, step, " +
		"schedule and data position are kept exactly), clears the MLX cache and re-materialises " +
		"from the model files only the tensors named. Logs memory before and after.",
	Events:     []stage.Event{stage.AfterStep, stage.BeforeStep},
	ResumeSafe: true,
	CheckModel: func(c *ReloadSelectiveConfig, m *modeldir.Info) []Problem {
		if len(m.Tensors) == 0 {
			return nil
		}
		var out []Problem
		for i, t := range c.Tensors {
			if t != "targets" && t != "head" && !m.HasTensorSuffix(t) {
				out = append(out, Errorf(fmt.Sprintf("with.tensors.%d", i), "tensors: %q names no tensor of the model (use targets, head, or a name suffix)", t))
			}
		}
		return out
	},
})
