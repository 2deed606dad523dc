package runtime

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/yai-dev/yai/model"
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

// ModelNotFound says where yai looked for a model and how to get it.
type ModelNotFound struct {
	Ref    string
	RepoID string // set when the reference is (or aliases) a Hugging Face repo id
	Looked []string
}

func (e *ModelNotFound) Error() string {
	return fmt.Sprintf("model %q not found", e.Ref)
}

// Help is the detail printed under the error.
func (e *ModelNotFound) Help() string {
	s := "looked in:\n  " + strings.Join(e.Looked, "\n  ")
	if e.RepoID != "" {
		s += "\nget it with:\n  huggingface-cli download " + e.RepoID
	}
	return s
}

// ResolveModel finds the model directory for a recipe's `model:` value: a directory (relative
// to the recipe's directory), an alias, or a Hugging Face repo id in the local cache. It never
// downloads anything.
func ResolveModel(ref, recipeDir string) (string, error) {
	nf := &ModelNotFound{Ref: ref}
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

// ModelInfo is what a dry run knows about a model: its config and tensor headers, no weights.
type ModelInfo struct {
	Dir     string
	Config  *model.Config         // parsed as the loader parses it, with mlx-lm's defaults
	Tensors map[string]TensorInfo // empty when the directory holds no safetensors files
}

// InspectModel reads config.json and the safetensors headers of a model directory.
func InspectModel(dir string) (*ModelInfo, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("model directory %s has no readable config.json: %w", dir, err)
	}
	cfg, err := model.ParseConfig(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "config.json"), err)
	}
	info := &ModelInfo{Dir: dir, Config: cfg, Tensors: map[string]TensorInfo{}}
	files, err := safetensorsFiles(dir)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		ts, err := ReadSafetensorsHeader(f)
		if err != nil {
			return nil, err
		}
		for k, v := range ts {
			info.Tensors[k] = v
		}
	}
	return info, nil
}

// safetensorsFiles lists the shards named by model.safetensors.index.json, or every
// *.safetensors file of the directory.
func safetensorsFiles(dir string) ([]string, error) {
	idx, err := os.ReadFile(filepath.Join(dir, "model.safetensors.index.json"))
	if err == nil {
		var index struct {
			WeightMap map[string]string `json:"weight_map"`
		}
		if err := json.Unmarshal(idx, &index); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "model.safetensors.index.json"), err)
		}
		seen := map[string]bool{}
		var out []string
		for _, f := range index.WeightMap {
			if !seen[f] {
				seen[f] = true
				out = append(out, filepath.Join(dir, f))
			}
		}
		sort.Strings(out)
		return out, nil
	}
	out, _ := filepath.Glob(filepath.Join(dir, "*.safetensors"))
	return out, nil
}

// BlockModules lists the modules of transformer block i relative to the block
// ("self_attn.q_proj", "mlp.down_proj", …), sorted.
func (m *ModelInfo) BlockModules(i int) []string {
	prefix := fmt.Sprintf("model.layers.%d.", i)
	seen := map[string]bool{}
	for name := range m.Tensors {
		if rest, ok := strings.CutPrefix(name, prefix); ok {
			if j := strings.LastIndexByte(rest, '.'); j > 0 {
				seen[rest[:j]] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// MatchModule reports the block module a LoRA key names: exactly, or by suffix (q_proj).
func MatchModule(modules []string, key string) (string, bool) {
	for _, m := range modules {
		if m == key || strings.HasSuffix(m, "."+key) {
			return m, true
		}
	}
	return "", false
}

// Quantized reports whether a module is stored quantized (it has scales).
func (m *ModelInfo) Quantized(module string) bool {
	_, ok := m.Tensors[module+".scales"]
	return ok
}
