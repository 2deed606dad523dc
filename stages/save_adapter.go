package stages

import "github.com/yai-dev/yai/stages/stage"

// SaveAdapterConfig configures writing the adapters.
type SaveAdapterConfig struct {
	Path      string `yaml:"path" default:"adapters" doc:"directory, relative to the run directory, for adapters.safetensors and adapter_config.json"`
	Optimizer bool   `yaml:"optimizer" default:"false" doc:"also save optimizer state and step, to resume"`
}

// SaveAdapter writes the adapters in mlx-lm's format.
var SaveAdapter = Define(Def[SaveAdapterConfig]{
	Name:    "save-adapter",
	Summary: "write adapters.safetensors + adapter_config.json (mlx-lm compatible)",
	Doc: "Writes the LoRA weights and their configuration so `mlx_lm.generate --adapter-path` loads " +
		"them. At teardown it also runs after Ctrl-C and after a guard's checkpoint-and-stop.",
	Events:     []stage.Event{stage.Teardown, stage.AfterStep},
	ResumeSafe: true,
	CheckRecipe: func(c *SaveAdapterConfig, _ Recipe) []Problem {
		if err := stage.CheckOutputPath(c.Path); err != nil {
			return []Problem{Errorf("with.path", "path: %v", err)}
		}
		return nil
	},
})
