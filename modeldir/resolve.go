package modeldir

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Aliases are short names for models people use most; they resolve to Hugging Face repo ids.
var Aliases = map[string]string{
	"llama-8b":     "mlx-community/Meta-Llama-3.1-8B-Instruct-4bit",
	"llama-3.1-8b": "mlx-community/Meta-Llama-3.1-8B-Instruct-4bit",
	"llama-3.2-1b": "mlx-community/Llama-3.2-1B-Instruct-4bit",
	"llama-3.2-3b": "mlx-community/Llama-3.2-3B-Instruct-4bit",
}

// HFHubCache is the Hugging Face hub cache directory, honouring HF_HUB_CACHE and HF_HOME.
func HFHubCache() string {
	if d := os.Getenv("HF_HUB_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("HF_HOME"); d != "" {
		return filepath.Join(d, "hub")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "huggingface", "hub")
}

// NotFound says where yai looked for a model and how to get it.
type NotFound struct {
	Ref    string
	RepoID string // set when the reference is (or aliases) a Hugging Face repo id
	Looked []string
}

func (e *NotFound) Error() string {
	return fmt.Sprintf("model %q not found", e.Ref)
}

// Help is the detail printed under the error.
func (e *NotFound) Help() string {
	s := "looked in:\n  " + strings.Join(e.Looked, "\n  ")
	if e.RepoID != "" {
		s += "\nget it with:\n  huggingface-cli download " + e.RepoID
	}
	return s
}

// Resolve finds the model directory for a recipe's `model:` value: a directory (relative
// to the recipe's directory), an alias, or a Hugging Face repo id in the local cache. It never
// downloads anything.
func Resolve(ref, recipeDir string) (string, error) {
	nf := &NotFound{Ref: ref}
	repo := ref
	if a, ok := Aliases[ref]; ok {
		repo = a
	}
	path := ref
	if strings.HasPrefix(path, "~/") {
		home, _ := os.UserHomeDir()
		path = filepath.Join(home, path[2:])
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(recipeDir, path)
	}
	if repo == ref {
		if isDir(path) {
			return path, nil
		}
		nf.Looked = append(nf.Looked, path)
	}
	if looksLikeRepoID(repo) {
		nf.RepoID = repo
		cache := filepath.Join(HFHubCache(), "models--"+strings.ReplaceAll(repo, "/", "--"))
		if dir := snapshot(cache); dir != "" {
			return dir, nil
		}
		nf.Looked = append(nf.Looked, filepath.Join(cache, "snapshots"))
	}
	return "", nf
}

func looksLikeRepoID(s string) bool {
	parts := strings.Split(s, "/")
	return len(parts) == 2 && parts[0] != "" && parts[1] != "" && !strings.HasPrefix(s, ".")
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// snapshot picks the snapshot refs/main points at, else the newest one holding config.json.
func snapshot(cache string) string {
	if ref, err := os.ReadFile(filepath.Join(cache, "refs", "main")); err == nil {
		dir := filepath.Join(cache, "snapshots", strings.TrimSpace(string(ref)))
		if fileExists(filepath.Join(dir, "config.json")) {
			return dir
		}
	}
	entries, _ := os.ReadDir(filepath.Join(cache, "snapshots"))
	best, bestTime := "", int64(0)
	for _, e := range entries {
		dir := filepath.Join(cache, "snapshots", e.Name())
		st, err := os.Stat(filepath.Join(dir, "config.json"))
		if err == nil && st.ModTime().UnixNano() > bestTime {
			best, bestTime = dir, st.ModTime().UnixNano()
		}
	}
	return best
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}
