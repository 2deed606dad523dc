package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yai-dev/yai/recipe"
	"github.com/yai-dev/yai/recipes"
)

// init copies a recipe and its data, points the schema comment at the published schema, and
// refuses to overwrite anything on a second attempt.
func TestInitCopiesAndNeverOverwrites(t *testing.T) {
	dir := t.TempDir()
	r, ok := recipes.Get("quickstart-tiny")
	if !ok || r.Data != "data/quickstart" {
		t.Fatalf("quickstart: %+v, %v", r, ok)
	}
	if err := copyRecipe(r, dir); err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile(filepath.Join(dir, "quickstart-tiny.yaml"))
	if err != nil || !strings.Contains(string(body), "$schema=https://") {
		t.Fatalf("copied recipe: %v\n%s", err, body)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "quickstart", "train.jsonl")); err != nil {
		t.Errorf("data not copied: %v", err)
	}
	// The copy stands alone: its tiny model was generated beside it, so the full dry run passes.
	if _, ds := recipe.Validate(filepath.Join(dir, "quickstart-tiny.yaml"), nil, recipe.ValidateOptions{}); ds.HasErrors() {
		t.Errorf("copied recipe invalid:\n%s", ds.Format())
	}

	os.WriteFile(filepath.Join(dir, "quickstart-tiny.yaml"), []byte("mine"), 0o644)
	if err := copyRecipe(r, dir); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second init: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "quickstart-tiny.yaml")); string(b) != "mine" {
		t.Error("user file overwritten")
	}
}

func TestShippedRecipesListed(t *testing.T) {
	var names []string
	for _, r := range recipes.List() {
		names = append(names, r.Name)
		if r.Description == "" {
			t.Errorf("%s has no description", r.Name)
		}
	}
	want := "all-attention chat-masked llama-3.1-8b-7gb llama-3.1-8b-auto quickstart quickstart-tiny"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("recipes = %s, want %s", got, want)
	}
}

// From a checkout that has imported the quickstart's model, the copied quickstart points
// at that model by absolute path, and its data comes along.
func TestInitQuickstartPointsAtImportedModel(t *testing.T) {
	checkout := t.TempDir()
	model := filepath.Join(checkout, ".models", "smollm2-135m-instruct-4bit")
	if err := os.MkdirAll(model, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(checkout)
	r, ok := recipes.Get("quickstart")
	if !ok || r.Data != "data/quickstart-yai" {
		t.Fatalf("quickstart: %+v, %v", r, ok)
	}
	out := t.TempDir()
	if err := copyRecipe(r, out); err != nil {
		t.Fatal(err)
	}
	body, _ := os.ReadFile(filepath.Join(out, "quickstart.yaml"))
	if !strings.Contains(string(body), "\nmodel: "+model+"\n") {
		t.Errorf("copied quickstart does not point at %s:\n%s", model, body)
	}
	if _, err := os.Stat(filepath.Join(out, "data", "quickstart-yai", "train.jsonl")); err != nil {
		t.Error(err)
	}
}
