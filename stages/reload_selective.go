package stages

import "reflect"

// ReloadSelectiveConfig configures a selective reload.
type ReloadSelectiveConfig struct {
	Tensors    []string `yaml:"tensors" default:"targets,head" doc:"tensors to re-materialise from the model files: 'targets' (the LoRA target modules), 'head' (lm_head and final norm), or tensor-name suffixes"`
	ClearCache bool     `yaml:"clear_cache" default:"true" doc:"clear the MLX cache between dropping and reloading"`
}

func init() {
	Register(Kind{
		Name:    "reload-selective",
		Summary: "drop non-training arrays, clear the cache, reload only the named tensors",
		Doc: "Frees every array that is not training state (LoRA weights, optimizer state, step, " +
			"schedule and data position are kept exactly), clears the MLX cache and re-materialises " +
			"from the model files only the tensors named. Logs memory before and after.",
		Config: reflect.TypeFor[ReloadSelectiveConfig](),
		Events: []Event{AfterStep, BeforeStep},
	})
}
