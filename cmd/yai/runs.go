package main

import (
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/yai-dev/yai/internal/rundir"
	"github.com/yai-dev/yai/stages"
)

func init() {
	register(command{name: "runs", summary: "list run directories, newest first", run: func(args []string) int {
		return runsMain(args, os.Stdout, os.Stderr)
	}})
}

const runsUsage = `
Usage: yai runs [DIR]

Lists the run directories under DIR (default runs), newest first: name, status (done,
stopped by guard, aborted by guard, interrupted, failed, or running or killed when there is
no result.json), steps, final loss, MLX peak memory and the recipe's hash.`

func runsMain(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("runs", runsUsage)
	fs.SetOutput(stderr)
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(pos) > 1 {
		return usageErrorTo(stderr, fs, "give at most one directory")
	}
	dir := "runs"
	if len(pos) == 1 {
		dir = pos[0]
	}
	runs, problems, err := rundir.List(dir)
	if err != nil {
		fmt.Fprintln(stderr, "yai runs:", err)
		return 1
	}
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "RUN\tSTATUS\tSTEPS\tFINAL LOSS\tPEAK\tRECIPE")
	for _, r := range runs {
		steps, loss, peak := "0", "-", "-"
		if n := len(r.Steps); n > 0 {
			last := r.Steps[n-1]
			steps, loss = fmt.Sprint(last.Step), fmt.Sprintf("%.4f", float64(last.Loss))
			var p int64
			for _, s := range r.Steps {
				p = max(p, s.MLXPeak)
			}
			peak = stages.Bytes(p).String()
		}
		hash := r.RecipeHash
		if len(hash) > 12 {
			hash = hash[:12]
		}
		if hash == "" {
			hash = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Status(), steps, loss, peak, hash)
	}
	w.Flush()
	for _, p := range problems {
		fmt.Fprintln(stderr, "yai runs:", p)
	}
	if len(problems) > 0 {
		return 1
	}
	return 0
}
