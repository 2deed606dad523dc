package modeldir

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
)

// Problem is one thing wrong with a model directory's files, named by file and tensor, that
// would make the run fail when it loads the weights.
type Problem struct {
	File    string // the file at fault (a shard, the index, config.json, tokenizer.json)
	Tensor  string // the tensor, when there is one
	Line    int    // in a text file, the fault's line and column (1-based), when known
	Column  int
	Message string
}

func (p Problem) Error() string {
	if p.Tensor != "" {
		return fmt.Sprintf("%s: tensor %s: %s", p.File, p.Tensor, p.Message)
	}
	return fmt.Sprintf("%s: %s", p.File, p.Message)
}

// maxProblemsPerFile keeps a badly broken file from burying the rest under thousands of lines.
const maxProblemsPerFile = 20

// CheckShard checks each tensor's data offsets against its dtype and shape and against the
// file's size: a truncated file, or offsets past the end, would fail only when loaded.
func CheckShard(s *Shard) []Problem {
	var out []Problem
	names := make([]string, 0, len(s.Tensors))
	for name := range s.Tensors {
		names = append(names, name)
	}
	sort.Strings(names)
	data := s.DataBytes()
	var pastEnd []string
	end := int64(0)
	for _, name := range names {
		t := s.Tensors[name]
		size, _ := DtypeSize(t.Dtype)
		n := t.Elements()
		if n < 0 || t.Bytes() != n*size {
			out = append(out, Problem{File: s.Path, Tensor: name, Message: fmt.Sprintf("data offsets %v hold %d bytes, but %s %v needs %d", t.DataOffsets, t.Bytes(), t.Dtype, t.Shape, n*size)})
		}
		if t.DataOffsets[1] > data {
			pastEnd = append(pastEnd, name)
		}
		end = max(end, t.DataOffsets[1])
	}
	if len(pastEnd) > 0 {
		slices.SortFunc(pastEnd, func(a, b string) int { return int(s.Tensors[a].DataOffsets[0] - s.Tensors[b].DataOffsets[0]) })
		first := pastEnd[0]
		out = append(out, Problem{File: s.Path, Tensor: first, Message: fmt.Sprintf(
			"data ends at byte %d, past the end of the file (it holds %d bytes of data; %d tensors lie beyond): the file is truncated or its offsets are wrong",
			s.Tensors[first].DataOffsets[1], data, len(pastEnd))})
	}
	if len(out) > maxProblemsPerFile {
		more := len(out) - maxProblemsPerFile
		out = append(out[:maxProblemsPerFile], Problem{File: s.Path, Message: fmt.Sprintf("and %d more problems", more)})
	}
	return out
}

// Check verifies, from the headers alone, that every tensor the architecture needs is there
// with the right shape and dtype and its quantization companions, and that nothing else is:
// the same rules the loader applies when it binds the weights.
func (m *Info) Check() []Problem {
	if len(m.Tensors) == 0 {
		return []Problem{{File: m.Dir, Message: "no safetensors files (model.safetensors, or shards named by model.safetensors.index.json)"}}
	}
	c := &checker{info: m, left: map[string]bool{}}
	for name := range m.Tensors {
		c.left[name] = true
	}
	c.run()
	sort.SliceStable(c.out, func(i, j int) bool {
		if c.out[i].File != c.out[j].File {
			return c.out[i].File < c.out[j].File
		}
		return c.out[i].Tensor < c.out[j].Tensor
	})
	return c.out
}

type checker struct {
	info *Info
	left map[string]bool // tensors not yet claimed by the architecture
	out  []Problem
}

func (c *checker) fail(name, format string, args ...any) {
	file := filepath.Join(c.info.Dir, "model.safetensors")
	if t, ok := c.info.Tensors[name]; ok && t.File != "" {
		file = t.File
	}
	c.out = append(c.out, Problem{File: file, Tensor: name, Message: fmt.Sprintf(format, args...)})
}

func (c *checker) run() {
	cfg := c.info.Config
	for name := range c.left {
		if cfg.Unused(name) {
			delete(c.left, name) // mlx-lm's sanitize drops these
		}
	}
	for _, m := range cfg.Layout().Modules() {
		q, quantized := cfg.ModuleQuant(c, m)
		BindModule(c, m, q, quantized)
	}
	var rest []string
	for name := range c.left {
		rest = append(rest, name)
	}
	sort.Strings(rest)
	for i, name := range rest {
		if i == maxProblemsPerFile {
			c.fail(name, "and %d more tensors the model has no weight for", len(rest)-i)
			break
		}
		if PerExpert(name) {
			c.fail(name, "%s", PerExpertProblem)
			continue
		}
		c.fail(name, "unexpected tensor: the model has no such weight (config.json: %s, %d layers)", cfg.ModelType, cfg.NumHiddenLayers)
	}
}

// Stored implements Tensors over the headers.
func (c *checker) Stored(name string) (Stored, bool) {
	t, ok := c.info.Tensors[name]
	if !ok {
		return Stored{}, false
	}
	shape := make([]int, len(t.Shape))
	for i, d := range t.Shape {
		shape[i] = int(d)
	}
	return Stored{Shape: shape, Uint32: t.Dtype == "U32", Uint8: t.Dtype == "U8"}, true
}

// Bind checks one tensor's presence, shape and dtype; the problems name the config.json
// fields the expected shape comes from.
func (c *checker) Bind(want Tensor) {
	name := want.Name
	t, ok := c.info.Tensors[name]
	if !ok {
		c.fail(name, "missing (the model needs it: %s, shape %v)", c.info.Config.ModelType, want.Shape)
		return
	}
	delete(c.left, name)
	shape := make([]int64, len(want.Shape))
	for i, d := range want.Shape {
		shape[i] = int64(d)
	}
	if !slices.Equal(t.Shape, shape) {
		c.fail(name, "shape %v, expected %v (from config.json: %s)", t.Shape, shape, want.Why)
		return
	}
	if !want.Class.Accepts(t.Dtype) {
		c.fail(name, "dtype %s, expected %s", t.Dtype, want.Class)
	}
}

// Fail implements Tensors.
func (c *checker) Fail(name, problem string) { c.fail(name, "%s", problem) }

// Drop implements Tensors.
func (c *checker) Drop(name string) { delete(c.left, name) }
