package ggufimport

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yai-dev/yai/internal/testenv"
	"github.com/yai-dev/yai/modeldir"
	"github.com/yai-dev/yai/recipe"
)

// The shipped quickstart passes the dry run on the imported model: the directory resolves,
// config.json and the safetensors headers check out against the recipe's LoRA settings.
func TestQuickstartValidatesOnImport(t *testing.T) {
	dir := importedSmolLM2(t)
	path := filepath.Join(testenv.ModuleRoot(t), "recipes", "quickstart.yaml")
	p, ds := recipe.Validate(path, []string{"model=" + dir}, recipe.ValidateOptions{})
	if p == nil || ds.HasErrors() {
		t.Fatalf("quickstart invalid on the import:\n%s", ds.Format())
	}
}

// An imported directory resolves as a recipe's model: by path, and by alias once it sits
// where the alias points (a Hugging Face cache snapshot).
func TestImportResolvesByPathAndAlias(t *testing.T) {
	dir := importedSmolLM2(t)
	got, err := modeldir.Resolve(filepath.Base(dir), filepath.Dir(dir))
	if err != nil || got != dir {
		t.Fatalf("by path: %q, %v", got, err)
	}
	const alias = "llama-3.2-1b"
	repo := modeldir.Aliases[alias]
	cache := t.TempDir()
	t.Setenv("HF_HUB_CACHE", cache)
	snap := filepath.Join(cache, "models--"+strings.ReplaceAll(repo, "/", "--"), "snapshots", "0123abcd")
	if err := os.MkdirAll(filepath.Dir(snap), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Import(testenv.SmolLM2GGUF(t), snap, Options{Bits: 4, GroupSize: 64, Dtype: DefaultOptions().Dtype}); err != nil {
		t.Fatal(err)
	}
	got, err = modeldir.Resolve(alias, t.TempDir())
	if err != nil || got != snap {
		t.Fatalf("by alias: %q, %v", got, err)
	}
}
