package ggufimport

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/mlx"
)

// A Q5_0 file of a model 576 wide (SmolLM2's width, not a multiple of 256, which is why
// llama.cpp's K-quant presets store such tensors as Q5_0) imports exactly: float32, every
// weight is the gguf package's dequantization; at group size 128, which 576 columns do not
// split into, those tensors stay float and the rest is quantized, and the model loads.
func TestImportQ5_0With576Columns(t *testing.T) {
	src, ref := synthetic(t, "llama", "--qtype", "Q5_0", "--hidden", "576")
	out := filepath.Join(t.TempDir(), "f32")
	if _, err := Import(src, out, Options{Bits: 0, Dtype: mlx.Float32}); err != nil {
		t.Fatal(err)
	}
	equalWeights(t, out, ref)

	q := filepath.Join(t.TempDir(), "q")
	sum, err := Import(src, q, Options{Bits: 4, GroupSize: 128, Dtype: mlx.Float32})
	if err != nil {
		t.Fatal(err)
	}
	// Only mlp.down_proj (128 columns) of each of the 2 layers splits into groups of 128.
	if sum.Quantized != 2 {
		t.Errorf("%d tensors quantized, want 2", sum.Quantized)
	}
	m, err := model.Load(q, model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m.Free()
}

// Tensors of types yai cannot read make one error line naming the file, each type and how
// many tensors use it; they are not also reported missing; the text is the same every run.
func TestImportUnsupportedTypesOneError(t *testing.T) {
	src, _ := synthetic(t, "llama", "--qtype", "Q8_1", "--mlp-qtype", "F64")
	var first string
	for run := range 2 {
		out := filepath.Join(t.TempDir(), "m")
		_, err := Import(src, out, DefaultOptions())
		if err == nil {
			t.Fatal("no error")
		}
		msg := err.Error()
		if strings.Contains(msg, "\n") || strings.Contains(msg, "missing") {
			t.Fatalf("want one line and no missing tensors, got:\n%s", msg)
		}
		// 2 layers × 3 MLP weights are F64; 2 layers × 4 attention weights, the embedding
		// and the output are Q8_1.
		want := src + ": 2 tensor types are not supported: F64 (6 tensors), Q8_1 (10 tensors); supported: "
		if !strings.HasPrefix(msg, want) || !strings.Contains(msg, "Q5_0") {
			t.Fatalf("error %q, want it to start %q and list the supported types", msg, want)
		}
		if run == 1 && msg != first {
			t.Fatalf("error differs between runs:\n%s\n%s", first, msg)
		}
		first = msg
		if _, err := os.Stat(out); err == nil {
			t.Error("output directory written despite the error")
		}
	}
}

// Missing tensors are listed one a line, sorted by name, the same every run.
func TestImportMissingTensorsSorted(t *testing.T) {
	src, _ := synthetic(t, "llama", "--drop", "blk.1.")
	var first string
	for run := range 2 {
		_, err := Import(src, filepath.Join(t.TempDir(), "m"), DefaultOptions())
		if err == nil {
			t.Fatal("no error")
		}
		lines := strings.Split(err.Error(), "\n")
		if len(lines) != 9 {
			t.Fatalf("%d error lines, want the 9 tensors of layer 1:\n%s", len(lines), err)
		}
		for _, l := range lines {
			if !strings.HasPrefix(l, src+": tensor for model.layers.1.") || !strings.HasSuffix(l, " is missing") {
				t.Fatalf("unexpected line %q", l)
			}
		}
		if !slices.IsSorted(lines) {
			t.Errorf("lines not sorted:\n%s", err)
		}
		if run == 1 && err.Error() != first {
			t.Fatalf("error differs between runs:\n%s\n%s", first, err)
		}
		first = err.Error()
	}
}
