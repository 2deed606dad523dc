package train

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yai-dev/yai/internal/lora"
	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/optim"
	"github.com/yai-dev/yai/mlx"
)

// A 4-bit Phi-3 (written by mlx-lm's phi3.py: partial rotary dimensions, longrope scaling in
// force past 8 positions) trained with adapters on its fused projections: the loss and LoRA
// gradients of one batch, and the losses of 50 AdamW steps, are mlx-lm's.
func TestPhi3MatchesMLXLM(t *testing.T) {
	const steps = 50
	dir := t.TempDir()
	modelDir := filepath.Join(dir, "model")
	factors := strings.Repeat("1.5, ", 5) + "3.0" // 16 × 0.75 / 2 rotated frequencies
	config := `{"model_type": "phi3", "hidden_size": 64, "num_hidden_layers": 4, "intermediate_size": 160,
		"num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 512, "rms_norm_eps": 1e-5,
		"max_position_embeddings": 1024, "original_max_position_embeddings": 8, "partial_rotary_factor": 0.75,
		"rope_scaling": {"type": "longrope", "short_factor": [` + factors + `], "long_factor": [` + factors + `]}}`
	runPython(t, filepath.Join("..", "model", "testdata", "mlxlm_reference.py"), "write", modelDir, config, "6",
		"--bits", "4", "--group-size", "32", "--dtype", "float32")
	m, err := model.Load(modelDir, model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	keys := []string{"self_attn.qkv_proj", "mlp.gate_up_proj", "mlp.down_proj"}
	optCfg := optim.DefaultConfig()
	optCfg.Schedule = &optim.Schedule{Name: "cosine_decay", Arguments: []float64{2e-3, steps, 1e-4}}
	tr, err := NewTrainer(m, lora.Config{Keys: keys, NumLayers: 4, Rank: 4, Scale: 2, Seed: 1}, optCfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	randomizeB(t, tr)
	initDir := filepath.Join(dir, "init")
	if err := tr.SaveAdapters(initDir); err != nil {
		t.Fatal(err)
	}
	refFile := filepath.Join(dir, "ref.safetensors")
	runPython(t, "testdata/reference.py", modelDir, initDir, refFile, fmt.Sprint(steps))
	ref, _, err := mlx.LoadSafetensors(refFile)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, a := range ref {
			a.Free()
		}
	}()

	loss, _, grads, err := tr.Gradients(batchFrom(ref["one/tokens"], ref["one/lengths"]))
	if err != nil {
		t.Fatal(err)
	}
	if want := ref["one/loss"].Item(); math.Abs(loss-want) > oneBatchTol*math.Max(1, want) {
		t.Errorf("loss = %v, mlx-lm %v", loss, want)
	}
	worstGrad := 0.0
	for name, g := range grads {
		want, ok := ref["one/grad/"+name]
		if !ok {
			t.Errorf("mlx-lm has no gradient for %s", name)
			continue
		}
		d := maxDiff(g, want)
		worstGrad = max(worstGrad, d)
		if d > oneBatchTol {
			t.Errorf("gradient %s differs from mlx-lm by %g", name, d)
		}
		g.Free()
	}
	if len(grads) != 2*len(keys)*4 {
		t.Errorf("%d gradients, want %d", len(grads), 2*len(keys)*4)
	}

	want := ref["losses"].Floats()
	worst := 0.0
	for i := range min(steps, len(want)) {
		res, err := tr.Step(batchFrom(ref[fmt.Sprintf("step/%d/tokens", i)], ref[fmt.Sprintf("step/%d/lengths", i)]))
		if err != nil {
			t.Fatal(err)
		}
		d := math.Abs(res.Loss-float64(want[i])) / float64(want[i])
		worst = max(worst, d)
		if d > lossCurveTol {
			t.Errorf("step %d: loss %.6f, mlx-lm %.6f", i+1, res.Loss, want[i])
		}
	}
	if len(want) != steps {
		t.Fatalf("mlx-lm reported %d losses", len(want))
	}
	t.Logf("gradients within %.2g of mlx-lm's; loss %.4f → %.4f over %d steps, largest relative difference %.2g",
		worstGrad, want[0], want[steps-1], steps, worst)
	if want[steps-1] >= want[0] {
		t.Errorf("mlx-lm's loss did not fall (%v → %v): the case tests nothing", want[0], want[steps-1])
	}
}
