package main

import (
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/yai-dev/yai/internal/generate"
	"github.com/yai-dev/yai/modeldir"
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
	// families are the model families (modeldir's names) the format exports; the exporter
	// refuses the others with an error naming the format.
	families func() []string
}

type adapterNeed int

const (
	adapterOptional adapterNeed = iota
	adapterRequired
)

// exportRequest is what every format gets: the model and adapter directories and --out.
type exportRequest struct {
	ModelDir, AdapterDir, Out string
	// Adapter is --adapter as given: an adapter directory or a run directory.
	Adapter        string
	Stdout, Stderr io.Writer
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
Which family exports to which format:

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

// exportTable is the Markdown table of the formats each model family exports to (the
// README holds the same table).
func exportTable() string {
	names := slices.Sorted(maps.Keys(exportFormats))
	seen := map[string]bool{}
	var families []string
	for _, t := range modeldir.SupportedTypes() {
		f, _ := modeldir.FamilyOf(t)
		if !seen[f.Name] {
			seen[f.Name] = true
			families = append(families, f.Name)
		}
	}
	sort.Strings(families)
	var b strings.Builder
	b.WriteString("| family |")
	for _, n := range names {
		fmt.Fprintf(&b, " `%s` |", n)
	}
	b.WriteString("\n|---|" + strings.Repeat("---|", len(names)) + "\n")
	for _, fam := range families {
		fmt.Fprintf(&b, "| %s |", fam)
		for _, n := range names {
			mark := "no"
			if slices.Contains(exportFormats[n].families(), fam) {
				mark = "yes"
			}
			fmt.Fprintf(&b, " %s |", mark)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func exportMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stderr, strings.TrimSpace(fmt.Sprintf(exportUsage, exportFormatList(), exportTable())))
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
	req := exportRequest{Out: *out, Adapter: mf.adapter, Stdout: stdout, Stderr: stderr}
	var err error
	if req.ModelDir, err = mf.resolve(); err == nil && mf.adapter != "" {
		req.AdapterDir, err = generate.AdapterDir(mf.adapter)
	}
	if err == nil {
		err = checkExportable(req.ModelDir, f)
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

// checkExportable refuses a family the format does not export, before anything is loaded.
func checkExportable(modelDir string, f exportFormat) error {
	c, err := modeldir.ReadConfig(modelDir)
	if err != nil {
		return err
	}
	if fams := f.families(); !slices.Contains(fams, c.Family.Name) {
		return fmt.Errorf("model_type %s (family %s) cannot be exported as %s yet: %s exports %s (yai export --help has the table)",
			c.ModelType, c.Family.Name, f.name, f.name, strings.Join(fams, ", "))
	}
	return nil
}
