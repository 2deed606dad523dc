package stages

// EvalConfig configures a validation pass.
type EvalConfig struct {
	Batches int `yaml:"batches" default:"25" min:"1" doc:"validation batches per pass"`
}

// Eval computes the validation loss.
var Eval = Define(Def[EvalConfig]{
	Name:    "eval",
	Summary: "compute the validation loss (sets val_loss, fires on-eval)",
	Doc: "Runs the model without gradients over `batches` validation batches and reports the mean " +
		"loss as val_loss. Usually `on: after-step` with `every: N`; at setup it gives a baseline.",
	Events:     []Event{AfterStep, Setup, Teardown},
	ResumeSafe: true,
})
