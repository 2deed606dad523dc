package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/yai-dev/yai/internal/report"
	"github.com/yai-dev/yai/internal/rundir"
)

func init() {
	register(command{name: "report", summary: "charts and a summary of one or more runs", run: func(args []string) int {
		return reportMain(args, os.Stdout, os.Stderr, time.Now())
	}})
}

const reportUsage = `
Usage: yai report [--out DIR] [--json] RUN_DIR [RUN_DIR...]

Reads each run's metrics.jsonl and writes a new directory holding loss.png (loss and
val_loss per step), memory.png (MLX active, peak and cache memory and RSS per step, the
memory limit and the guard threshold limit × (1 + buffer), markers where clear-cache, reload,
guard and checkpoint fired and where a step's MLX peak passed the limit) and summary.txt,
which is also printed: steps, tokens, tokens/s, final losses, peak memory, events, and how
many steps passed the limit with the worst, or that none did. Several runs share each chart.

--out defaults to RUN_DIR/report for one run, report-<UTC time> for several; it must not
exist.`

func reportMain(args []string, stdout, stderr io.Writer, now time.Time) int {
	fs := newFlagSet("report", reportUsage)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "directory to create for the charts and summary")
	asJSON := fs.Bool("json", false, "print the summaries as JSON instead of text")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if len(pos) == 0 {
		return usageErrorTo(stderr, fs, "give at least one run directory")
	}
	runs := make([]*rundir.Run, 0, len(pos))
	for _, dir := range pos {
		r, err := rundir.Read(dir)
		if err != nil {
			fmt.Fprintln(stderr, "yai report:", err)
			return 1
		}
		if len(r.Steps) == 0 {
			fmt.Fprintf(stderr, "yai report: %s: no step finished (metrics.jsonl is empty or missing)\n", dir)
			return 1
		}
		if r.Torn {
			// a run killed while writing a line: the line is left out, and said so
			fmt.Fprintf(stderr, "yai report: warning: %s:%d: the last line is torn (the run was killed while writing it); the report leaves it out\n",
				filepath.Join(dir, rundir.MetricsFile), len(r.Steps)+1)
		}
		runs = append(runs, r)
	}
	dir := *out
	if dir == "" {
		dir = filepath.Join(pos[0], "report")
		if len(pos) > 1 {
			dir = "report-" + now.UTC().Format("20060102T150405Z")
		}
	}
	sums, err := report.Write(dir, runs)
	if err != nil {
		fmt.Fprintln(stderr, "yai report:", err)
		return 1
	}
	if *asJSON {
		data, _ := json.MarshalIndent(sums, "", "  ")
		fmt.Fprintln(stdout, string(data))
	} else {
		for _, s := range sums {
			fmt.Fprint(stdout, s.Text())
		}
	}
	fmt.Fprintf(stderr, "charts: %s, %s\n", filepath.Join(dir, report.LossChart), filepath.Join(dir, report.MemoryChart))
	return 0
}
