package main

import (
	"flag"
	"fmt"
	"strings"

	"github.com/yai-dev/yai/internal/fuse"
	"github.com/yai-dev/yai/internal/gguf"
	"github.com/yai-dev/yai/internal/ggufexport"
)

func init() {
	registerExportFormat(exportFormat{
		name:     ggufexport.FormatMerged,
		summary:  "the model with its adapters merged, as one GGUF file (llama.cpp, Ollama, LM Studio), and an Ollama Modelfile",
		adapter:  adapterOptional,
		families: func() []string { return ggufexport.Families(ggufexport.FormatMerged) },
		flags: func(fs *flag.FlagSet) func(exportRequest) (string, error) {
			var names []string
			for _, t := range ggufexport.Types() {
				names = append(names, strings.ToLower(t.String()))
			}
			typ := fs.String("type", "f16", "tensor type of the matrices: "+strings.Join(names, ", "))
			name := fs.String("name", "", "general.name in the file, and the file's name (default: the model directory's name)")
			var cf checkFlags
			cf.register(fs)
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
				check, checked, err := cf.check(req.Adapter)
				if err != nil {
					return "", err
				}
				opts := ggufexport.MergedOptions{Type: t, Name: *name}
				var res *ggufexport.Result
				var survival string
				if checked {
					var s fuse.Survival
					res, s, err = ggufexport.MergedChecked(req.ModelDir, req.AdapterDir, req.Out, opts, check)
					if s.File != "" {
						fmt.Fprintln(req.Stdout, s)
					}
					if err == nil && s.Verify(check.Threshold, "") != nil {
						survival = fmt.Sprintf(" (forced: it keeps only %.1f%% of the adapters' improvement)", 100*s.Kept())
					}
				} else {
					res, err = ggufexport.Merged(req.ModelDir, req.AdapterDir, req.Out, opts)
				}
				if err != nil {
					return "", err
				}
				what := "the model"
				if req.AdapterDir != "" {
					what = fmt.Sprintf("the model with %d adapted layers merged", len(res.Fused))
				}
				if req.AdapterDir != "" && !checked {
					fmt.Fprintf(req.Stderr, "yai export %s: not checked: %s\n", ggufexport.FormatMerged, cf.unchecked)
				}
				return fmt.Sprintf("wrote %s as %s to %s/%s, with a Modelfile (ollama create NAME -f %s/Modelfile)%s",
					what, t, res.Dir, res.Files[0], res.Dir, survival), nil
			}
		},
	})
	registerExportFormat(exportFormat{
		name:     ggufexport.FormatAdapter,
		summary:  "the adapters as a llama.cpp GGUF LoRA adapter (llama-cli --lora, Ollama ADAPTER), to load beside a base GGUF",
		adapter:  adapterRequired,
		families: func() []string { return ggufexport.Families(ggufexport.FormatAdapter) },
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
