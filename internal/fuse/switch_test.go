package fuse

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yai-dev/yai/internal/lora"
	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/testenv"
	"github.com/yai-dev/yai/internal/testmodel"
	"github.com/yai-dev/yai/mlx"
)

// mixtralWithAdapters writes a 4-bit Mixtral with mlx-lm's own module (and the tiny
// tokenizer, which mlx_lm.fuse loads), and adapters with random lora_a and lora_b on the
// experts' stacks, the router and the attention of both blocks.
func mixtralWithAdapters(t *testing.T) (modelDir, adapter string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mixtral")
	cfg, _ := json.Marshal(map[string]any{"model_type": "mixtral", "hidden_size": 64, "num_hidden_layers": 2, "intermediate_size": 128,
		"num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": model.TinyVocabSize, "rms_norm_eps": 1e-5,
		"num_local_experts": 4, "num_experts_per_tok": 2})
	script := filepath.Join(testenv.ModuleRoot(t), "internal", "model", "testdata", "mlxlm_reference.py")
	python(t, script, "write", dir, string(cfg), "5", "--bits", "4", "--group-size", "32", "--dtype", "bfloat16")
	tiny := testmodel.Tiny(t, "micro")
	for _, f := range []string{"tokenizer.json", "tokenizer_config.json"} {
		data, err := os.ReadFile(filepath.Join(tiny, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m, err := model.Load(dir, model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	a, err := lora.Attach(m.Layers, lora.Config{Rank: 4, Scale: 2, NumLayers: 2, Seed: 3,
		Keys: []string{"q_proj", "block_sparse_moe.gate", "gate_proj", "up_proj", "down_proj"}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Detach()
	err = mlx.Do(func() error {
		s := mlx.NewScope()
		defer s.Close()
		ps := a.Params()
		keys := mlx.RandomSplit(mlx.RandomKey(9), len(ps))
		fresh := make([]*mlx.Array, len(ps))
		for i, p := range ps {
			k := mlx.Squeeze(mlx.SliceAxis(keys, 0, i, i+1), 0)
			fresh[i] = s.Keep(mlx.Normal(k, p.Shape(), mlx.Float32, 0, 0.1))
			mlx.Detach(fresh[i])
		}
		mlx.Eval(fresh...)
		a.Replace(fresh)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	adapter = filepath.Join(t.TempDir(), "adapters")
	if err := a.Save(adapter); err != nil {
		t.Fatal(err)
	}
	return dir, adapter
}

// Experts' adapters fuse into their stacks bit for bit as mlx_lm.fuse fuses
// LoRASwitchLinear, re-quantized or in float.
func TestFusedExpertsMatchMLXLMFuse(t *testing.T) {
	dir, adapter := mixtralWithAdapters(t)
	for _, deq := range []bool{false, true} {
		t.Run(fmt.Sprintf("dequantize=%v", deq), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "fused")
			res, err := Fuse(dir, adapter, out, Options{Dequantize: deq})
			if err != nil {
				t.Fatal(err)
			}
			experts := 0
			for _, l := range res.Layers {
				if strings.Contains(l, "switch_mlp") {
					experts++
				}
			}
			if experts != 6 || len(res.Layers) != 10 {
				t.Fatalf("fused %v: want q_proj, the router and 3 expert stacks in each of 2 blocks", res.Layers)
			}
			ref := filepath.Join(t.TempDir(), "mlxlm")
			args := []string{"-m", "mlx_lm", "fuse", "--model", dir, "--adapter-path", adapter, "--save-path", ref}
			if deq {
				args = append(args, "--dequantize")
			}
			python(t, args...)
			got, want, base := loadTensors(t, out), loadTensors(t, ref), loadTensors(t, dir)
			for _, layer := range res.Layers {
				leaves := []string{"weight", "scales", "biases"}
				if deq {
					leaves = []string{"weight"}
				}
				for _, leaf := range leaves {
					n := layer + "." + leaf
					if !sameArray(t, got[n], want[n]) {
						t.Errorf("%s differs from mlx_lm.fuse's", n)
					}
					if !deq && sameArray(t, got[n], base[n]) {
						t.Errorf("%s is unchanged by the fuse", n)
					}
				}
			}
			// The fused model loads and runs.
			m, err := model.Load(out, model.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			m.Free()
		})
	}
}
