package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/yai-dev/yai/internal/atomicfile"
	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/recipes"
	"github.com/yai-dev/yai/schema"
)

func init() {
	register(command{name: "init", summary: "copy a shipped recipe (and its data) into a directory", run: runInit})
}

const initUsage = `
Usage: yai init NAME [DIR]

Copies the shipped recipe NAME (see 'yai recipes') to DIR/NAME.yaml (DIR defaults to the current
directory), with the data it ships with; for the quickstart, also a freshly generated tiny model.
Never overwrites an existing file.`

func runInit(args []string) int {
	fset := newFlagSet("init", initUsage)
	pos, code, ok := parseFlags(fset, args)
	if !ok {
		return code
	}
	if len(pos) < 1 || len(pos) > 2 {
		return usageError(fset, "want NAME [DIR]")
	}
	r, found := recipes.Get(pos[0])
	if !found {
		var names []string
		for _, r := range recipes.List() {
			names = append(names, r.Name)
		}
		fmt.Fprintf(os.Stderr, "yai init: no shipped recipe %q (recipes: %s)\n", pos[0], strings.Join(names, ", "))
		return 1
	}
	dir := "."
	if len(pos) == 2 {
		dir = pos[1]
	}
	if err := copyRecipe(r, dir); err != nil {
		fmt.Fprintln(os.Stderr, "yai init:", err)
		return 1
	}
	fmt.Printf("wrote %s\n", filepath.Join(dir, r.File))
	return 0
}

// copyRecipe writes the recipe and its shipped data under dir, refusing to replace any file.
// Every target is checked before anything is written, so a refusal leaves dir unchanged.
func copyRecipe(r recipes.Recipe, dir string) error {
	src := recipes.FS()
	type file struct {
		to   string
		data []byte
	}
	body, err := fs.ReadFile(src, r.File)
	if err != nil {
		return err
	}
	// The shipped schema path is relative to the repository; outside it, use the published one.
	body = bytes.Replace(body, []byte("$schema=../schema/recipe.v1.json"), []byte("$schema="+schema.ID), 1)
	// The quickstart's tiny model is generated, not shipped: write one beside the copy.
	tiny := bytes.Contains(body, []byte("model: "+tinyModelRef))
	if tiny {
		body = bytes.Replace(body, []byte("model: "+tinyModelRef), []byte("model: "+tinyModelDir), 1)
		if _, err := os.Lstat(filepath.Join(dir, tinyModelDir)); err == nil {
			return fmt.Errorf("%s already exists; not overwriting it", filepath.Join(dir, tinyModelDir))
		}
	}
	// The quickstart's real model is imported into the checkout's .models/: from inside the
	// checkout, the copy points at it by absolute path.
	if bytes.Contains(body, []byte("model: "+importedModelRef)) {
		if abs, err := filepath.Abs(strings.TrimPrefix(importedModelRef, "../")); err == nil && isDir(abs) {
			body = bytes.Replace(body, []byte("model: "+importedModelRef), []byte("model: "+abs), 1)
		}
	}
	files := []file{{filepath.Join(dir, r.File), body}}
	if r.Data != "" {
		err := fs.WalkDir(src, r.Data, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := fs.ReadFile(src, p)
			files = append(files, file{filepath.Join(dir, filepath.FromSlash(p)), b})
			return err
		})
		if err != nil {
			return err
		}
	}
	for _, f := range files {
		if _, err := os.Lstat(f.to); err == nil {
			return fmt.Errorf("%s already exists; not overwriting it", f.to)
		}
	}
	for _, f := range files {
		if err := os.MkdirAll(filepath.Dir(f.to), 0o755); err != nil {
			return err
		}
		if err := atomicfile.WriteNew(f.to, f.data, 0o644); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("%s already exists; not overwriting it", f.to)
			}
			return err
		}
	}
	if tiny {
		return model.WriteTiny(filepath.Join(dir, tinyModelDir), model.TinyPresets["tiny"])
	}
	return nil
}

// importedModelRef is how the shipped quickstart names the model `go tool task quickstart`
// imports from GGUF.
const importedModelRef = "../.models/smollm2-135m-instruct-4bit"

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// tinyModelRef is how the shipped tiny quickstart names the tiny model the Taskfile generates;
// tinyModelDir is where `yai init` generates it beside the copied recipe.
const (
	tinyModelRef = "../testdata/tiny-llama-4bit"
	tinyModelDir = "tiny-llama-4bit"
)
