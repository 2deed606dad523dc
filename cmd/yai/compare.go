package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/yai-dev/yai/internal/generate"
	"github.com/yai-dev/yai/internal/lora"
	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/tokenizer"
	"github.com/yai-dev/yai/modeldir"
)

func init() {
	register(command{name: "compare", summary: "answer prompts greedily without, then with, a run's adapters", run: runCompare})
}

const compareUsage = `
Usage: yai compare --model MODEL --adapters DIR [--max-tokens 60] PROMPT...

Answers each PROMPT as a user chat message (the model's chat template, greedy decoding)
with the base model, then with the LoRA adapters of DIR (a run's adapters directory)
attached, and prints both answers. MODEL is a directory or an alias, as a recipe's model:.`

func runCompare(args []string) int {
	fset := newFlagSet("compare", compareUsage)
	modelRef := fset.String("model", "", "model directory or alias")
	adapters := fset.String("adapters", "", "adapter directory (adapters.safetensors + adapter_config.json)")
	maxTokens := fset.Int("max-tokens", 60, "most tokens generated per answer")
	prompts, code, ok := parseFlags(fset, args)
	if !ok {
		return code
	}
	if *modelRef == "" || *adapters == "" || len(prompts) == 0 {
		return usageError(fset, "want --model, --adapters and at least one PROMPT")
	}
	if err := inRange("max-tokens", *maxTokens, 1, 1<<30); err != nil {
		return usageError(fset, "%v", err)
	}
	if err := compare(*modelRef, *adapters, prompts, *maxTokens); err != nil {
		fmt.Fprintln(os.Stderr, "yai compare:", err)
		return 1
	}
	return 0
}

func compare(modelRef, adapterDir string, prompts []string, maxTokens int) error {
	dir, err := modeldir.Resolve(modelRef, ".")
	if err != nil {
		return err
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return err
	}
	m, err := model.Load(dir, model.LoadOptions{})
	if err != nil {
		return err
	}
	defer m.Free()
	before := make([]string, len(prompts))
	for i, p := range prompts {
		if before[i], err = generate.Answer(m, tok, p, maxTokens); err != nil {
			return err
		}
	}
	a, err := lora.Load(m.Layers, adapterDir)
	if err != nil {
		return err
	}
	defer a.Free()
	defer a.Detach()
	for i, p := range prompts {
		after, err := generate.Answer(m, tok, p, maxTokens)
		if err != nil {
			return err
		}
		fmt.Printf("> %s\n  before: %s\n  after:  %s\n", p, oneLine(before[i]), oneLine(after))
	}
	return nil
}

// oneLine keeps each answer on its own line in the terminal.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
