package data

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// HubSplit is the Hugging Face name of each of yai's splits (the hub and datasets call the
// validation split "validation").
var HubSplit = map[string]string{"train": "train", "valid": "validation", "test": "test"}

// NotFoundError is a split that none of the places FindSplit looks holds.
type NotFoundError struct {
	Dir, Split string
	Looked     []string
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("no %s split in %s: looked for %s", e.Split, e.Dir, strings.Join(e.Looked, ", "))
}

func (e *NotFoundError) Unwrap() error { return fs.ErrNotExist }

// FindSplit is the path of split ("train", "valid" or "test") in the data directory dir. A
// name other than the split's default JSONL file (train.jsonl, valid.jsonl, test.jsonl) is
// taken as given: a file, a folder or a glob inside dir, which must exist. Otherwise the first
// of these that exists, with the hub's name for the split (validation for valid):
//
//  1. train.jsonl
//  2. train.parquet
//  3. data/train-*.parquet, then train-*.parquet (the hub's shards)
//  4. train/, a split folder of a DatasetDict.save_to_disk
//  5. for train only: dir itself, a Dataset.save_to_disk folder
//
// A split found nowhere is a *NotFoundError (an fs.ErrNotExist) listing what was looked for.
func FindSplit(dir, split, name string) (string, error) {
	if name != "" && name != split+".jsonl" {
		path := filepath.Join(dir, name)
		if _, err := SplitFiles(path); err != nil {
			return "", err
		}
		return path, nil
	}
	hub := HubSplit[split]
	if hub == "" {
		hub = split
	}
	cands := []string{split + ".jsonl", split + ".parquet"}
	if hub != split {
		cands = append(cands, hub+".parquet")
	}
	cands = append(cands, "data/"+hub+"-*.parquet", hub+"-*.parquet", hub+"/")
	if split == "train" {
		cands = append(cands, "./")
	}
	looked := make([]string, 0, len(cands))
	for _, c := range cands {
		path := filepath.Join(dir, filepath.FromSlash(c))
		switch {
		case strings.HasSuffix(c, "/"):
			if isFile(filepath.Join(path, "state.json")) {
				return path, nil
			}
			if c == "./" {
				c = "a Dataset.save_to_disk folder (state.json)"
			} else {
				c += " (a DatasetDict split folder)"
			}
		case hasMeta(c):
			if m := globFiles(path); len(m) > 0 {
				return path, nil
			}
		default:
			if isFile(path) {
				return path, nil
			}
		}
		looked = append(looked, c)
	}
	return "", &NotFoundError{Dir: dir, Split: split, Looked: looked}
}

// FindSplitFiles is FindSplit's split and its files (SplitFiles).
func FindSplitFiles(dir, split, name string) (string, []string, error) {
	path, err := FindSplit(dir, split, name)
	if err != nil {
		return "", nil, err
	}
	files, err := SplitFiles(path)
	return path, files, err
}

// SplitFiles are the files a split path names, in order: the file itself; the files a glob
// of file names (data/train-*.parquet) matches, sorted; a save_to_disk folder's Arrow files
// (state.json's order); or a folder's .parquet files, else its .arrow files, sorted. A path
// naming nothing is an fs.ErrNotExist.
func SplitFiles(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil && hasMeta(filepath.Base(path)) {
		if files := globFiles(path); len(files) > 0 {
			return files, nil
		}
		return nil, fmt.Errorf("%s: no file matches: %w", path, fs.ErrNotExist)
	}
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	if isFile(filepath.Join(path, "state.json")) {
		return datasetFiles(path)
	}
	if isFile(filepath.Join(path, "dataset_dict.json")) {
		return nil, fmt.Errorf("%s is a DatasetDict: name one of its split folders (e.g. %s)", path, filepath.Join(path, "train"))
	}
	for _, ext := range []string{".parquet", ".arrow"} {
		files, _ := filepath.Glob(filepath.Join(escapeGlob(path), "*"+ext))
		if len(files) > 0 {
			slices.Sort(files)
			return files, nil
		}
	}
	return nil, fmt.Errorf("%s: a folder with no state.json (datasets' save_to_disk), .parquet or .arrow files", path)
}

// IsSplitFolder reports whether dir is itself one split: a Dataset.save_to_disk folder.
func IsSplitFolder(dir string) bool { return isFile(filepath.Join(dir, "state.json")) }

