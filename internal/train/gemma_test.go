package train

import (
	"encoding/json"
	"math"
	"math/rand"
	"path/filepath"
	"testing"

	"github.com/yai-dev/yai/internal/lora"
	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/optim"
	"github.com/yai-dev/yai/internal/testenv"
	"github.com/yai-dev/yai/internal/testmodel"
	"github.com/yai-dev/yai/mlx"
)

// referenceModelDir writes a random float32 model of config with mlx-lm's own module (the
// model package's mlxlm_reference.py) and returns its directory.
func referenceModelDir(t *testing.T, config map[string]any) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "model")
	js, err := json.Marshal(config)
	if err != nil {
		t.Fatal(err)
	}
	runPython(t, filepath.Join("..", "model", "testdata", "mlxlm_reference.py"), "write", dir, string(js), "4", "--dtype", "float32")
	return dir
}

// referenceModel loads a referenceModelDir model; the test's cleanup frees it.
func referenceModel(t *testing.T, config map[string]any) *model.Model {
	t.Helper()
	m, err := model.Load(referenceModelDir(t, config), model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Free)
	return m
}

// gemmaConfig is a small float32 Gemma config of model_type typ with its own fields.
func gemmaConfig(typ string, extra map[string]any) map[string]any {
	c := map[string]any{"model_type": typ, "hidden_size": 64, "num_hidden_layers": 3, "intermediate_size": 128,
		"num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 512, "rms_norm_eps": 1e-6,
		"query_pre_attn_scalar": 16}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

var (
	gemma2Capped  = gemmaConfig("gemma2", map[string]any{"attn_logit_softcapping": 3.5, "final_logit_softcapping": 2.5})
	gemma3Windows = gemmaConfig("gemma3_text", map[string]any{"sliding_window": 4, "sliding_window_pattern": 2})
)

// Training Gemma matches mlx_lm's trainer (loss and gradients of a batch, a 50-step loss
// curve, the saved adapters' logits in mlx-lm): Gemma 2 with small caps, and a multimodal
// Gemma 3 with sliding windows, whose adapters mlx-lm names under language_model.*.
func TestMatchesMLXLMGemma(t *testing.T) {
	text := gemmaConfig("gemma3_text", map[string]any{"num_hidden_layers": 6, "sliding_window": 4, "sliding_window_pattern": 3})
	for name, cfg := range map[string]map[string]any{
		"gemma2": gemmaConfig("gemma2", map[string]any{"num_hidden_layers": 6, "attn_logit_softcapping": 3.5, "final_logit_softcapping": 2.5}),
		"gemma3": {"model_type": "gemma3", "vocab_size": 512, "text_config": text},
	} {
		t.Run(name, func(t *testing.T) {
			matchesMLXLMOn(t, referenceModelDir(t, cfg), testmodel.AdapterKeys, testenv.Size(t, "steps", 20, 50))
		})
	}
}

// Packed rows give each example the loss and gradients it has alone with sliding windows
// (the window within each example) and with softcapped scores, checkpointed or not.
func TestPackedLossesMatchUnpackedGemma(t *testing.T) {
	for name, cfg := range map[string]map[string]any{"gemma2": gemma2Capped, "gemma3_text": gemma3Windows} {
		t.Run(name, func(t *testing.T) { packedMatchesUnpacked(t, referenceModel(t, cfg), true) })
	}
}

// The chunked loss computes the gradient through the head by hand; with Gemma 2's final
// logit cap it must also pass through cap·tanh(z/cap). Its loss and the adapters' gradients
// equal MLX autograd's over the full, capped logits (with caps small enough to bend the
// logits), and so do a Gemma 3 model's, whose sliding windows are shorter than the rows.
func TestChunkedLossGradientWithSoftcapAndWindows(t *testing.T) {
	for _, tc := range []struct {
		name   string
		config map[string]any
	}{{"gemma2", gemma2Capped}, {"gemma3_text", gemma3Windows}} {
		t.Run(tc.name, func(t *testing.T) {
			m := referenceModel(t, tc.config)
			tr, err := NewTrainer(m, lora.Config{Keys: []string{"self_attn.q_proj", "mlp.down_proj"}, NumLayers: 2, Rank: 4, Scale: 2, Seed: 2},
				optim.DefaultConfig(), Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			randomizeB(t, tr)
			gradTol := 1e-5
			if mlx.DefaultDevice().Type == mlx.GPU {
				gradTol = 2e-3 // TF32 products, as in TestChunkedLossMatchesFullLogits
			}
			rng := rand.New(rand.NewSource(5))
			b := randomBatch(rng, 3, 40)
			wantLoss, want := fullLogitsGradients(t, tr, b)
			defer mlx.Free(want...)
			for _, chunk := range []int{0, 16} {
				tr.SetLossChunk(chunk)
				loss, _, got, err := tr.Gradients(b)
				if err != nil {
					t.Fatal(err)
				}
				if d := math.Abs(loss-wantLoss) / math.Abs(wantLoss); d > 1e-5 {
					t.Errorf("chunk %d: loss %v, autograd over full logits %v (relative %g)", chunk, loss, wantLoss, d)
				}
				worst := 0.0
				for i, name := range tr.Adapters().ParamNames() {
					d := relativeToMax(got[name], want[i])
					worst = max(worst, d)
					if d > gradTol {
						t.Errorf("chunk %d: gradient of %s differs by %g of its largest element", chunk, name, d)
					}
				}
				t.Logf("chunk %d: loss %v (autograd %v), gradients within %.3g of their largest element", chunk, loss, wantLoss, worst)
				freeMap(got)
			}
		})
	}
}
