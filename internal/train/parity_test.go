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
	"github.com/yai-dev/yai/internal/testenv"
	"github.com/yai-dev/yai/internal/testmodel"
	"github.com/yai-dev/yai/mlx"
)

// Tolerances against mlx-lm on float32 4-bit models. The two sides run the same ops in the
// same order, but compiled and uncompiled graphs fuse differently, so float32 rounding
// differs: measured, the losses of 50 steps agree to under 1e-6 relative on every family.
const (
	oneBatchTol = 1e-4 // loss and every gradient element of one batch, relative to max(1, |mlx|)
	lossTol     = 1e-4 // each step's loss, relative
	logitsTol   = 1e-4 // logits of an adapted model, relative to max(1, |mlx|)
	adapterTol  = 1e-3 // trained adapters, relative to max(1, |mlx|): Adam divides by small moments
)

// TestMatchesMLXLM trains each family of testmodel.Families, on a 4-bit model written by
// mlx-lm's own module, with yai and with mlx_lm.tuner.trainer from the same initial adapters
// (saved by yai, loaded by mlx-lm's load_adapters), and checks: the logits with those
// adapters; the loss and LoRA gradients of one batch; each loss of AdamW steps with a cosine
// schedule over the same batches; the trained adapters; and that mlx-lm's trained adapters,
// as mlx_lm.lora saves them, load in yai and give mlx-lm's logits.
func TestMatchesMLXLM(t *testing.T) {
	steps := testenv.Size(t, "steps", 20, 50)
	for i, f := range testmodel.Families {
		t.Run(f.Name, func(t *testing.T) { matchesMLXLM(t, f, i+1, steps) })
	}
}

func matchesMLXLM(t *testing.T, f testmodel.Family, seed, steps int) {
	modelDir := testmodel.MLXLMModel(t, f, seed, "--bits", "4", "--group-size", "32", "--dtype", "float32")
	matchesMLXLMOn(t, modelDir, f.Keys, steps)
}

// matchesMLXLMOn is TestMatchesMLXLM's check of the model in modelDir, written by mlx-lm, with
// adapters on keys in every block.
func matchesMLXLMOn(t *testing.T, modelDir string, keys []string, steps int) {
	t.Helper()
	m, err := model.Load(modelDir, model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	loraCfg := lora.Config{Keys: keys, NumLayers: -1, Rank: 4, Scale: 2, Seed: 1}
	optCfg := optim.DefaultConfig()
	optCfg.Schedule = &optim.Schedule{Name: "cosine_decay", Arguments: []float64{2e-3, float64(steps), 1e-4}}
	tr, err := NewTrainer(m, loraCfg, optCfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	// lora_b starts at zero, so nonzero random lora_b makes the first gradients exercise
	// both factors and the logits show the adapters; mlx-lm gets them through the saved file.
	randomizeB(t, tr)
	dir := t.TempDir()
	initDir, refDir := filepath.Join(dir, "init"), filepath.Join(dir, "mlxlm")
	if err := tr.SaveAdapters(initDir); err != nil {
		t.Fatal(err)
	}
	runPython(t, "testdata/reference.py", modelDir, initDir, refDir, fmt.Sprint(steps))
	ref, _, err := mlx.LoadSafetensors(filepath.Join(refDir, "reference.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, a := range ref {
			a.Free()
		}
	}()

	// yai's saved adapters, loaded by mlx-lm: the same logits.
	if d := forwardDiff(t, m, ref["tokens"], ref["init/logits"]); d > logitsTol {
		t.Errorf("logits with yai's adapters in mlx-lm differ from yai's by %g", d)
	} else {
		t.Logf("logits with yai's initial adapters: largest difference from mlx-lm %.2g", d)
	}

	// One batch: loss and gradients.
	loss, ntoks, grads, err := tr.Gradients(batchFrom(ref["one/tokens"], ref["one/lengths"]))
	if err != nil {
		t.Fatal(err)
	}
	if want := int(ref["one/ntoks"].Item()); ntoks != want {
		t.Errorf("tokens = %d, mlx-lm %d", ntoks, want)
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
	theirGrads := 0
	for name := range ref {
		if strings.HasPrefix(name, "one/grad/") {
			theirGrads++
		}
	}
	if len(grads) != theirGrads || len(grads) == 0 {
		t.Errorf("%d gradients, mlx-lm %d", len(grads), theirGrads)
	}

	// The loss curve.
	want := ref["losses"].Floats()
	if len(want) != steps {
		t.Fatalf("mlx-lm reported %d losses", len(want))
	}
	worst := 0.0
	for i := range steps {
		res, err := tr.Step(batchFrom(ref[fmt.Sprintf("step/%d/tokens", i)], ref[fmt.Sprintf("step/%d/lengths", i)]))
		if err != nil {
			t.Fatal(err)
		}
		d := math.Abs(res.Loss-float64(want[i])) / float64(want[i])
		worst = max(worst, d)
		if d > lossTol {
			t.Errorf("step %d: loss %.6f, mlx-lm %.6f", i+1, res.Loss, want[i])
		}
	}
	if want[steps-1] >= want[0] {
		t.Errorf("mlx-lm's loss did not fall (%v → %v): the case tests nothing", want[0], want[steps-1])
	}

	// The trained adapters, against those mlx-lm saved.
	theirs, _, err := mlx.LoadSafetensors(filepath.Join(refDir, lora.WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	worstAdapter := 0.0
	for i, name := range tr.Adapters().ParamNames() {
		d := maxDiff(tr.Adapters().Params()[i], theirs[name])
		worstAdapter = max(worstAdapter, d)
		if d > adapterTol {
			t.Errorf("trained %s differs from mlx-lm's by %g", name, d)
		}
	}
	for _, a := range theirs {
		a.Free()
	}

	// mlx-lm's trained adapters, loaded by yai: mlx-lm's logits.
	m2, err := model.Load(modelDir, model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Free()
	a, err := lora.Load(m2.Layers, refDir)
	if err != nil {
		t.Fatalf("mlx-lm's adapters: %v", err)
	}
	defer a.Free()
	dLoaded := forwardDiff(t, m2, ref["tokens"], ref["trained/logits"])
	if dLoaded > logitsTol {
		t.Errorf("logits with mlx-lm's trained adapters in yai differ from mlx-lm's by %g", dLoaded)
	}
	t.Logf("loss %.4f → %.4f over %d steps; largest relative difference from mlx-lm: loss %.2g, one batch's gradients %.2g, trained adapters %.2g, logits with mlx-lm's adapters %.2g",
		want[0], want[steps-1], steps, worst, worstGrad, worstAdapter, dLoaded)
}

// forwardDiff runs m on tokens and returns the largest difference of its logits from want
// (maxDiff).
func forwardDiff(t *testing.T, m *model.Model, tokens, want *mlx.Array) float64 {
	t.Helper()
	var d float64
	err := mlx.Do(func() error {
		s := mlx.NewScope()
		defer s.Close()
		d = maxDiff(mlx.AsType(m.Forward(tokens), mlx.Float32), want)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}
