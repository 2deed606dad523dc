package modeldir_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/yai-dev/yai/internal/testenv"
	"github.com/yai-dev/yai/modeldir"
)

func TestSafetensorsHeaderRoundTrip(t *testing.T) {
	dir := t.TempDir()
	testenv.WriteHeaderModel(t, dir, modeldir.Config{ModelType: "llama", NumHiddenLayers: 2, HiddenSize: 64, IntermediateSize: 128, NumAttentionHeads: 4, NumKeyValueHeads: 2, VocabSize: 1024})
	info, err := modeldir.Inspect(dir)
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
		if _, err := modeldir.ReadSafetensorsHeader(p); err == nil {
			t.Errorf("%v: no error", data)
		}
	}
}

// A repo id resolves in the HF cache (HF_HUB_CACHE honoured, refs/main preferred); a missing
// one says where yai looked and how to get it.
func TestResolve(t *testing.T) {
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
		dir, err := modeldir.Resolve(ref, "/nowhere")
		if err != nil || dir != filepath.Join(repo, "snapshots", "aaa") {
			t.Errorf("%s: %q, %v", ref, dir, err)
		}
	}
	local := t.TempDir()
	if dir, err := modeldir.Resolve(filepath.Base(local), filepath.Dir(local)); err != nil || dir != local {
		t.Errorf("relative dir: %q, %v", dir, err)
	}

	_, err := modeldir.Resolve("llama-3.2-1b", "/nowhere")
	nf, ok := err.(*modeldir.NotFound)
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
	if modeldir.HFHubCache() != "/hf/hub" {
		t.Errorf("HF_HOME not honoured: %s", modeldir.HFHubCache())
	}
}
