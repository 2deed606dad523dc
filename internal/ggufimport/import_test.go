package ggufimport

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/testenv"
	"github.com/yai-dev/yai/mlx"
)

// The SmolLM2 import is an mlx-community directory yai's loader reads, with the
// hyperparameters of the GGUF metadata.
func TestImportSmolLM2Config(t *testing.T) {
	dir := importedSmolLM2(t)
	cfg, err := model.ReadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ModelType != "llama" || cfg.NumHiddenLayers != 30 || cfg.HiddenSize != 576 || cfg.NumAttentionHeads != 9 ||
		cfg.NumKeyValueHeads != 3 || cfg.VocabSize != 49152 || !cfg.TieWordEmbeddings || cfg.RopeTheta != 100000 {
		t.Errorf("config: %+v", cfg)
	}
	if q := cfg.Quantization; q == nil || q.Default.Bits != 4 || q.Default.GroupSize != 32 {
		t.Errorf("quantization: %+v", q)
	}
	for _, f := range []string{"tokenizer.json", "tokenizer_config.json", "generation_config.json", "model.safetensors"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
}

// An existing output directory, even an empty one, is never written into; nothing is left
// beside it.
func TestImportNeverOverwrites(t *testing.T) {
	src := testenv.SmolLM2GGUF(t)
	parent := t.TempDir()
	out := filepath.Join(parent, "model")
	os.Mkdir(out, 0o755)
	os.WriteFile(filepath.Join(out, "config.json"), []byte("mine"), 0o644)
	_, err := Import(src, out, DefaultOptions())
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("error %v, want already exists", err)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "config.json")); string(b) != "mine" {
		t.Error("user file overwritten")
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 1 {
		t.Errorf("%d entries beside the output, want 1", len(entries))
	}
}

// Converting tensor after tensor leaves the number of live MLX arrays unchanged.
func TestImportKeepsLiveArraysFlat(t *testing.T) {
	src, _ := synthetic(t, "llama")
	before := mlx.LiveArrays()
	var counts []int64
	afterTensor = func() { counts = append(counts, mlx.LiveArrays()) }
	defer func() { afterTensor = nil }()
	if _, err := Import(src, filepath.Join(t.TempDir(), "m"), Options{Bits: 4, GroupSize: 32, Dtype: mlx.Float16}); err != nil {
		t.Fatal(err)
	}
	if len(counts) != 21 {
		t.Fatalf("%d tensors observed, want 21", len(counts))
	}
	for i, c := range counts {
		if c != before {
			t.Fatalf("after tensor %d: %d live arrays, %d before the import", i, c, before)
		}
	}
}

// Bad input gets one error naming the file and what is wrong in it; no partial output.
func TestImportErrorsNameFileAndPlace(t *testing.T) {
	src, _ := synthetic(t, "llama")
	raw, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, data, 0o644)
		return p
	}
	// Rewrites the first occurrence of a string of the header (same length) in a copy.
	patch := func(old, new string) []byte {
		b := append([]byte{}, raw...)
		i := strings.Index(string(b), old)
		if i < 0 || len(old) != len(new) {
			t.Fatalf("cannot patch %q", old)
		}
		copy(b[i:], new)
		return b
	}
	truncated := raw[:len(raw)-100]
	badVersion := append([]byte{}, raw...)
	binary.LittleEndian.PutUint32(badVersion[4:], 7)
	cases := []struct {
		name string
		data []byte
		opts Options
		want []string
	}{
		{"truncated", truncated, DefaultOptions(), []string{"tensor", "past the end"}},
		{"version", badVersion, DefaultOptions(), []string{"offset 4", "version 7"}},
		{"architecture", patch("llama", "gemma"), DefaultOptions(), []string{`"general.architecture"`, "gemma"}},
		{"tensor name", patch("blk.0.ffn_up.weight", "blk.0.ffn_xx.weight"), DefaultOptions(), []string{`"blk.0.ffn_xx.weight"`, "unknown tensor"}},
		{"pre-tokenizer", patch("llama-bpe", "llama-xyz"), DefaultOptions(), []string{`"tokenizer.ggml.pre"`, "llama-xyz"}},
		{"bits", raw, Options{Bits: 7, GroupSize: 64, Dtype: mlx.Float32}, []string{"bits 7"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := write(c.name+".gguf", c.data)
			out := filepath.Join(dir, c.name+"-out")
			_, err := Import(p, out, c.opts)
			if err == nil {
				t.Fatal("no error")
			}
			wants := c.want
			if c.name != "bits" {
				wants = append(wants, p)
			}
			for _, w := range wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if _, err := os.Stat(out); err == nil {
				t.Error("output directory written despite the error")
			}
		})
	}
	if entries, _ := os.ReadDir(dir); len(entries) != len(cases) {
		t.Errorf("%d entries in the directory, want only the %d inputs", len(entries), len(cases))
	}
}
