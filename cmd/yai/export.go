package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/yai-dev/yai/internal/generate"
)

func init() {
	register(command{name: "export", summary: "write a model or its adapters for other runtimes (llama.cpp, Ollama, PEFT)", run: func(args []string) int {
		return exportMain(args, os.Stdout, os.Stderr)
	}})
}

// exportFormat is one `yai export FORMAT`. A format lives in its own file and adds itself
// with registerExportFormat from an init function.
type exportFormat struct {
	name, summary string
	// adapter: whether --adapter is required ("optional" formats take it when given).
	adapter adapterNeed
	// flags registers the format's own flags; run is called after parsing with the
	// resolved model directory and adapter directory ("" when none was given).
	flags func(fs *flag.FlagSet) func(req exportRequest) (string, error)
}

type adapterNeed int

const (
	adapterOptional adapterNeed = iota
	adapterRequired
)

// exportRequest is what every format gets: the model and adapter directories and --out.
type exportRequest struct {
	ModelDir, AdapterDir, Out string
	Stdout                    io.Writer
}

var exportFormats = map[string]exportFormat{}

func registerExportFormat(f exportFormat) { exportFormats[f.name] = f }

const exportUsage = `
Usage: yai export FORMAT --model MODEL [--adapter DIR] --out NEW_DIR [format flags]

Writes the model, merged with its adapters, or the adapters alone, in a format other
runtimes load. NEW_DIR must not exist: it is assembled beside its final path and appears
only when complete; export never overwrites.

Formats:
%s
Run 'yai export FORMAT --help' for a format's flags.`

func exportFormatList() string {
	names := make([]string, 0, len(exportFormats))
	for n := range exportFormats {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "  %-10s %s\n", n, exportFormats[n].summary)
	}
	return b.String()
}

func exportMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stderr, strings.TrimSpace(fmt.Sprintf(exportUsage, exportFormatList())))
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	f, ok := exportFormats[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "yai export: unknown format %q\n\nFormats:\n%s", args[0], exportFormatList())
		return 2
	}
	fs := newFlagSet("export "+f.name, fmt.Sprintf("Usage: yai export %s --model MODEL --adapter DIR --out NEW_DIR [flags]\n\n%s.", f.name, f.summary))
	fs.SetOutput(stderr)
	var mf modelFlags
	mf.register(fs, f.adapter == adapterRequired)
	out := fs.String("out", "", "directory to create for the export (required; must not exist)")
	run := f.flags(fs)
	pos, code, ok := parseFlags(fs, args[1:])
	if !ok {
		return code
	}
	switch {
	case len(pos) > 0:
		return usageErrorTo(stderr, fs, "unexpected arguments %q", pos)
	case mf.model == "":
		return usageErrorTo(stderr, fs, "--model is required")
	case mf.adapter == "" && f.adapter == adapterRequired:
		return usageErrorTo(stderr, fs, "--adapter is required")
	case *out == "":
		return usageErrorTo(stderr, fs, "--out is required")
	}
	req := exportRequest{Out: *out, Stdout: stdout}
	var err error
	if req.ModelDir, err = mf.resolve(); err == nil && mf.adapter != "" {
		req.AdapterDir, err = generate.AdapterDir(mf.adapter)
	}
	var summary string
	if err == nil {
		summary, err = run(req)
	}
	if err != nil {
		fmt.Fprintf(stderr, "yai export %s: %v\n", f.name, err)
		return 1
	}
	fmt.Fprintln(stdout, summary)
	return 0
}
