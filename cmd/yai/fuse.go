package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/yai-dev/yai/internal/data"
	"github.com/yai-dev/yai/internal/fuse"
	"github.com/yai-dev/yai/internal/generate"
	"github.com/yai-dev/yai/internal/rundir"
	"github.com/yai-dev/yai/recipe"
	"github.com/yai-dev/yai/stages"
)

func init() {
	register(command{name: "fuse", summary: "merge adapters into the model: a new model directory, checked to keep the training", run: func(args []string) int {
		return fuseMain(args, os.Stdout, os.Stderr)
	}})
}

const fuseUsage = `
Usage: yai fuse --model MODEL --adapter DIR --out NEW_DIR [--data DIR|FILE] [--dequantize] [flags]

Merges LoRA adapters into the base weights and writes a complete model directory
(config.json, safetensors shards and index, tokenizer files) that yai and mlx_lm load. Each
adapted layer is dequantized, gets scale·B·A added, and is quantized again with its own bits
and group size (or --bits and --group-size); --dequantize keeps the adapted layers in float
instead.

Re-quantizing can round a small update away, so that the fused model silently loses what the
adapters learned. With --data (a data directory, whose validation split is used, a hf:owner/name
dataset in the local Hugging Face cache, or a JSONL, Parquet or Arrow file),
or, without it, when --adapter is a run directory (its recipe's data, validation file and data
settings), fuse measures the loss of the base, of the base with the adapters and of the fused model, and
reports how much of the adapters' improvement the fused model keeps; below --threshold it
refuses, writes nothing and names the remedy (--dequantize, more bits, a smaller group size),
unless --force. NEW_DIR must not exist: fuse never overwrites.`

// checkFlags are the flags of the merge check that fuse and the merged export share.
type checkFlags struct {
	data, split        string
	threshold          float64
	force              bool
	mask               maskFlags
	noCheck            bool
	batchSize, batches int
	maxSeqLength       int
	fs                 *flag.FlagSet
	records            dataFlags // how a --data directory's records are read
	// unchecked says why no check runs, after check.
	unchecked string
}

func (c *checkFlags) register(fs *flag.FlagSet) {
	c.fs = fs
	fs.StringVar(&c.data, "data", "", "check the merge on this data: a data directory or hf:owner/name (its --split split) or a JSONL, Parquet or Arrow file (default: the validation split of the run whose directory --adapter is)")
	fs.StringVar(&c.split, "split", "valid", "split of a --data directory to check on")
	c.records.register(fs)
	fs.BoolVar(&c.noCheck, "no-check", false, "do not check the merge (the run directory's validation split is checked by default)")
	fs.Float64Var(&c.threshold, "threshold", 100*fuse.DefaultThreshold, "percent of the adapters' improvement the merged model must keep")
	fs.BoolVar(&c.force, "force", false, "write the merged model even when it keeps less than --threshold")
	c.mask.register(fs, "the run's data train_on, else all")
	fs.IntVar(&c.batchSize, "batch-size", 4, "rows per batch of the check")
	fs.IntVar(&c.batches, "batches", -1, "check on at most this many batches; -1 for all")
	fs.IntVar(&c.maxSeqLength, "max-seq-length", 2048, "longer rows are truncated in the check (default: the run's data max_seq_length)")
}

// given reports whether the flag was on the command line.
func (c *checkFlags) given(name string) bool {
	found := false
	c.fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}

// check is the fuse.Check the flags ask for. Without --data, when adapter (--adapter as
// given) is a run directory, the check runs on the validation file of the run's data, read
// as its recipe's data stage read it; ok is false, and c.unchecked says why, when there is
// no data to check on.
func (c *checkFlags) check(adapter string) (fuse.Check, bool, error) {
	if c.threshold <= 0 || c.threshold > 100 {
		return fuse.Check{}, false, fmt.Errorf("--threshold %g: want a percentage in (0, 100]", c.threshold)
	}
	if c.noCheck {
		if c.data != "" {
			return fuse.Check{}, false, fmt.Errorf("--no-check and --data: choose one")
		}
		c.unchecked = "--no-check"
		return fuse.Check{}, false, nil
	}
	trainOn, err := c.mask.trainOn()
	if err != nil {
		return fuse.Check{}, false, err
	}
	d := fuse.Data{TrainOn: trainOn, MaxSeqLength: c.maxSeqLength, BatchSize: c.batchSize, Batches: c.batches}
	if c.data == "" {
		c.unchecked = "give --data (a data directory or JSONL file), or --adapter a run directory, to measure how much of the adapters' improvement the merged model keeps"
		if adapter == "" {
			return fuse.Check{}, false, nil
		}
		run, err := runData(adapter)
		if err != nil {
			c.unchecked = err.Error() + ": give --data to check"
			return fuse.Check{}, false, nil
		}
		if run == nil {
			return fuse.Check{}, false, nil
		}
		d.Format = strings.TrimPrefix(run.cfg.Format, "auto")
		d.Columns = data.Columns(run.cfg.Columns)
		split, name := "valid", run.cfg.Valid
		if c.given("split") {
			split, name = c.split, ""
		}
		if c.given("format") || c.given("columns") {
			format, columns, err := c.records.read()
			if err != nil {
				return fuse.Check{}, false, err
			}
			if c.given("format") {
				d.Format = format
			}
			if c.given("columns") {
				d.Columns = columns
			}
		}
		if !c.given("mask-prompt") && !c.given("train-on") {
			if d.TrainOn, err = data.ParseTrainOn(run.cfg.Masking()); err != nil {
				return fuse.Check{}, false, err
			}
		}
		if !c.given("max-seq-length") {
			d.MaxSeqLength = run.cfg.MaxSeqLength
		}
		if d.File, err = data.FindSplit(run.dir, split, name); err != nil {
			c.unchecked = fmt.Sprintf("the run's data: %v: give --data to check", err)
			return fuse.Check{}, false, nil
		}
	} else {
		var err error
		if d.Format, d.Columns, err = c.records.read(); err != nil {
			return fuse.Check{}, false, err
		}
		if d.File, err = data.ResolveDataDir(c.data, ""); err != nil {
			return fuse.Check{}, false, fmt.Errorf("--data: %w", err)
		}
		if st, err := os.Stat(d.File); err != nil {
			return fuse.Check{}, false, fmt.Errorf("--data: %w", err)
		} else if st.IsDir() && !data.IsSplitFolder(d.File) {
			if d.File, err = data.FindSplit(d.File, c.split, ""); err != nil {
				return fuse.Check{}, false, fmt.Errorf("--data: %w", err)
			}
		}
	}
	return fuse.Check{Threshold: c.threshold / 100, Force: c.force, Data: d}, true, nil
}

