package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/yai-dev/yai/mlxrun"
	"github.com/yai-dev/yai/recipe"
)

func init() {
	register(command{name: "validate", summary: "check a recipe without loading weights (the dry run)", run: runValidate})
}

const validateUsage = `
Usage: yai validate [--set path=value]... [--json] [--skip-model] recipe.yaml

Checks a recipe without running it: every key against the stage specs, the stage graph, every
trigger expression, the model's files (config.json, safetensors headers and file sizes, the
tokenizer; no weights are read) and the LoRA settings against the model, the data (every row
of the train and valid files, tokenized with the model's tokenizer and cached under the user
cache directory), and estimates memory per term (weights, LoRA, gradients, optimizer,
activations, logits, cache) on the widest real batch against memory.limit: a floor above the
limit is an error, an estimated peak above it a warning. Prints every problem at once, then
the plan. --skip-model skips the model and the data.

Exit status: 0 valid (warnings allowed), 1 invalid, 2 usage error.`

func runValidate(args []string) int {
	fs := newFlagSet("validate", validateUsage)
	var sets listFlag
	fs.Var(&sets, "set", "override a recipe value, e.g. --set memory.limit=6GB (repeatable)")
	asJSON := fs.Bool("json", false, "print diagnostics and plan as JSON on stdout")
	skipModel := fs.Bool("skip-model", false, "do not resolve or inspect the model, nor read the data")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return usageError(fs, "want exactly one recipe file, got %d arguments", len(pos))
	}
	plan, diags := recipe.Validate(pos[0], sets, recipe.ValidateOptions{SkipModel: *skipModel, Env: mlxrun.Environment()})
	if *asJSON {
		out := struct {
			Valid       bool               `json:"valid"`
			Diagnostics recipe.Diagnostics `json:"diagnostics"`
			Plan        *recipe.PlanJSON   `json:"plan,omitempty"`
		}{Valid: plan != nil, Diagnostics: diags}
		if out.Diagnostics == nil {
			out.Diagnostics = recipe.Diagnostics{}
		}
		if plan != nil {
			out.Plan = plan.JSON()
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
	} else {
		fmt.Fprint(os.Stderr, diags.Format())
		if plan != nil {
			fmt.Print(plan.Describe())
			fmt.Printf("%s is valid\n", pos[0])
		}
	}
	if plan == nil {
		return 1
	}
	return 0
}
