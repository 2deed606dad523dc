package stages

import (
	"github.com/yai-dev/yai/memplan"
	"github.com/yai-dev/yai/stages/stage"
)

// StepConfig configures the optimizer step run on every training step.
type StepConfig struct {
	Optimizer      string  `yaml:"optimizer" default:"adamw" enum:"adamw,adam,sgd" doc:"optimizer for the LoRA parameters"`
	LR             float64 `yaml:"lr" default:"1e-5" min:"0" max:"1" doc:"peak learning rate"`
	Schedule       string  `yaml:"schedule" default:"constant" enum:"constant,cosine,linear" doc:"learning-rate schedule after warm-up"`
	Warmup         int     `yaml:"warmup" default:"0" min:"0" doc:"steps of linear warm-up from 0 to lr"`
	WeightDecay    float64 `yaml:"weight_decay" default:"0.01" min:"0" max:"1" doc:"decoupled weight decay (adamw)"`
	Accumulation   int     `yaml:"accumulation" default:"1" min:"1" max:"1024" doc:"micro-batches whose gradients are summed per optimizer step"`
	GradCheckpoint bool    `yaml:"grad_checkpoint" default:"true" doc:"recompute block activations in the backward pass instead of keeping them"`
	OnNonFinite    string  `yaml:"on_nonfinite" default:"stop" enum:"stop,skip" resume:"safe" doc:"a step whose loss or gradient is NaN or infinite is never applied; stop ends the run (exit 5) naming the step and its rows, skip drops the batch and counts it in metrics"`
	MaxGradNorm    float64 `yaml:"max_grad_norm" default:"0" min:"0" doc:"clip gradients to this global norm; 0 turns clipping off"`
	PrefixCache    Bytes   `yaml:"prefix_cache" default:"0" resume:"safe" doc:"keep, per batch, the hidden states entering the first adapted block (in memory, up to this many bytes) so later epochs skip the frozen blocks below it; 0 turns it off. Exact: the frozen blocks are neither trained nor random"`
	LossChunk      int     `yaml:"loss_chunk" default:"512" min:"0" max:"1048576" doc:"the output head and cross-entropy run only on trained target positions (not padding, not a masked prompt), this many at a time and one chunk after another, so the logits of a few chunks (MLX runs up to about four ahead) exist at once instead of every position's; 0 runs every trained position in one chunk"`
}

// Step is the optimizer step; its optimizer and checkpointing drive the memory estimate.
var Step = Define(Def[StepConfig]{
	Name:    "step",
	Summary: "one optimizer step: forward, masked cross-entropy, backward, update",
	Doc: "Takes the next batch, computes the loss over the non-masked target tokens, its gradient " +
		"with respect to the LoRA parameters, and applies the optimizer. Parameters, optimizer " +
		"state and loss are evaluated at the end of every step, so no lazy graph outlives it. " +
		"Reports loss, tokens and learning rate for triggers and metrics.",
	Events:   []stage.Event{stage.OnStep},
	Once:     true,
	Expected: "no step stage: the run will not train",
	CheckRecipe: func(c *StepConfig, r Recipe) []Problem {
		if r.World() > 1 && c.Accumulation > 1 {
			return []Problem{Errorf("with.accumulation", "accumulation: %d with %d ranks: a distributed run accumulates across ranks instead; raise batch_size and keep accumulation 1",
				c.Accumulation, r.World())}
		}
		return nil
	},
	Workload: func(c *StepConfig, w *memplan.Workload) {
		w.Optimizer, w.Accumulation, w.GradCheckpoint = c.Optimizer, c.Accumulation, c.GradCheckpoint
		w.LossChunk, w.PrefixCache = c.LossChunk, int64(c.PrefixCache)
	},
})
