package evaluate

import (
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yai-dev/yai/internal/data"
	"github.com/yai-dev/yai/internal/generate"
	"github.com/yai-dev/yai/internal/testenv"
	"github.com/yai-dev/yai/internal/testmodel"
)

// testData is a data directory whose test.jsonl holds the quickstart's validation rows.
func testData(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	rows, err := os.ReadFile(filepath.Join(testenv.ModuleRoot(t), "recipes", "data", "quickstart", "valid.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "test.jsonl"), rows, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Test loss and perplexity equal mlx_lm's evaluate on the same split, to float32 rounding of
// the sums (relative 1e-5): on the quickstart's model with and without adapters, and on each
// family of testmodel.Families with adapters on its keys (without too in the long tier).
func TestTestLossMatchesMLXLM(t *testing.T) {
	dataDir := testData(t)
	rows := append([]testmodel.Family{{Name: "quickstart", Preset: "tiny", Keys: testmodel.AdapterKeys}}, testmodel.Families...)
	for _, f := range rows {
		t.Run(f.Name, func(t *testing.T) {
			dir := testmodel.Tiny(t, f.Preset)
			adapter := f.Adapter(t, dir, 11, 0.3)
			if f.Name == "quickstart" || testenv.Long() {
				lossMatchesMLXLM(t, dir, "", dataDir)
			}
			lossMatchesMLXLM(t, dir, adapter, dataDir)
		})
	}
}

func lossMatchesMLXLM(t *testing.T, dir, ad, dataDir string) {
	t.Helper()
	l, err := generate.Load(dir, ad)
	if err != nil {
		t.Fatal(err)
	}
	_, _, test, err := data.Load(dataDir, l.Tokenizer, data.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Dataset(l.Model, test, Options{BatchSize: 4, MaxSeqLength: 128})
	l.Free()
	if err != nil {
		t.Fatal(err)
	}
	refAdapter := "-"
	if ad != "" {
		refAdapter = ad
	}
	cmd := exec.Command(testenv.Python(t), filepath.Join("testdata", "mlxlm_evaluate.py"), dir, refAdapter, dataDir, "4", "128", "0")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("mlx_lm evaluate: %v\n%s", err, stderr.String())
	}
	var want struct{ Loss, PPL float64 }
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	t.Logf("adapter %v: loss %.6f (mlx_lm %.6f), ppl %.4f (mlx_lm %.4f), %d tokens in %d batches",
		ad != "", got.Loss, want.Loss, got.Perplexity, want.PPL, got.Tokens, got.Batches)
	if math.Abs(got.Loss-want.Loss) > 1e-5*want.Loss || math.Abs(got.Perplexity-want.PPL) > 1e-4*want.PPL {
		t.Errorf("loss %v ppl %v, mlx_lm %v %v", got.Loss, got.Perplexity, want.Loss, want.PPL)
	}
	if got.Batches != test.Len()/4 {
		t.Errorf("%d batches, want all %d", got.Batches, test.Len()/4)
	}
}

func TestBatchesCap(t *testing.T) {
	dir := testmodel.Tiny(t, "micro")
	l, err := generate.Load(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Free()
	_, _, test, err := data.Load(testData(t), l.Tokenizer, data.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Dataset(l.Model, test, Options{BatchSize: 2, Batches: 3})
	if err != nil || res.Batches != 3 {
		t.Fatalf("%+v, %v", res, err)
	}
	if _, err := Dataset(l.Model, test, Options{BatchSize: 1000}); err == nil || !strings.Contains(err.Error(), "test.jsonl") {
		t.Errorf("batch larger than the split: %v", err)
	}
}
