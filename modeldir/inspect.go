package modeldir

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// Info is what a dry run knows about a model: its config and tensor headers, no weights.
type Info struct {
	Dir     string
	Config  *Config               // parsed as the loader parses it, with mlx-lm's defaults
	Tensors map[string]TensorInfo // empty when the directory holds no safetensors files
	// Problems found in the files themselves: unreadable headers, truncated shards, offsets
	// past the end, an index that disagrees with its shards. Check adds the architecture's.
	Problems []Problem
}

// Inspect reads config.json and the safetensors headers of a model directory. Only a missing
// or unreadable config.json is an error; problems of the weight files are collected in
// Problems, all at once.
func Inspect(dir string) (*Info, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("model directory %s has no readable config.json: %w", dir, err)
	}
	cfg, err := ParseConfig(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "config.json"), err)
	}
	info := &Info{Dir: dir, Config: cfg, Tensors: map[string]TensorInfo{}}
	index, files, err := safetensorsFiles(dir)
	if err != nil {
		info.Problems = append(info.Problems, Problem{File: filepath.Join(dir, indexFile), Message: err.Error()})
	}
	for _, f := range files {
		s, err := ReadShard(f)
		if err != nil {
			info.Problems = append(info.Problems, Problem{File: f, Message: strings.TrimPrefix(err.Error(), f+": ")})
			continue
		}
		info.Problems = append(info.Problems, CheckShard(s)...)
		for k, v := range s.Tensors {
			if prev, dup := info.Tensors[k]; dup {
				info.Problems = append(info.Problems, Problem{File: f, Tensor: k, Message: "also stored in " + filepath.Base(prev.File)})
			}
			info.Tensors[k] = v
		}
	}
	info.Problems = append(info.Problems, checkIndex(dir, index, info.Tensors)...)
	cfg.SettleHead(func(name string) bool { _, ok := info.Tensors[name]; return ok })
	return info, nil
}

const indexFile = "model.safetensors.index.json"

