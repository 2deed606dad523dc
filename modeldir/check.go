package modeldir

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
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
		if strings.Contains(name, "self_attn.rotary_emb.inv_freq") || (cfg.TieWordEmbeddings && name == "lm_head.weight") {
			delete(c.left, name) // mlx-lm's sanitize drops these
		}
	}
	h, q, kv := cfg.HiddenSize, cfg.NumAttentionHeads*cfg.HeadDim, cfg.NumKeyValueHeads*cfg.HeadDim
	c.embedding("model.embed_tokens", cfg.VocabSize, h)
	for i := range cfg.NumHiddenLayers {
		p := fmt.Sprintf("model.layers.%d.", i)
		c.linear(p+"self_attn.q_proj", h, q, cfg.QKVBias(), "num_attention_heads × head_dim")
		c.linear(p+"self_attn.k_proj", h, kv, cfg.QKVBias(), "num_key_value_heads × head_dim")
		c.linear(p+"self_attn.v_proj", h, kv, cfg.QKVBias(), "num_key_value_heads × head_dim")
		c.linear(p+"self_attn.o_proj", q, h, cfg.OBias(), "hidden_size")
		c.linear(p+"mlp.gate_proj", h, cfg.IntermediateSize, cfg.MLPBias, "intermediate_size")
		c.linear(p+"mlp.up_proj", h, cfg.IntermediateSize, cfg.MLPBias, "intermediate_size")
		c.linear(p+"mlp.down_proj", cfg.IntermediateSize, h, cfg.MLPBias, "hidden_size")
		c.bind(p+"input_layernorm.weight", []int64{int64(h)}, floatClass, "hidden_size")
		c.bind(p+"post_attention_layernorm.weight", []int64{int64(h)}, floatClass, "hidden_size")
	}
	c.bind("model.norm.weight", []int64{int64(h)}, floatClass, "hidden_size")
	if !cfg.TieWordEmbeddings {
		c.linear("lm_head", h, cfg.VocabSize, false, "vocab_size")
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
		c.fail(name, "unexpected tensor: the model has no such weight (config.json: %s, %d layers)", cfg.ModelType, cfg.NumHiddenLayers)
	}
}

// dtype classes, as the loader accepts them.
type dtypeClass int

const (
	floatClass  dtypeClass = iota // F16, BF16, F32
	packedClass                   // U32 packed quantized weights
	scaleClass                    // float, or U8 for the microscaling modes
)

func (k dtypeClass) accepts(dtype string) bool {
	switch k {
	case floatClass:
		return dtype == "F16" || dtype == "BF16" || dtype == "F32"
	case packedClass:
		return dtype == "U32"
	}
	return dtype == "F16" || dtype == "BF16" || dtype == "F32" || dtype == "U8"
}

func (k dtypeClass) String() string {
	return [...]string{"F16, BF16 or F32", "U32", "F16, BF16, F32 or U8"}[k]
}

// bind checks one tensor's presence, shape and dtype; why names the config.json fields the
// expected shape comes from.
func (c *checker) bind(name string, shape []int64, class dtypeClass, why string) {
	t, ok := c.info.Tensors[name]
	if !ok {
		c.fail(name, "missing (the model needs it: %s, shape %v)", c.info.Config.ModelType, shape)
		return
	}
	delete(c.left, name)
	if !slices.Equal(t.Shape, shape) {
		c.fail(name, "shape %v, expected %v (from config.json: %s)", t.Shape, shape, why)
		return
	}
	if !class.accepts(t.Dtype) {
		c.fail(name, "dtype %s, expected %s", t.Dtype, class)
	}
}

// quantization decides, as the loader does, whether the module at path is quantized and how:
// a per-layer entry of config.json wins, else the packing is inferred from the stored shapes.
func (c *checker) quantization(path string, in int) (q Quant, quantized bool) {
	scales, hasScales := c.info.Tensors[path+".scales"]
	weight, hasWeight := c.info.Tensors[path+".weight"]
	qc := c.info.Config.Quantization
	override, overridden := qc.For(path)
	if overridden && override == nil {
		if hasScales {
			c.fail(path+".scales", "config.json quantization marks %s as not quantized", path)
			delete(c.left, path+".scales")
			delete(c.left, path+".biases")
		}
		return q, false
	}
	if !hasScales {
		if hasWeight && weight.Dtype == "U32" {
			c.fail(path+".scales", "missing: %s.weight is packed (U32) but has no scales", path)
			delete(c.left, path+".weight")
			delete(c.left, path+".biases")
			return q, true
		}
		return q, false
	}
	if overridden && override.GroupSize > 0 {
		return *override, true
	}
	if overridden {
		return qc.Default, true
	}
	if !hasWeight || len(scales.Shape) != 2 || len(weight.Shape) != 2 || scales.Shape[1] == 0 || in == 0 {
		return Quant{GroupSize: 64, Bits: 4, Mode: "affine"}, true // shapes are reported by bind
	}
	q = Quant{GroupSize: in / int(scales.Shape[1]), Bits: int(weight.Shape[1]) * 32 / in, Mode: "affine"}
	if scales.Dtype == "U8" {
		switch {
		case q.Bits == 4 && q.GroupSize == 16:
			q.Mode = "nvfp4"
		case q.Bits == 4 && q.GroupSize == 32:
			q.Mode = "mxfp4"
		case q.Bits == 8 && q.GroupSize == 32:
			q.Mode = "mxfp8"
		default:
			c.fail(path+".scales", "cannot infer the quantization mode of %d bits with group size %d", q.Bits, q.GroupSize)
		}
	}
	return q, true
}

// packed checks the weight, scales and (affine) biases of a quantized module.
func (c *checker) packed(path string, in, out int, q Quant, why string) {
	if q.Bits <= 0 || q.GroupSize <= 0 || in*q.Bits%32 != 0 || in%q.GroupSize != 0 {
		c.fail(path+".weight", "cannot be packed with %d bits in groups of %d (%d inputs)", q.Bits, q.GroupSize, in)
		for _, suffix := range []string{".weight", ".scales", ".biases"} {
			delete(c.left, path+suffix)
		}
		return
	}
	if _, ok := c.info.Tensors[path+".scales"]; !ok {
		return // reported by quantization
	}
	c.bind(path+".weight", []int64{int64(out), int64(in * q.Bits / 32)}, packedClass, why+", packed "+itoa(q.Bits)+"-bit")
	c.bind(path+".scales", []int64{int64(out), int64(in / q.GroupSize)}, scaleClass, why+", groups of "+itoa(q.GroupSize))
	if q.Mode == "" || q.Mode == "affine" {
		c.bind(path+".biases", []int64{int64(out), int64(in / q.GroupSize)}, scaleClass, why+", groups of "+itoa(q.GroupSize))
	}
}

func (c *checker) linear(path string, in, out int, bias bool, why string) {
	if q, ok := c.quantization(path, in); ok {
		c.packed(path, in, out, q, why)
	} else {
		c.bind(path+".weight", []int64{int64(out), int64(in)}, floatClass, why+" by its inputs")
	}
	if bias {
		c.bind(path+".bias", []int64{int64(out)}, floatClass, why)
	}
}

func (c *checker) embedding(path string, vocab, hidden int) {
	if q, ok := c.quantization(path, hidden); ok {
		c.packed(path, hidden, vocab, q, "vocab_size")
		return
	}
	c.bind(path+".weight", []int64{int64(vocab), int64(hidden)}, floatClass, "vocab_size by hidden_size")
}

func itoa(i int) string { return fmt.Sprint(i) }
