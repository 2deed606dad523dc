package main

import (
	"fmt"
	"io"
	"os"

	"github.com/yai-dev/yai/internal/fuse"
	"github.com/yai-dev/yai/internal/generate"
)

func init() {
	register(command{name: "fuse", summary: "merge adapters into the model: a new model directory", run: func(args []string) int {
		return fuseMain(args, os.Stdout, os.Stderr)
	}})
}

const fuseUsage = `
Usage: yai fuse --model MODEL --adapter DIR --out NEW_DIR [--dequantize]

Merges LoRA adapters into the base weights and writes a complete model directory
(config.json, safetensors shards and index, tokenizer files) that yai and mlx_lm load. Each
adapted layer is dequantized, gets scale·B·A added, and is quantized again with its own bits
and group size; --dequantize keeps the adapted layers in float instead. NEW_DIR must not
exist: fuse never overwrites.`

func fuseMain(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("fuse", fuseUsage)
	fs.SetOutput(stderr)
	var mf modelFlags
	mf.register(fs, true)
	out := fs.String("out", "", "directory to create for the fused model (required; must not exist)")
	dequantize := fs.Bool("dequantize", false, "keep the fused layers in float instead of re-quantizing them")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	switch {
	case len(pos) > 0:
		return usageErrorTo(stderr, fs, "unexpected arguments %q", pos)
	case mf.model == "":
		return usageErrorTo(stderr, fs, "--model is required")
	case mf.adapter == "":
		return usageErrorTo(stderr, fs, "--adapter is required")
	case *out == "":
		return usageErrorTo(stderr, fs, "--out is required")
	}
	dir, err := mf.resolve()
	if err == nil {
		var adapter string
		if adapter, err = generate.AdapterDir(mf.adapter); err == nil {
			var res fuse.Result
			if res, err = fuse.Fuse(dir, adapter, *out, fuse.Options{Dequantize: *dequantize}); err == nil {
				kind := "re-quantized"
				if *dequantize {
					kind = "kept in float"
				}
				fmt.Fprintf(stdout, "fused %d layers (%s) into %s (%d weight files)\n", len(res.Layers), kind, *out, len(res.Files))
				return 0
			}
		}
	}
	fmt.Fprintln(stderr, "yai fuse:", err)
	return 1
}