// safetensorsFiles lists the shards named by model.safetensors.index.json (returned too), or
// every *.safetensors file of the directory.
func safetensorsFiles(dir string) (map[string]string, []string, error) {
	idx, err := os.ReadFile(filepath.Join(dir, indexFile))
	if err == nil {
		var index struct {
			WeightMap map[string]string `json:"weight_map"`
		}
		if err := json.Unmarshal(idx, &index); err != nil {
			return nil, nil, fmt.Errorf("not a valid index: %w", err)
		}
		if len(index.WeightMap) == 0 {
			return nil, nil, fmt.Errorf("the index has no weight_map")
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
		return index.WeightMap, out, nil
	}
	out, _ := filepath.Glob(filepath.Join(dir, "*.safetensors"))
	return nil, out, nil
}

// checkIndex reports tensors the index places in a shard that does not hold them, and tensors
// of the shards the index does not name.
func checkIndex(dir string, index map[string]string, tensors map[string]TensorInfo) []Problem {
	if index == nil {
		return nil
	}
	var out []Problem
	path := filepath.Join(dir, indexFile)
	names := make([]string, 0, len(index))
	for name := range index {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		t, ok := tensors[name]
		switch {
		case !ok:
			if _, err := os.Stat(filepath.Join(dir, index[name])); err == nil {
				out = append(out, Problem{File: path, Tensor: name, Message: "the index places it in " + index[name] + ", which does not hold it"})
			}
		case filepath.Base(t.File) != filepath.Base(index[name]):
			out = append(out, Problem{File: path, Tensor: name, Message: "the index places it in " + index[name] + ", but it is in " + filepath.Base(t.File)})
		}
	}
	var extra []string
	for name := range tensors {
		if _, ok := index[name]; !ok {
			extra = append(extra, name)
		}
	}
	sort.Strings(extra)
	for _, name := range extra {
		out = append(out, Problem{File: path, Tensor: name, Message: "stored in " + filepath.Base(tensors[name].File) + " but missing from the index's weight_map"})
	}
	if len(out) > maxProblemsPerFile {
		more := len(out) - maxProblemsPerFile
		out = append(out[:maxProblemsPerFile], Problem{File: path, Message: fmt.Sprintf("and %d more problems", more)})
	}
	return out
}

// BlockModules lists the modules of transformer block i relative to the block
// ("self_attn.q_proj", "mlp.down_proj", …), sorted.
func (m *Info) BlockModules(i int) []string {
	prefix := m.Config.LayerPath(i) + "."
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

// MatchModules lists the block modules a LoRA key names, as internal/lora resolves it: the
// module of that name, else every module ending with it (gate_proj names a dense block's
// mlp.gate_proj and a mixture's mlp.switch_mlp.gate_proj).
func MatchModules(modules []string, key string) []string {
	if slices.Contains(modules, key) {
		return []string{key}
	}
	var out []string
	for _, m := range modules {
		if strings.HasSuffix(m, "."+key) {
			out = append(out, m)
		}
	}
	return out
}

// FusedModule is the block module that holds the projection key names when the block fuses
// it with others (q_proj in Phi-3's self_attn.qkv_proj, gate_proj in mlp.gate_up_proj).
func FusedModule(modules []string, key string) (string, bool) {
	short := key[strings.LastIndexByte(key, '.')+1:]
	fused := map[string]string{"q_proj": "qkv_proj", "k_proj": "qkv_proj", "v_proj": "qkv_proj",
		"gate_proj": "gate_up_proj", "up_proj": "gate_up_proj"}[short]
	if fused == "" {
		return "", false
	}
	return MatchModule(modules, fused)
}

// Quantized reports whether a module is stored quantized (it has scales).
func (m *Info) Quantized(module string) bool {
	_, ok := m.Tensors[module+".scales"]
	return ok
}

// LinearDims reads a linear module's (in, out) from its weight's header, unpacking the
// quantized width.
func (m *Info) LinearDims(module string) (in, out int) {
	w, ok := m.Tensors[module+".weight"]
	if !ok || len(w.Shape) != 2 {
		return 0, 0
	}
	return m.unpacked(module, int(w.Shape[1])), int(w.Shape[0])
}

// ExpertDims reads a stack of experts' sizes from its weight's header (experts, out, in),
// unpacking the quantized width; experts is 0 when the module is no stack.
func (m *Info) ExpertDims(module string) (experts, in, out int) {
	w, ok := m.Tensors[module+".weight"]
	if !ok || len(w.Shape) != 3 {
		return 0, 0, 0
	}
	return int(w.Shape[0]), m.unpacked(module, int(w.Shape[2])), int(w.Shape[1])
}

// unpacked is the inputs of a module whose weight stores width columns: more when packed.
func (m *Info) unpacked(module string, width int) int {
	if q := m.Config.Quantization; q != nil && m.Quantized(module) {
		bits := q.Default.Bits
		if s, overridden := q.For(module); overridden && s != nil {
			bits = s.Bits // a per-layer setting of config.json
		}
		if bits > 0 {
			return width * 32 / bits
		}
	}
	return width
}

// ActivationDtype is the dtype hidden states take: dequantized embeddings come out in the
// scales' dtype, plain ones in the weight's.
func (m *Info) ActivationDtype() (string, float64) {
	for _, name := range []string{"model.embed_tokens.scales", "model.embed_tokens.weight", "model.norm.weight"} {
		if t, ok := m.Tensors[m.Config.Prefix+name]; ok {
			switch t.Dtype {
			case "F32":
				return "float32", 4
			case "F16":
				return "float16", 2
			case "BF16":
				return "bfloat16", 2
			}
		}
	}
	return "bfloat16", 2
}

// HasTensorSuffix reports whether some tensor's name matches suffix (see TensorMatches).
func (m *Info) HasTensorSuffix(suffix string) bool {
	for name := range m.Tensors {
		if TensorMatches(name, suffix) {
			return true
		}
	}
	return false
}

// TensorMatches reports whether a tensor name is selected by a suffix: the name ends with it
// ("norm.weight"), or it names a whole module of the tensor ("lm_head", "model.norm").
func TensorMatches(name, suffix string) bool {
	return strings.HasSuffix(name, suffix) || strings.Contains(name, suffix+".")
}
