package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"

	"github.com/yai-dev/yai/internal/data"
	"github.com/yai-dev/yai/internal/evaluate"
)

func init() {
	register(command{name: "eval", summary: "loss and perplexity of a model (and adapters) on a dataset split", run: func(args []string) int {
		return evalMain(args, os.Stdout, os.Stderr)
	}})
}

const evalUsage = `
Usage: yai eval --model MODEL [--adapter DIR] --data DIR [--split test] [flags]

Computes the loss and perplexity of the model, with the adapters when given, on one split of
an mlx-lm data directory (DIR/test.jsonl by default; without it the test split the data stage
would find: test.parquet, data/test-*.parquet, a DatasetDict's test/ ...), as mlx_lm.lora
--test does: all batches unless --batches caps them. --data hf:owner/name reads a dataset of
the local Hugging Face cache.`

var evalSplits = []string{"test", "valid", "train"}

func evalMain(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("eval", evalUsage)
	fs.SetOutput(stderr)
	var mf modelFlags
	mf.register(fs, false)
	dataDir := fs.String("data", "", "data directory holding train.jsonl, valid.jsonl, test.jsonl (or their Parquet or Arrow files), or hf:owner/name (required)")
	split := fs.String("split", "test", "split to evaluate: test, valid or train")
	batchSize := fs.Int("batch-size", 4, "rows per batch")
	maxSeq := fs.Int("max-seq-length", 2048, "longer rows are truncated")
	batches := fs.Int("batches", -1, "evaluate at most this many batches; -1 for all")
	seed := fs.Uint("seed", 0, "seed of the batch order")
	var mask maskFlags
	mask.register(fs, "all")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	var df dataFlags
	df.register(fs)
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	switch {
	case len(pos) > 0:
		return usageErrorTo(stderr, fs, "unexpected arguments %q", pos)
	case mf.model == "":
		return usageErrorTo(stderr, fs, "--model is required")
	case *dataDir == "":
		return usageErrorTo(stderr, fs, "--data is required")
	case !slices.Contains(evalSplits, *split):
		return usageErrorTo(stderr, fs, "--split must be one of %v, got %q", evalSplits, *split)
	}
	if err := firstError(
		inRange("batch-size", *batchSize, 1, 1<<20),
		inRange("max-seq-length", *maxSeq, 1, 1<<24),
		inRange("seed", *seed, 0, math.MaxUint32),
	); err != nil {
		return usageErrorTo(stderr, fs, "%v", err)
	}
	format, columns, err := df.read()
	if err != nil {
		return usageErrorTo(stderr, fs, "%v", err)
	}
	if *batches != -1 && *batches < 1 {
		return usageErrorTo(stderr, fs, "--batches must be -1 (all) or at least 1, got %d", *batches)
	}
	trainOn, err := mask.trainOn()
	if err != nil {
		return usageErrorTo(stderr, fs, "%v", err)
	}
	dir, err := data.ResolveDataDir(*dataDir, "")
	if err != nil {
		fmt.Fprintln(stderr, "yai eval:", err)
		return 1
	}
	path, err := data.FindSplit(dir, *split, "")
	if err != nil {
		fmt.Fprintln(stderr, "yai eval:", err)
		return 1
	}
	l, ok := mf.load("eval", stderr)
	if !ok {
		return 1
	}
	defer l.Free()
	opts := data.Options{TrainOn: trainOn, Format: format}.WithColumns(columns)
	ds, err := data.LoadFile(path, l.Tokenizer, opts)
	if err != nil {
		fmt.Fprintln(stderr, "yai eval:", err)
		return 1
	}
	res, err := evaluate.Dataset(l.Model, ds, evaluate.Options{
		BatchSize: *batchSize, MaxSeqLength: *maxSeq, Batches: *batches, Seed: uint32(*seed),
	})
	if err != nil {
		fmt.Fprintln(stderr, "yai eval:", err)
		return 1
	}
	if *asJSON {
		out, _ := json.Marshal(map[string]any{"split": *split, "file": res.Path, "loss": res.Loss,
			"perplexity": res.Perplexity, "tokens": res.Tokens, "batches": res.Batches})
		fmt.Fprintln(stdout, string(out))
		return 0
	}
	fmt.Fprintf(stdout, "%s loss %.3f, %s ppl %.3f (%d tokens, %d batches of %s)\n",
		*split, res.Loss, *split, res.Perplexity, res.Tokens, res.Batches, res.Path)
	return 0
}