// runDataset is the data a run trained on: its directory and data stage.
type runDataset struct {
	dir string
	cfg *stages.DataConfig
}

// runData is the data of the run whose directory (or checkpoint, or adapters directory
// within a run directory) adapter is, as the run's own copy of its recipe names it; nil,
// and no error, when adapter is no run's.
func runData(adapter string) (*runDataset, error) {
	dir := filepath.Clean(adapter)
	if !rundir.IsRunDir(dir) {
		if filepath.Base(dir) != "adapters" || !rundir.IsRunDir(filepath.Dir(dir)) {
			return nil, nil
		}
		dir = filepath.Dir(dir)
	}
	file := filepath.Join(dir, rundir.RecipeFile)
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	r, diags := recipe.Load(file, src, nil)
	if r == nil || diags.HasErrors() {
		return nil, fmt.Errorf("%s does not read as a recipe:\n%s", file, diags.Format())
	}
	cfg := r.DataConfig()
	if r.Data == "" || cfg == nil {
		return nil, fmt.Errorf("the run's recipe %s names no data", file)
	}
	if strings.HasPrefix(r.Data, "hf:") {
		dir, err := data.ResolveDataDir(r.Data, "")
		if err != nil {
			return nil, err
		}
		return &runDataset{dir: dir, cfg: cfg}, nil
	}
	dataDir := r.Data
	if !filepath.IsAbs(dataDir) {
		base, err := rundir.RecipeDir(dir)
		if err != nil {
			return nil, err
		}
		if base == "" {
			return nil, fmt.Errorf("the run's recipe %s names data %s relative to a recipe directory the run did not record", file, dataDir)
		}
		dataDir = filepath.Join(base, dataDir)
	}
	return &runDataset{dir: dataDir, cfg: cfg}, nil
}

func fuseMain(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("fuse", fuseUsage)
	fs.SetOutput(stderr)
	var mf modelFlags
	mf.register(fs, true)
	out := fs.String("out", "", "directory to create for the fused model (required; must not exist)")
	dequantize := fs.Bool("dequantize", false, "keep the fused layers in float instead of re-quantizing them")
	bits := fs.Int("bits", 0, "re-quantize the fused layers with this many bits (default: each layer's own)")
	groupSize := fs.Int("group-size", 0, "re-quantize the fused layers with this group size (default: each layer's own)")
	var cf checkFlags
	cf.register(fs)
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
	case *dequantize && (*bits != 0 || *groupSize != 0):
		return usageErrorTo(stderr, fs, "--dequantize keeps the fused layers in float: --bits and --group-size do not apply")
	}
	opts := fuse.Options{Dequantize: *dequantize, Bits: *bits, GroupSize: *groupSize}
	check, checked, err := cf.check(mf.adapter)
	var dir, adapter string
	if err == nil {
		dir, err = mf.resolve()
	}
	if err == nil {
		adapter, err = generate.AdapterDir(mf.adapter)
	}
	var res fuse.Result
	var s fuse.Survival
	if err == nil {
		if checked {
			res, s, err = fuse.FuseChecked(dir, adapter, *out, opts, check)
		} else {
			res, err = fuse.Fuse(dir, adapter, *out, opts)
		}
	}
	if checked && s.File != "" {
		fmt.Fprintln(stdout, s)
	}
	var lost *fuse.LostError
	if errors.As(err, &lost) {
		fmt.Fprintln(stderr, "yai fuse: refused:", err)
		return 1
	}
	if err != nil {
		fmt.Fprintln(stderr, "yai fuse:", err)
		return 1
	}
	kind := "re-quantized"
	if *dequantize {
		kind = "kept in float"
	}
	fmt.Fprintf(stdout, "fused %d layers (%s) into %s (%d weight files)\n", len(res.Layers), kind, *out, len(res.Files))
	if checked && s.Verify(check.Threshold, "") != nil {
		fmt.Fprintf(stderr, "yai fuse: written with --force although the fused model keeps only %.1f%% of the adapters' improvement\n", 100*s.Kept())
	}
	if !checked {
		fmt.Fprintln(stderr, "yai fuse: not checked:", cf.unchecked)
	}
	return 0
}
