package recipe

import (
	"path/filepath"
	"testing"
)

// shippedRecipes lists the recipes under recipes/.
func shippedRecipes(t testing.TB) []string {
	files, err := filepath.Glob("../recipes/*.yaml")
	if err != nil || len(files) < 5 {
		t.Fatalf("shipped recipes: %v (found %d)", err, len(files))
	}
	return files
}

// Every shipped recipe lints without errors or warnings (the model is checked in model_test.go
// against a headers-only directory).
func TestShippedRecipesLint(t *testing.T) {
	for _, f := range shippedRecipes(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			p, diags := Validate(f, nil, ValidateOptions{SkipModel: true})
			if len(diags) > 0 || p == nil {
				t.Fatalf("diagnostics:\n%s", diags.Format())
			}
			if len(p.Events["step"]) != 1 {
				t.Errorf("want one step stage, got %d", len(p.Events["step"]))
			}
		})
	}
}
