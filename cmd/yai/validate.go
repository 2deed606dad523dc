package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"

	"github.com/yai-dev/yai/recipe"
	"github.com/yai-dev/yai/stages/mlxbackend"
)

func init() {
	register(command{name: "validate", summary: "check a recipe without loading weights (the dry run)", run: runValidate})
}

const validateUsage = `
Usage: yai validate [--set path=value]... [--ranks N | --hostfile hosts.json] [--json] [--skip-model] [--strict] recipe.yaml

Checks a recipe without running it: every key against the stage specs, the stage graph, every
trigger expression, the model's files (config.json, safetensors headers and file sizes, the
tokenizer; no weights are read) and the LoRA settings against the model, the data (every row
of the train and valid files, tokenized with the model's tokenizer and cached under the user
cache directory), and estimates memory per term (weights, LoRA, gradients, optimizer,
activations, logits, cache) on the widest real batch against memory.limit: a floor above the
limit is an error; over the limit, the plan names the schedule that fits (micro-batches,
checkpointing), which yai run starts with, or warns when none does (--strict: always
warns). --ranks and --hostfile check the recipe for that many ranks, as yai run would run
it (batch_size must divide by them). Prints every problem at once, then the plan.
--skip-model skips the model and the data.

Exit status: 0 valid (warnings allowed), 1 invalid or the result could not be written to
stdout, 2 usage error.`

func runValidate(args []string) int {
	fs := newFlagSet("validate", validateUsage)
	var sets listFlag
	fs.Var(&sets, "set", "override a recipe value, e.g. --set memory.limit=6GB (repeatable)")
	asJSON := fs.Bool("json", false, "print diagnostics and plan as JSON on stdout")
	skipModel := fs.Bool("skip-model", false, "do not resolve or inspect the model, nor read the data")
	strict := fs.Bool("strict", false, "check the recipe as written: an estimate over the limit warns instead of planning a schedule that fits")
	ranks := fs.Int("ranks", 0, "check for N ranks (as --set distributed.ranks=N)")
	hostfile := fs.String("hostfile", "", "check for one rank per host of this mlx.launch hostfile")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	world, _, err := worldOf(fs, *ranks, *hostfile)
	if err != nil {
		return usageError(fs, "%v", err)
	}
	if world > 0 {
		sets = append(sets, "distributed.ranks="+strconv.Itoa(world))
	}
	if len(pos) != 1 {
		return usageError(fs, "want exactly one recipe file, got %d arguments", len(pos))
	}
	plan, diags := recipe.Validate(pos[0], sets, recipe.ValidateOptions{SkipModel: *skipModel, Strict: *strict, Env: mlxbackend.Environment()})
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
		if err := enc.Encode(out); err != nil {
			fmt.Fprintln(os.Stderr, "yai validate: writing the JSON:", err)
			return 1
		}
	} else {
		fmt.Fprint(os.Stderr, diags.Format())
		if plan != nil {
			if _, err := fmt.Printf("%s%s is valid\n", plan.Describe(), pos[0]); err != nil {
				fmt.Fprintln(os.Stderr, "yai validate: writing the plan:", err)
				return 1
			}
		}
	}
	if plan == nil {
		return 1
	}
	return 0
}
