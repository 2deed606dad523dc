package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yai-dev/yai/internal/data"
	"github.com/yai-dev/yai/internal/evaluate"
	"github.com/yai-dev/yai/internal/generate"
	"github.com/yai-dev/yai/internal/testmodel"
)

// yai eval reports what the evaluate package computes (itself checked against mlx_lm) for
// the chosen split, and names the file of a bad row.
func TestEvalCommand(t *testing.T) {
	dir := testmodel.Tiny(t, "micro")
	adapter := testmodel.RandomAdapter(t, dir, 11, 0.3)
	dataDir := t.TempDir()
	rows := "{\"text\": \"Ben has a blue dog.\"}\n{\"text\": \"Kai has a green hen.\"}\n{\"text\": \"Nora has a red owl.\"}\n"
	os.WriteFile(filepath.Join(dataDir, "test.jsonl"), []byte(rows), 0o644)
	var stdout, stderr strings.Builder
	if code := evalMain([]string{"--model", dir, "--adapter", adapter, "--data", dataDir, "--batch-size", "1", "--json"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var got struct {
		Loss, Perplexity float64
		Batches          int
	}
	if err := json.Unmarshal([]byte(stdout.String()), &got); err != nil {
		t.Fatal(err)
	}
	l, _ := generate.Load(dir, adapter)
	ds, _ := data.LoadFile(filepath.Join(dataDir, "test.jsonl"), l.Tokenizer, data.Options{})
	want, err := evaluate.Dataset(l.Model, ds, evaluate.Options{BatchSize: 1})
	l.Free()
	if err != nil {
		t.Fatal(err)
	}
	if got.Loss != want.Loss || math.Abs(got.Perplexity-math.Exp(want.Loss)) > 1e-9*got.Perplexity || got.Batches != 3 {
		t.Errorf("yai eval %+v, evaluate %+v", got, want)
	}

	os.WriteFile(filepath.Join(dataDir, "test.jsonl"), []byte(rows+"{\"text\": 3}\n"), 0o644)
	stdout.Reset()
	stderr.Reset()
	if code := evalMain([]string{"--model", dir, "--data", dataDir}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "test.jsonl:4") {
		t.Errorf("bad row: exit %d, %q", code, stderr.String())
	}
	stderr.Reset()
	if code := evalMain([]string{"--model", dir, "--data", dataDir, "--split", "valid"}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "valid.jsonl") {
		t.Errorf("missing split: exit %d, %q", code, stderr.String())
	}
}
