package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/yai-dev/yai/internal/peft"
)

// yai export peft: the adapters as a Hugging Face PEFT LoRA adapter.
func init() {
	registerExportFormat(exportFormat{
		name:     "peft",
		summary:  "the adapters as a Hugging Face PEFT LoRA adapter (adapter_model.safetensors, adapter_config.json) for the float base in transformers",
		adapter:  adapterRequired,
		families: peft.Supported,
		flags: func(fs *flag.FlagSet) func(exportRequest) (string, error) {
			base := fs.String("base", "", "base_model_name_or_path: the float model peft loads the adapter onto, a Hugging Face repo id or a directory (default: --model's directory)")
			return func(req exportRequest) (string, error) {
				res, err := peft.Export(req.ModelDir, req.AdapterDir, req.Out, peft.ExportOptions{BaseModel: *base})
				if err != nil {
					return "", err
				}
				return fmt.Sprintf("wrote %d adapted modules (r %d, lora_alpha %g) as a PEFT adapter to %s (PeftModel.from_pretrained(model, %q))",
					len(res.Modules), res.Rank, res.Alpha, req.Out, req.Out), nil
			}
		},
	})
	register(command{name: "import-peft", summary: "convert a Hugging Face PEFT LoRA adapter into yai adapters", run: func(args []string) int {
		return importPeftMain(args, os.Stdout, os.Stderr)
	}})
}

const importPeftUsage = `
Usage: yai import-peft PEFT_DIR --model MODEL --out NEW_DIR

Converts a LoRA adapter saved by Hugging Face peft (adapter_model.safetensors and
adapter_config.json) into yai's adapter files (adapters.safetensors, adapter_config.json,
as mlx-lm writes them) for MODEL, the 4-bit or float MLX model of the same base: use NEW_DIR
as --adapter of generate, chat, eval, fuse and export. The adapter must cover the last blocks
with the same projections in each; DoRA, trained biases, per-module ranks and
modules_to_save are refused. NEW_DIR must not exist.`

func importPeftMain(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("import-peft", importPeftUsage)
	fs.SetOutput(stderr)
	var mf modelFlags
	fs.StringVar(&mf.model, "model", "", "model: a directory, a Hugging Face repo id in the local cache, or an alias (required)")
	out := fs.String("out", "", "adapter directory to create (required; must not exist)")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	switch {
	case len(pos) != 1:
		return usageErrorTo(stderr, fs, "want one PEFT_DIR")
	case mf.model == "":
		return usageErrorTo(stderr, fs, "--model is required")
	case *out == "":
		return usageErrorTo(stderr, fs, "--out is required")
	}
	dir, err := mf.resolve()
	if err == nil {
		var res peft.ImportResult
		if res, err = peft.Import(dir, pos[0], *out); err == nil {
			c := res.Config
			fmt.Fprintf(stdout, "imported %s: %v on the last %d blocks, rank %d, scale %g, into %s\n", pos[0], c.Keys, c.NumLayers, c.Rank, c.Scale, *out)
			return 0
		}
	}
	fmt.Fprintln(stderr, "yai import-peft:", err)
	return 1
}
