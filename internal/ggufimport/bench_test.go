package ggufimport

import (
	"path/filepath"
	"testing"

	"github.com/yai-dev/yai/internal/testenv"
)

// BenchmarkImportSmolLM2 times the quickstart's import of the 135M-parameter SmolLM2 GGUF
// (dequantize Q4_1/Q8_0, re-quantize to MLX 4-bit, write the directory).
func BenchmarkImportSmolLM2(b *testing.B) {
	src := testenv.SmolLM2GGUF(b)
	opts := DefaultOptions()
	opts.GroupSize = 32
	for b.Loop() {
		out := filepath.Join(b.TempDir(), "m")
		if _, err := Import(src, out, opts); err != nil {
			b.Fatal(err)
		}
	}
}
