package ggufexport

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/yai-dev/yai/internal/fuse"
	"github.com/yai-dev/yai/internal/gguf"
	"github.com/yai-dev/yai/internal/ggufimport"
	"github.com/yai-dev/yai/mlx"
)

// MergedRemedy is what a merged export that lost the training offers.
const MergedRemedy = "export with a type of more bits (--type q8_0 or f16), or use the base GGUF with the adapters as a GGUF LoRA (yai export gguf-lora)"

// MergedChecked is Merged with fuse's check: the merged file is read back as yai reads a GGUF
// (dequantized into a float32 model), its loss on c.Data is measured against the base's and
// the base with the adapters', and the export appears at out only when it keeps at least
// c.Threshold of the adapters' improvement (or c.Force). A refused export returns a
// *fuse.LostError naming MergedRemedy and leaves nothing behind.
func MergedChecked(modelDir, adapterDir, out string, opts MergedOptions, c fuse.Check) (*Result, fuse.Survival, error) {
	var s fuse.Survival
	if adapterDir == "" {
		return nil, s, fmt.Errorf("the merge check needs --adapter: without adapters there is no improvement to keep")
	}
	if _, err := os.Lstat(out); err == nil {
		return nil, s, fmt.Errorf("%s already exists: export never overwrites, choose a new directory", out)
	}
	if c.Threshold == 0 {
		c.Threshold = fuse.DefaultThreshold
	}
	work, err := os.MkdirTemp(filepath.Dir(out), "."+filepath.Base(out)+".check-")
	if err != nil {
		return nil, s, err
	}
	defer os.RemoveAll(work)
	exported := filepath.Join(work, "export")
	res, err := Merged(modelDir, adapterDir, exported, opts)
	if err != nil {
		return nil, s, err
	}
	back := filepath.Join(work, "read-back")
	if _, err := ggufimport.Import(filepath.Join(exported, res.Files[0]), back, ggufimport.Options{Dtype: mlx.Float32}); err != nil {
		return nil, s, fmt.Errorf("reading the export back: %w", err)
	}
	if s, err = fuse.Measure(modelDir, adapterDir, back, c.Data); err != nil {
		return nil, s, err
	}
	if err := s.Verify(c.Threshold, remedyFor(opts.Type)); err != nil && !c.Force {
		return nil, s, err
	}
	if err := os.Rename(exported, out); err != nil {
		return nil, s, err
	}
	res.Dir = out
	return res, s, nil
}

func remedyFor(t gguf.TensorType) string {
	if t == gguf.F32 || t == gguf.F16 || t == gguf.BF16 {
		return "use the base GGUF with the adapters as a GGUF LoRA (yai export gguf-lora)"
	}
	return MergedRemedy
}
