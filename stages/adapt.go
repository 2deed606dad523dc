package stages

import "github.com/yai-dev/yai/stages/stage"

// Adapt levers.
const (
	LeverMicroBatches  = "micro-batches"
	LeverCheckpointing = "checkpointing"
	LeverCacheLimit    = "cache-limit"
)

// AdaptConfig configures the governor that keeps each step under the memory limit by changing
// how the step is computed, never what it computes.
type AdaptConfig struct {
	Limit           Bytes    `yaml:"limit" doc:"peak (MLX active memory) each step must stay under; empty means memory.limit"`
	Margin          float64  `yaml:"margin" default:"0.1" min:"0" max:"0.9" doc:"share of the limit kept free for the error of the prediction"`
	RelaxAfter      int      `yaml:"relax_after" default:"10" min:"1" max:"1000000" doc:"steps in a row a cheaper schedule must be predicted to fit before the governor goes back to it (hysteresis)"`
	MaxMicroBatches int      `yaml:"max_micro_batches" default:"0" min:"0" max:"1024" doc:"most parts a batch may be split into; 0: one row each at most"`
	Levers          []string `yaml:"levers" default:"micro-batches,checkpointing,cache-limit" enum:"micro-batches,checkpointing,cache-limit" doc:"what the governor may change: split the batch (token-weighted, same update), recompute the adapted blocks, bound MLX's cache to the headroom"`
}

// Adapt predicts each step's peak from the next batch's shape and the memory the last steps
// measured, and picks the cheapest schedule that keeps it under the limit.
var Adapt = Define(Def[AdaptConfig]{
	Name:    "adapt",
	Summary: "keep each step under the limit by changing how it is computed (micro-batches, checkpointing), never what",
	Doc: "Before each step, predicts the step's MLX peak from the next batch's shape (the memory " +
		"estimate, calibrated on the peaks the last steps measured) and applies the cheapest " +
		"schedule that keeps it under limit × (1 − margin): the batch whole or split into " +
		"micro-batches whose token-weighted gradients add up to the whole batch's (the update is " +
		"the same), gradient checkpointing off or on, and MLX's cache bounded to the headroom. " +
		"It relaxes again after relax_after steps in which a cheaper schedule would have fit. " +
		"Changes are logged with the predicted memory before and after and noted in metrics. " +
		"A guard with action adapt runs it at once after a crossing. --strict turns it off.",
	Events:     []stage.Event{stage.BeforeStep, stage.AfterStep},
	Once:       true,
	ResumeSafe: true,
	CheckRecipe: func(c *AdaptConfig, r Recipe) []Problem {
		if r.Count(Step.Kind) == 0 {
			return []Problem{Errorf("kind", "adapt changes how the step stage computes, and the recipe has none")}
		}
		return nil
	},
})