// datasetFiles are a save_to_disk folder's data files, as its state.json lists them.
func datasetFiles(dir string) ([]string, error) {
	f, err := os.Open(filepath.Join(dir, "state.json"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var state struct {
		DataFiles []struct {
			Filename string `json:"filename"`
		} `json:"_data_files"`
	}
	if err := json.NewDecoder(io.LimitReader(f, 16<<20)).Decode(&state); err != nil {
		return nil, fmt.Errorf("%s: %v", f.Name(), err)
	}
	var files []string
	for _, d := range state.DataFiles {
		if d.Filename == "" || d.Filename != filepath.Base(d.Filename) || d.Filename == ".." {
			return nil, fmt.Errorf("%s: _data_files names %q, not a file of the folder", f.Name(), d.Filename)
		}
		files = append(files, filepath.Join(dir, d.Filename))
	}
	if len(files) == 0 {
		files, _ = filepath.Glob(filepath.Join(escapeGlob(dir), "*.arrow"))
		slices.Sort(files)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: a save_to_disk folder with no .arrow files", dir)
	}
	return files, nil
}

// HashSplit lists the files of split path for content hashes; an absent split lists none.
func HashSplit(path string) []string {
	files, err := SplitFiles(path)
	if err != nil {
		return nil
	}
	return files
}

// globFiles are the files whose names match path's last element, sorted; only that element
// is a pattern (a data directory's own name may hold any character).
func globFiles(path string) []string {
	files, _ := filepath.Glob(filepath.Join(escapeGlob(filepath.Dir(path)), filepath.Base(path)))
	files = slices.DeleteFunc(files, func(f string) bool { return !isFile(f) })
	slices.Sort(files)
	return files
}

func isFile(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

func hasMeta(path string) bool { return strings.ContainsAny(path, `*?[`) }

// escapeGlob quotes a directory name for filepath.Glob.
func escapeGlob(path string) string {
	if !hasMeta(path) {
		return path
	}
	var b strings.Builder
	for _, r := range path {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// ErrNoHubDataset is a hf: name with no copy in the local hub cache.
var ErrNoHubDataset = errors.New("not in the local Hugging Face hub cache")

// ResolveDataDir is the data directory a recipe's data: names, relative to base: hf:owner/name
// is the dataset's snapshot in the local Hugging Face hub cache (HubDataset); any other name
// is a directory, relative to base unless absolute.
func ResolveDataDir(name, base string) (string, error) {
	if repo, ok := strings.CutPrefix(name, "hf:"); ok {
		return HubDataset(repo)
	}
	if name != "" && !filepath.IsAbs(name) {
		name = filepath.Join(base, name)
	}
	return name, nil
}

// HubCache is the Hugging Face hub cache: $HF_HUB_CACHE, else $HF_HOME/hub, else
// $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub, as huggingface_hub finds it.
func HubCache() string {
	if d := os.Getenv("HF_HUB_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("HF_HOME"); d != "" {
		return filepath.Join(d, "hub")
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "huggingface", "hub")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(".cache", "huggingface", "hub")
	}
	return filepath.Join(home, ".cache", "huggingface", "hub")
}

// HubDataset is the snapshot folder of dataset repo ("owner/name") in the local hub cache:
// datasets--owner--name/snapshots/REV, REV read from refs/main. Nothing is downloaded.
func HubDataset(repo string) (string, error) {
	parts := strings.Split(repo, "/")
	if repo == "" || len(parts) > 2 || slices.Contains(parts, "") || slices.ContainsFunc(parts, func(p string) bool {
		return p == "." || p == ".." || strings.ContainsAny(p, `\`)
	}) {
		return "", fmt.Errorf("hf:%s: a Hugging Face dataset is named hf:owner/name", repo)
	}
	repoDir := filepath.Join(HubCache(), "datasets--"+strings.Join(parts, "--"))
	ref := filepath.Join(repoDir, "refs", "main")
	rev, err := os.ReadFile(ref)
	if err != nil {
		return "", fmt.Errorf("hf:%s: %w: no %s (download it first, e.g. with huggingface-cli download --repo-type dataset %s)", repo, ErrNoHubDataset, ref, repo)
	}
	r := strings.TrimSpace(string(rev))
	if r == "" || r != filepath.Base(r) || r == ".." {
		return "", fmt.Errorf("hf:%s: %s holds %q, not a revision", repo, ref, r)
	}
	snap := filepath.Join(repoDir, "snapshots", r)
	if st, err := os.Stat(snap); err != nil || !st.IsDir() {
		return "", fmt.Errorf("hf:%s: %w: %s names revision %s, but %s is missing", repo, ErrNoHubDataset, ref, r, snap)
	}
	return snap, nil
}
