package recipe

import (
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// The data check's tokenization is cached in the cache directory, never beside the data, and
// a second validate recalls it: changing a row changes the key, so the change is seen.
func TestDataCheckCache(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("YAI_CACHE_DIR", cache)
	dir := t.TempDir()
	writeMalformedBase(t, dir)
	path := filepath.Join(dir, "r.yaml")
	writeFile(t, path, malformedRecipe)
	p, ds := Validate(path, nil, ValidateOptions{})
	if p == nil || p.Widest == 0 {
		t.Fatalf("widest %v:\n%s", p, ds.Format())
	}
	records, _ := filepath.Glob(filepath.Join(cache, "*.json"))
	if len(records) < 3 { // the tokenizer, train.jsonl and valid.jsonl
		t.Errorf("%d cache records, want the tokenizer's and one per data file", len(records))
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "data"))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	if len(names) != 2 || names[0] != "train.jsonl" || names[1] != "valid.jsonl" {
		t.Errorf("the data directory holds %v; the check must write nothing there", names)
	}

	p2, _ := Validate(path, nil, ValidateOptions{})
	if p2 == nil || p2.Widest != p.Widest {
		t.Fatalf("second validate: widest %d, first %d", p2.Widest, p.Widest)
	}
	writeFile(t, filepath.Join(dir, "data", "train.jsonl"), completionRows+`{"prompt": "x"}`+"\n")
	if p3, ds := Validate(path, nil, ValidateOptions{}); p3 != nil || len(ds) == 0 {
		t.Fatalf("a changed file was recalled from the cache: %v", ds)
	}
}
