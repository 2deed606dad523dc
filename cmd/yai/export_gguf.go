package main

import (
	"flag"
	"fmt"
	"strings"

	"github.com/yai-dev/yai/internal/gguf"
	"github.com/yai-dev/yai/internal/ggufexport"
)

func init() {
	registerExportFormat(exportFormat{
		name:    ggufexport.FormatMerged,
		summary: "the model with its adapters merged, as one GGUF file (llama.cpp, Ollama, LM Studio), and an Ollama Modelfile",
		adapter: adapterOptional,
		flags: func(fs *flag.FlagSet) func(exportRequest) (string, error) {
			var names []string
			for _, t := range ggufexport.Types() {
				names = append(names, strings.ToLower(t.String()))
			}
			typ := fs.String("type", "f16", "tensor type of the matrices: "+strings.Join(names, ", "))
			name := fs.String("name", "", "general.name in the file, and the file's name (default: the model directory's name)")
			return func(req exportRequest) (string, error) {
				var t gguf.TensorType
				found := false
				for _, c := range ggufexport.Types() {
					if strings.EqualFold(c.String(), *typ) {
						t, found = c, true
					}
				}
				if !found {
					return "", fmt.Errorf("--type %s: use one of %s", *typ, strings.Join(names, ", "))
				}
				res, err := ggufexport.Merged(req.ModelDir, req.AdapterDir, req.Out, ggufexport.MergedOptions{Type: t, Name: *name})
				if err != nil {
					return "", err
				}
				what := "the model"
				if req.AdapterDir != "" {
					what = fmt.Sprintf("the model with %d adapted layers merged", len(res.Fused))
				}
				return fmt.Sprintf("wrote %s as %s to %s/%s, with a Modelfile (ollama create NAME -f %s/Modelfile)",
					what, t, res.Dir, res.Files[0], res.Dir), nil
			}
		},
	})
	registerExportFormat(exportFormat{
		name:    ggufexport.FormatAdapter,
		summary: "the adapters as a llama.cpp GGUF LoRA adapter (llama-cli --lora, Ollama ADAPTER), to load beside a base GGUF",
		adapter: adapterRequired,
		flags: func(fs *flag.FlagSet) func(exportRequest) (string, error) {
			base := fs.String("base-gguf", "", "the base model's GGUF file (the one imported, or yai export gguf without --adapter): checked, and the Modelfile's FROM")
			name := fs.String("name", "", "general.name in the file (default: the adapter directory's name)")
			return func(req exportRequest) (string, error) {
				res, err := ggufexport.Adapter(req.ModelDir, req.AdapterDir, req.Out, ggufexport.AdapterOptions{BaseGGUF: *base, Name: *name})
				if err != nil {
					return "", err
				}
				msg := fmt.Sprintf("wrote %d adapted layers to %s/%s", len(res.Fused), res.Dir, res.Files[0])
				if *base != "" {
					msg += fmt.Sprintf(", with a Modelfile (ollama create NAME -f %s/Modelfile)", res.Dir)
				} else {
					msg += " (no Modelfile: give --base-gguf for one)"
				}
				return msg, nil
			}
		},
	})
}
