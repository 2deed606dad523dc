package stages

import (
	"context"

	"github.com/yai-dev/yai/stages/stage"
)

// CheckpointConfig configures periodic checkpoints.
type CheckpointConfig struct {
	Keep int `yaml:"keep" default:"3" min:"0" max:"100000" doc:"newest checkpoints kept under checkpoints/ in the run directory; 0 keeps every one"`
}

// Checkpoint writes a complete, atomic checkpoint of the run at the end of the step.
var Checkpoint = Define(Def[CheckpointConfig]{
	Name:    "checkpoint",
	Summary: "write a complete checkpoint at the end of the step (resume with yai run --resume)",
	Doc: "Asks for a checkpoint at the end of the step in which it fires, once every stage of the " +
		"step has run: adapters, optimizer state, step and update counters, schedule position, " +
		"accumulated gradients, data position, every random generator, the governor's growth " +
		"window and the resolved recipe. It is written to a temporary directory, synced, and " +
		"renamed into checkpoints/step-N, so a half-written checkpoint is never visible. " +
		"Usually `every: N`.",
	Events:     []stage.Event{stage.AfterStep, stage.BeforeStep, stage.OnStep, stage.OnEval},
	ResumeSafe: true,
	Build: func(c *CheckpointConfig) (stage.Stage, error) {
		return stage.StageFunc(func(ctx context.Context, s *stage.Session) error {
			s.Checkpoint(c.Keep)
			return nil
		}), nil
	},
})
