package runtime

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/yai-dev/yai/model"
)

// llama8B is the published shape of Llama-3.1-8B-Instruct.
var llama8B = model.Config{ModelType: "llama", NumHiddenLayers: 32, HiddenSize: 4096, IntermediateSize: 14336,
	NumAttentionHeads: 32, NumKeyValueHeads: 8, VocabSize: 128256}

// writeHeaderModel writes a model directory holding config.json and a headers-only
// safetensors file in the mlx-community 4-bit layout: every linear quantized (uint32 weight,
// scales, biases), norms not.
func writeHeaderModel(t testing.TB, dir string, c model.Config) {
	t.Helper()
	const bits, group = 4, 64
	cfg := map[string]any{"model_type": c.ModelType, "num_hidden_layers": c.NumHiddenLayers, "hidden_size": c.HiddenSize,
		"intermediate_size": c.IntermediateSize, "num_attention_heads": c.NumAttentionHeads,
		"num_key_value_heads": c.NumKeyValueHeads, "vocab_size": c.VocabSize, "rms_norm_eps": 1e-5,
		"quantization": map[string]int{"group_size": group, "bits": bits}}
	js, _ := json.Marshal(cfg)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), js, 0o644); err != nil {
		t.Fatal(err)
	}
	tensors := map[string]TensorInfo{}
	off := int64(0)
	add := func(name, dtype string, shape ...int64) {
		n := int64(1)
		for _, s := range shape {
			n *= s
		}
		size := map[string]int64{"U32": 4, "F16": 2, "BF16": 2}[dtype] * n
		tensors[name] = TensorInfo{Dtype: dtype, Shape: shape, DataOffsets: [2]int64{off, off + size}}
		off += size
	}
	quant := func(p string, out, in int) {
		add(p+".weight", "U32", int64(out), int64(in*bits/32))
		add(p+".scales", "BF16", int64(out), int64(in/group))
		add(p+".biases", "BF16", int64(out), int64(in/group))
	}
	h, kv := c.HiddenSize, c.HiddenSize/c.NumAttentionHeads*c.NumKeyValueHeads
	quant("model.embed_tokens", c.VocabSize, h)
	quant("lm_head", c.VocabSize, h)
	add("model.norm.weight", "BF16", int64(h))
	for i := range c.NumHiddenLayers {
		p := fmt.Sprintf("model.layers.%d.", i)
		quant(p+"self_attn.q_proj", h, h)
		quant(p+"self_attn.k_proj", kv, h)
		quant(p+"self_attn.v_proj", kv, h)
		quant(p+"self_attn.o_proj", h, h)
		quant(p+"mlp.gate_proj", c.IntermediateSize, h)
		quant(p+"mlp.up_proj", c.IntermediateSize, h)
		quant(p+"mlp.down_proj", h, c.IntermediateSize)
		add(p+"input_layernorm.weight", "BF16", int64(h))
		add(p+"post_attention_layernorm.weight", "BF16", int64(h))
	}
	if err := WriteSafetensorsHeader(filepath.Join(dir, "model.safetensors"), tensors); err != nil {
		t.Fatal(err)
	}
}

func TestSafetensorsHeaderRoundTrip(t *testing.T) {
	dir := t.TempDir()
	writeHeaderModel(t, dir, model.Config{ModelType: "llama", NumHiddenLayers: 2, HiddenSize: 64, IntermediateSize: 128, NumAttentionHeads: 4, NumKeyValueHeads: 2, VocabSize: 256})
	info, err := InspectModel(dir)
	if err != nil {
		t.Fatal(err)
	}
	q := info.Tensors["model.layers.1.self_attn.k_proj.weight"]
	if diff := cmp.Diff([]int64{32, 8}, q.Shape); diff != "" || q.Dtype != "U32" {
		t.Errorf("k_proj.weight %s %v (-want +got shape):\n%s", q.Dtype, q.Shape, diff)
	}
	want := []string{"input_layernorm", "mlp.down_proj", "mlp.gate_proj", "mlp.up_proj", "post_attention_layernorm",
		"self_attn.k_proj", "self_attn.o_proj", "self_attn.q_proj", "self_attn.v_proj"}
	if diff := cmp.Diff(want, info.BlockModules(1)); diff != "" {
		t.Errorf("block modules (-want +got):\n%s", diff)
	}
	if !info.Quantized("model.layers.0.self_attn.q_proj") || info.Quantized("model.norm") {
		t.Error("quantized modules misdetected")
	}
}

func TestSafetensorsHeaderRejectsGarbage(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.safetensors")
	for _, data := range [][]byte{nil, {1, 2}, {255, 255, 255, 255, 255, 255, 255, 255}, {4, 0, 0, 0, 0, 0, 0, 0, '{', '['}} {
		os.WriteFile(p, data, 0o644)
		if _, err := ReadSafetensorsHeader(p); err == nil {
			t.Errorf("%v: no error", data)
		}
	}
}

