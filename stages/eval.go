package stages

import "github.com/yai-dev/yai/stages/stage"

// EvalConfig configures a validation pass.
type EvalConfig struct {
	Batches int    `yaml:"batches" default:"25" min:"1" doc:"validation batches per pass"`
	Split   string `yaml:"split" default:"valid" enum:"valid,test" doc:"valid sets val_loss; test evaluates the data directory's test.jsonl and logs test_loss and test_ppl"`
}

// Eval computes the validation loss (or the test loss).
var Eval = Define(Def[EvalConfig]{
	Name:    "eval",
	Summary: "compute the validation loss (sets val_loss, fires on-eval)",
	Doc: "Runs the model without gradients over `batches` validation batches and reports the mean " +
		"loss as val_loss. Usually `on: after-step` with `every: N`; at setup it gives a baseline. " +
		"With `split: test` it evaluates test.jsonl and notes test_loss and test_ppl instead.",
	Events:     []stage.Event{stage.AfterStep, stage.Setup, stage.Teardown},
	ResumeSafe: true,
})
