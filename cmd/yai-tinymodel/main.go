// Command yai-tinymodel writes a random model of any family yai reads in mlx-community layout
// (4-bit weights, config.json, byte-level tokenizer): small ones for tests and the quickstart
// recipe (tiny, micro, tiny-<family>), published shapes for runs at full size on a GPU.
//
//	go run ./cmd/yai-tinymodel -out testdata/tiny-llama-4bit -preset tiny
package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/yai-dev/yai/internal/model"
)

func main() {
	out := flag.String("out", "", "directory to write the model into (required)")
	preset := flag.String("preset", "tiny", "model size: "+strings.Join(presetNames(), ", "))
	seed := flag.Uint64("seed", 0, "random seed (0 keeps the preset's)")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "yai-tinymodel: -out is required")
		flag.Usage()
		os.Exit(2)
	}
	spec, ok := model.TinyPresets[*preset]
	if !ok {
		fmt.Fprintf(os.Stderr, "yai-tinymodel: unknown preset %q (have %s)\n", *preset, strings.Join(presetNames(), ", "))
		os.Exit(2)
	}
	if *seed != 0 {
		spec.Seed = *seed
	}
	if err := model.WriteTiny(*out, spec); err != nil {
		fmt.Fprintln(os.Stderr, "yai-tinymodel:", err)
		os.Exit(1)
	}
	fmt.Printf("wrote %s model to %s\n", *preset, *out)
}

func presetNames() []string {
	names := make([]string, 0, len(model.TinyPresets))
	for n := range model.TinyPresets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
