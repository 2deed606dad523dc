package train

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"path/filepath"
	"testing"

	"github.com/yai-dev/yai/internal/lora"
	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/optim"
	"github.com/yai-dev/yai/internal/testenv"
)

// The compiled training step trains adapters on a mixture's experts (and its router): a
// 4-bit Qwen3-MoE written by mlx-lm, with a dense block among sparse ones, learns a fixed
// batch, with and without gradient checkpointing.
func TestMoEAdaptersTrain(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "qwen3moe")
	cfg, _ := json.Marshal(map[string]any{"model_type": "qwen3_moe", "hidden_size": 64, "num_hidden_layers": 3, "intermediate_size": 128,
		"num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 256, "rms_norm_eps": 1e-5,
		"rope_theta": 10000.0, "tie_word_embeddings": false, "max_position_embeddings": 512, "num_experts": 4,
		"num_experts_per_tok": 2, "moe_intermediate_size": 64, "decoder_sparse_step": 1, "mlp_only_layers": []int{1},
		"norm_topk_prob": true})
	runPython(t, filepath.Join(testenv.ModuleRoot(t), "internal", "model", "testdata", "mlxlm_reference.py"),
		"write", dir, string(cfg), "4", "--bits", "4", "--group-size", "32", "--dtype", "float32")
	r := rand.New(rand.NewSource(1))
	b := Batch{Rows: 2, Cols: 48, Offsets: []int{1, 1}, Lengths: []int{47, 47}}
	for range b.Rows * b.Cols {
		b.Tokens = append(b.Tokens, int32(r.Intn(256)))
	}
	for _, ckpt := range []bool{false, true} {
		t.Run(fmt.Sprintf("checkpoint=%v", ckpt), func(t *testing.T) {
			m, err := model.Load(dir, model.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Free()
			tr, err := NewTrainer(m, lora.Config{Keys: []string{"mlp.gate", "switch_mlp.gate_proj", "switch_mlp.up_proj", "switch_mlp.down_proj"},
				NumLayers: 2, Rank: 4, Scale: 4}, optim.Config{Name: "adam", LearningRate: 1e-2, Betas: [2]float64{0.9, 0.999}, Eps: 1e-8},
				Options{GradCheckpoint: ckpt})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			// Block 1 is dense: only block 2's router and experts are adapted.
			if n := len(tr.Adapters().Names); n != 4 {
				t.Fatalf("adapted %v", tr.Adapters().Names)
			}
			var losses []float64
			for range 8 {
				res, err := tr.Step(b)
				if err != nil {
					t.Fatal(err)
				}
				losses = append(losses, res.Loss)
			}
			t.Logf("losses %.4f", losses)
			if losses[len(losses)-1] > losses[0]-0.05 {
				t.Errorf("loss did not fall: %v", losses)
			}
		})
	}
}
