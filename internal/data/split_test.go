package data

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// touch creates each file (a name ending in / is a folder) under dir.
func touch(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, n := range names {
		path := filepath.Join(dir, filepath.FromSlash(n))
		if strings.HasSuffix(n, "/") {
			if err := os.MkdirAll(path, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFindSplitOrder removes the first choice each time and requires the next one.
func TestFindSplitOrder(t *testing.T) {
	for _, tc := range []struct {
		split string
		files []string // in the order FindSplit prefers them, each with the split path it gives
		paths []string
	}{
		{"train",
			[]string{"train.jsonl", "train.parquet", "data/train-00000-of-00002.parquet", "train-00000-of-00001.parquet", "train/state.json", "state.json"},
			[]string{"train.jsonl", "train.parquet", "data/train-*.parquet", "train-*.parquet", "train", "."}},
		{"valid",
			[]string{"valid.jsonl", "valid.parquet", "validation.parquet", "data/validation-00000-of-00001.parquet", "validation-00000-of-00001.parquet", "validation/state.json"},
			[]string{"valid.jsonl", "valid.parquet", "validation.parquet", "data/validation-*.parquet", "validation-*.parquet", "validation"}},
		{"test",
			[]string{"test.jsonl", "test.parquet", "data/test-00000-of-00001.parquet", "test-00000-of-00001.parquet", "test/state.json"},
			[]string{"test.jsonl", "test.parquet", "data/test-*.parquet", "test-*.parquet", "test"}},
	} {
		dir := t.TempDir()
		touch(t, dir, tc.files...)
		for i := range tc.files {
			got, err := FindSplit(dir, tc.split, "")
			if err != nil {
				t.Fatalf("%s with %v: %v", tc.split, tc.files[i:], err)
			}
			if want := filepath.Join(dir, filepath.FromSlash(tc.paths[i])); got != want {
				t.Errorf("%s with %v: %s, want %s", tc.split, tc.files[i:], got, want)
			}
			if err := os.Remove(filepath.Join(dir, filepath.FromSlash(tc.files[i]))); err != nil {
				t.Fatal(err)
			}
		}
		_, err := FindSplit(dir, tc.split, "")
		var nf *NotFoundError
		if !errors.As(err, &nf) || !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s in an empty folder: %v", tc.split, err)
		}
		for _, looked := range []string{tc.split + ".jsonl", tc.split + ".parquet", "-*.parquet", "DatasetDict"} {
			if !strings.Contains(err.Error(), looked) {
				t.Errorf("the error does not say it looked for %s: %v", looked, err)
			}
		}
	}
	// a save_to_disk folder is the train split only; a DatasetDict folder names none
	dir := t.TempDir()
	touch(t, dir, "state.json", "data-00000-of-00001.arrow")
	if _, err := FindSplit(dir, "valid", ""); err == nil {
		t.Error("a Dataset folder gave a valid split")
	}
}

func TestFindSplitNamed(t *testing.T) {
	dir := t.TempDir()
	touch(t, dir, "train.jsonl", "mine.parquet", "shards/b.parquet", "shards/a.parquet", "shards/notes.txt", "x-1.arrow", "x-0.arrow")
	for _, tc := range []struct{ name, want string }{
		{"train.jsonl", "train.jsonl"}, {"", "train.jsonl"}, {"mine.parquet", "mine.parquet"}, {"shards", "shards"}, {"x-*.arrow", "x-*.arrow"},
	} {
		got, err := FindSplit(dir, "train", tc.name)
		if err != nil || got != filepath.Join(dir, tc.want) {
			t.Errorf("%q: %s, %v", tc.name, got, err)
		}
	}
	files, err := SplitFiles(filepath.Join(dir, "shards"))
	if err != nil || len(files) != 2 || filepath.Base(files[0]) != "a.parquet" {
		t.Errorf("a folder of shards: %v, %v", files, err)
	}
	files, err = SplitFiles(filepath.Join(dir, "x-*.arrow"))
	if err != nil || len(files) != 2 || filepath.Base(files[0]) != "x-0.arrow" {
		t.Errorf("a glob: %v, %v", files, err)
	}
	for _, name := range []string{"missing.parquet", "y-*.parquet", "valid.jsonl"} {
		if _, err := FindSplit(dir, "train", name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: %v, want a missing file", name, err)
		}
	}
	// a named file that is absent is not replaced by another
	if _, err := FindSplit(dir, "valid", "dev.jsonl"); err == nil {
		t.Error("a missing dev.jsonl was found")
	}
	touch(t, dir, "dict/dataset_dict.json", "dict/train/state.json")
	if _, err := FindSplit(dir, "train", "dict"); err == nil || !strings.Contains(err.Error(), "DatasetDict") {
		t.Errorf("a DatasetDict named as a split: %v", err)
	}
}

func TestDatasetFilesFromState(t *testing.T) {
	dir := t.TempDir()
	touch(t, dir, "data-00001-of-00002.arrow", "data-00000-of-00002.arrow")
	state := `{"_data_files": [{"filename": "data-00001-of-00002.arrow"}, {"filename": "data-00000-of-00002.arrow"}]}`
	if err := os.WriteFile(filepath.Join(dir, "state.json"), []byte(state), 0o644); err != nil {
		t.Fatal(err)
	}
	files, err := SplitFiles(dir)
	if err != nil || len(files) != 2 || filepath.Base(files[0]) != "data-00001-of-00002.arrow" {
		t.Errorf("state.json's order: %v, %v", files, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "state.json"), []byte(`{"_data_files": [{"filename": "../secret.arrow"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := SplitFiles(dir); err == nil {
		t.Error("a data file outside the folder was accepted")
	}
}

// TestHubDataset builds a hub cache and finds a dataset's snapshot through each variable.
func TestHubDataset(t *testing.T) {
	cache := t.TempDir()
	repo := filepath.Join(cache, "datasets--acme--chats")
	touch(t, repo, "refs/", "snapshots/abc123/data/train-00000-of-00001.parquet", "snapshots/old999/train.jsonl")
	if err := os.WriteFile(filepath.Join(repo, "refs", "main"), []byte("abc123\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(repo, "snapshots", "abc123")
	t.Setenv("HF_HUB_CACHE", cache)
	got, err := ResolveDataDir("hf:acme/chats", "/recipes")
	if err != nil || got != want {
		t.Fatalf("HF_HUB_CACHE: %s, %v; want %s", got, err, want)
	}
	if p, err := FindSplit(got, "train", ""); err != nil || p != filepath.Join(want, "data", "train-*.parquet") {
		t.Errorf("the snapshot's train split: %s, %v", p, err)
	}
	t.Setenv("HF_HUB_CACHE", "")
	home := t.TempDir()
	if err := os.Rename(cache, filepath.Join(home, "hub")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HF_HOME", home)
	if got, err := HubDataset("acme/chats"); err != nil || got != filepath.Join(home, "hub", "datasets--acme--chats", "snapshots", "abc123") {
		t.Errorf("HF_HOME: %s, %v", got, err)
	}
	_, err = HubDataset("acme/missing")
	if !errors.Is(err, ErrNoHubDataset) || !strings.Contains(err.Error(), filepath.Join(home, "hub", "datasets--acme--missing", "refs", "main")) {
		t.Errorf("a missing dataset: %v", err)
	}
	for _, bad := range []string{"", "a/b/c", "../x", "a/..", "/x"} {
		if _, err := HubDataset(bad); err == nil || errors.Is(err, ErrNoHubDataset) {
			t.Errorf("%q: %v, want a bad name", bad, err)
		}
	}
	if got, _ := ResolveDataDir("data", "/recipes"); got != filepath.Join("/recipes", "data") {
		t.Errorf("a relative directory: %s", got)
	}
}
