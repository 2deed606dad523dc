package ggufimport

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/yai-dev/yai/internal/gguf"
	"github.com/yai-dev/yai/mlx"
)

// Options choose the output format.
type Options struct {
	// Bits of MLX affine quantization (2, 3, 4, 5, 6, 8); 0 keeps every weight float.
	Bits int
	// GroupSize of the quantization (32, 64 or 128).
	GroupSize int
	// Dtype of the quantization scales and biases and of the float weights: float32
	// (MLX's CPU quantized matmul is much slower with half-precision scales), float16 or
	// bfloat16.
	Dtype mlx.Dtype
}

// DefaultOptions are 4-bit, group size 64, float32 scales: the mlx-community layout, fast on CPU.
func DefaultOptions() Options { return Options{Bits: 4, GroupSize: 64, Dtype: mlx.Float32} }

func (o Options) check() error {
	switch o.Bits {
	case 0, 2, 3, 4, 5, 6, 8:
	default:
		return fmt.Errorf("bits %d: MLX affine quantization takes 2, 3, 4, 5, 6 or 8 (0 keeps weights float)", o.Bits)
	}
	if o.Bits > 0 && o.GroupSize != 32 && o.GroupSize != 64 && o.GroupSize != 128 {
		return fmt.Errorf("group size %d: MLX takes 32, 64 or 128", o.GroupSize)
	}
	if safetensorsDtype(o.Dtype) == "" {
		return fmt.Errorf("dtype %s: use float32, float16 or bfloat16", o.Dtype)
	}
	return nil
}

// Summary tells what an import wrote.
type Summary struct {
	Architecture string
	Tensors      int // GGUF tensors converted
	Quantized    int // of which re-quantized to MLX affine
	Vocab        int
}

// afterTensor, when set by a test, runs after each tensor is converted.
var afterTensor func()

// Import converts the GGUF file at src into a new model directory out. out must not exist:
// the model is written into a temporary directory beside it, which is renamed into place
// only when complete.
func Import(src, out string, opts Options) (*Summary, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	if _, err := os.Lstat(out); err == nil {
		return nil, fmt.Errorf("%s already exists: choose a new output directory", out)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	g, err := gguf.Open(src)
	if err != nil {
		return nil, err
	}
	defer g.Close()
	h, err := readHyper(g)
	if err != nil {
		return nil, err
	}
	tok, err := readTokenizer(g, h.contextLen)
	if err != nil {
		return nil, err
	}
	if len(tok.tokens) != h.vocab {
		return nil, fmt.Errorf("%s: metadata key \"tokenizer.ggml.tokens\": %d tokens, but token_embd.weight has %d rows", src, len(tok.tokens), h.vocab)
	}
	var quant *quantSpec
	if opts.Bits > 0 {
		quant = &quantSpec{bits: opts.Bits, groupSize: opts.GroupSize}
	}
	plans, err := planWeights(g, h, quant)
	if err != nil {
		return nil, err
	}
	for _, p := range plans {
		if quant != nil && !p.quantize && isRouter(p.name) {
			quant.plain = append(quant.plain, strings.TrimSuffix(p.name, ".weight"))
		}
	}
	parent := filepath.Dir(filepath.Clean(out))
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(out)+".tmp-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp) // nothing left after a successful rename
	sum := &Summary{Architecture: h.arch, Tensors: len(plans), Vocab: len(tok.tokens)}
	if err := writeWeights(g, plans, quant, opts.Dtype, filepath.Join(tmp, "model.safetensors")); err != nil {
		return nil, err
	}
	for _, p := range plans {
		if p.quantize {
			sum.Quantized++
		}
	}
	tj, err := tok.tokenizerJSON()
	if err != nil {
		return nil, err
	}
	files := map[string]any{
		"config.json":            h.configJSON(tok, quant),
		"tokenizer.json":         tj,
		"tokenizer_config.json":  tok.tokenizerConfigJSON(),
		"generation_config.json": tok.generationConfigJSON(),
	}
	for name, v := range files {
		if err := writeJSON(filepath.Join(tmp, name), v); err != nil {
			return nil, err
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, err
	}
	// Renaming onto a path that appeared meanwhile fails unless it is an empty directory:
	// nothing of the user's is ever replaced.
	if err := os.Rename(tmp, out); err != nil {
		return nil, fmt.Errorf("%s: %w", out, err)
	}
	return sum, nil
}

func writeWeights(g *gguf.File, plans []weightPlan, quant *quantSpec, dtype mlx.Dtype, path string) error {
	var entries []tensorEntry
	for _, p := range plans {
		entries = append(entries, p.entries(quant, dtype)...)
	}
	w, err := newSafetensorsWriter(path, entries, map[string]string{"format": "mlx"})
	if err != nil {
		return err
	}
	for _, p := range plans {
		if err := p.convert(g, quant, dtype, w.write); err != nil {
			w.close()
			return err
		}
		if afterTensor != nil {
			afterTensor()
		}
	}
	return w.close()
}

func writeJSON(path string, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // chat templates and special tokens are full of < and >
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}