// A repo id resolves in the HF cache (HF_HUB_CACHE honoured, refs/main preferred); a missing
// one says where yai looked and how to get it.
func TestResolveModel(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("HF_HUB_CACHE", cache)
	repo := filepath.Join(cache, "models--mlx-community--Meta-Llama-3.1-8B-Instruct-4bit")
	for _, snap := range []string{"aaa", "bbb"} {
		os.MkdirAll(filepath.Join(repo, "snapshots", snap), 0o755)
		os.WriteFile(filepath.Join(repo, "snapshots", snap, "config.json"), []byte("{}"), 0o644)
	}
	os.MkdirAll(filepath.Join(repo, "refs"), 0o755)
	os.WriteFile(filepath.Join(repo, "refs", "main"), []byte("aaa\n"), 0o644)

	for _, ref := range []string{"llama-8b", "mlx-community/Meta-Llama-3.1-8B-Instruct-4bit"} {
		dir, err := ResolveModel(ref, "/nowhere")
		if err != nil || dir != filepath.Join(repo, "snapshots", "aaa") {
			t.Errorf("%s: %q, %v", ref, dir, err)
		}
	}
	local := t.TempDir()
	if dir, err := ResolveModel(filepath.Base(local), filepath.Dir(local)); err != nil || dir != local {
		t.Errorf("relative dir: %q, %v", dir, err)
	}

	_, err := ResolveModel("llama-3.2-1b", "/nowhere")
	nf, ok := err.(*ModelNotFound)
	if !ok {
		t.Fatalf("err = %v", err)
	}
	help := nf.Help()
	for _, want := range []string{filepath.Join(cache, "models--mlx-community--Llama-3.2-1B-Instruct-4bit", "snapshots"), "huggingface-cli download mlx-community/Llama-3.2-1B-Instruct-4bit"} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q:\n%s", want, help)
		}
	}
	t.Setenv("HF_HUB_CACHE", "")
	t.Setenv("HF_HOME", "/hf")
	if HFHubCache() != "/hf/hub" {
		t.Errorf("HF_HOME not honoured: %s", HFHubCache())
	}
}

// validate checks LoRA keys and layer counts against config.json and the headers.
func TestValidateAgainstModel(t *testing.T) {
	dir := t.TempDir()
	writeHeaderModel(t, filepath.Join(dir, "model"), model.Config{ModelType: "llama", NumHiddenLayers: 4, HiddenSize: 64, IntermediateSize: 128, NumAttentionHeads: 4, NumKeyValueHeads: 2, VocabSize: 256})
	recipe := filepath.Join(dir, "r.yaml")
	src := strings.Replace(base, "rank: 16", "rank: 16\n      layers: 6\n      keys: [q_proj, self_attn.qproj]", 1) +
		"  - id: reload\n    kind: reload-selective\n    with: {tensors: [targets, lm_head, nosuch]}\n"
	os.WriteFile(recipe, []byte(src), 0o644)
	_, ds := Validate(recipe, nil, ValidateOptions{})
	var got []string
	for _, d := range ds {
		got = append(got, strings.TrimPrefix(d.String(), recipe+":"))
	}
	want := []string{
		`15:15: error: layers: 6 is more than the model's 4 layers`,
		`16:22: error: keys: "self_attn.qproj" matches no module of block 3 (did you mean "self_attn.q_proj"?)`,
		`24:40: error: tensors: "nosuch" names no tensor of the model (use targets, head, or a name suffix)`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s", diff)
	}

	p, ds := Validate(recipe, []string{"stages.lora.with.layers=4", "stages.lora.with.keys=[q_proj]", "stages.reload.with.tensors=[targets]"}, ValidateOptions{})
	if p == nil || p.Model == nil || p.Model.Config.NumHiddenLayers != 4 {
		t.Fatalf("fixed by overrides, still invalid:\n%s", ds.Format())
	}
}

// A model the loader cannot run fails the dry run already, at the recipe's model line, with
// the loader's own message.
func TestValidateRejectsUnsupportedModel(t *testing.T) {
	dir := t.TempDir()
	writeHeaderModel(t, filepath.Join(dir, "model"), model.Config{ModelType: "gpt2", NumHiddenLayers: 4, HiddenSize: 64, IntermediateSize: 128, NumAttentionHeads: 4, NumKeyValueHeads: 2, VocabSize: 256})
	recipe := filepath.Join(dir, "r.yaml")
	os.WriteFile(recipe, []byte(base), 0o644)
	p, ds := Validate(recipe, nil, ValidateOptions{})
	if p != nil || !ds.HasErrors() {
		t.Fatalf("validate accepted a gpt2 model:\n%s", ds.Format())
	}
	if msg := ds.Format(); !strings.Contains(msg, `unsupported model_type "gpt2"`) || !strings.Contains(msg, "config.json") {
		t.Errorf("diagnostic does not name the file and the model type:\n%s", msg)
	}
}

// The seed recipe validates against a headers-only copy of the real model's shapes.
func TestSeedRecipeAgainstLlama8BHeaders(t *testing.T) {
	dir := t.TempDir()
	writeHeaderModel(t, dir, llama8B)
	for _, f := range shippedRecipes(t) {
		if !for8B(t, f) {
			continue
		}
		p, ds := Validate(f, []string{"model=" + dir}, ValidateOptions{})
		if p == nil || ds.HasErrors() {
			t.Errorf("%s:\n%s", f, ds.Format())
		}
	}
}

// for8B reports whether a shipped recipe trains the 8B model (the headers these tests write);
// the budget of a recipe for a smaller model does not hold on the 8B shapes.
func for8B(t testing.TB, f string) bool {
	r, ds := LoadFile(f, nil)
	if r == nil {
		t.Fatalf("%s:\n%s", f, ds.Format())
	}
	return Aliases[r.Model] == Aliases["llama-8b"]
}

func BenchmarkValidate(b *testing.B) {
	dir := b.TempDir()
	writeHeaderModel(b, dir, llama8B)
	for _, f := range shippedRecipes(b) {
		if !for8B(b, f) {
			continue
		}
		b.Run(filepath.Base(f), func(b *testing.B) {
			for b.Loop() {
				if p, ds := Validate(f, []string{"model=" + dir}, ValidateOptions{}); p == nil {
					b.Fatal(ds)
				}
			}
		})
	}
}
