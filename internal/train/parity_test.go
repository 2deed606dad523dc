package train

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/yai-dev/yai/internal/lora"
	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/optim"
	"github.com/yai-dev/yai/mlx"
)

// Tolerances against mlx-lm on a float32 model. The two sides run the same ops in the same
// order, but compiled and uncompiled graphs fuse differently, so float32 rounding differs:
// the first loss and gradients agree to ~1e-6; over 50 Adam steps the difference grows but
// stays well below the loss's own step-to-step movement.
const (
	oneBatchTol  = 1e-4 // loss and every gradient element, relative to max(1, |mlx|)
	lossCurveTol = 2e-3 // each of 50 losses, relative
	logitsTol    = 1e-4 // logits of the adapted model, relative to max(1, |mlx|)
)

// TestMatchesMLXLM checks, against mlx-lm from the same initial adapters: the loss and LoRA
// gradients of one batch, the loss curve of 50 AdamW steps with a cosine schedule over the
// same batches, and that the adapters yai saves load in mlx-lm and give yai's logits.
func TestMatchesMLXLM(t *testing.T) {
	modelDir, _ := makeModel(t, "float32", 6, 64, 0)
	matchesMLXLM(t, modelDir)
}

// matchesMLXLM is TestMatchesMLXLM's check on the float32 model in modelDir (at least 4
// blocks, a vocabulary of at least 512).
func matchesMLXLM(t *testing.T, modelDir string) {
	t.Helper()
	const steps = 50
	m, err := model.Load(modelDir, model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	loraCfg := lora.Config{Keys: []string{"self_attn.q_proj", "self_attn.v_proj", "mlp.down_proj"}, NumLayers: 4, Rank: 4, Scale: 2, Seed: 1}
	optCfg := optim.DefaultConfig()
	optCfg.Schedule = &optim.Schedule{Name: "cosine_decay", Arguments: []float64{2e-3, steps, 1e-4}}
	tr, err := NewTrainer(m, loraCfg, optCfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	// lora_b starts at zero, so nonzero random lora_b makes the first gradients exercise
	// both factors; mlx-lm gets the same values through the saved file.
	randomizeB(t, tr)
	dir := t.TempDir()
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
	for name, g := range grads {
		want, ok := ref["one/grad/"+name]
		if !ok {
			t.Errorf("mlx-lm has no gradient for %s", name)
			continue
		}
		if d := maxDiff(g, want); d > oneBatchTol {
			t.Errorf("gradient %s differs from mlx-lm by %g", name, d)
		}
		g.Free()
	}
	if len(grads) != 2*3*4 {
		t.Errorf("%d gradients, want 24", len(grads))
	}

	// Fifty steps: the loss curve.
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
		if d > lossCurveTol {
			t.Errorf("step %d: loss %.6f, mlx-lm %.6f", i+1, res.Loss, want[i])
		}
	}
	t.Logf("loss %0.4f → %0.4f over %d steps; largest relative difference from mlx-lm %.2g", want[0], want[steps-1], steps, worst)
	if want[steps-1] >= want[0] {
		t.Errorf("mlx-lm's loss did not fall (%v → %v): the case tests nothing", want[0], want[steps-1])
	}

	// The trained adapters, saved by yai, loaded by mlx-lm: same logits.
	adapterDir := filepath.Join(dir, "trained")
	if err := tr.SaveAdapters(adapterDir); err != nil {
		t.Fatal(err)
	}
	tokensFile := filepath.Join(dir, "tokens.safetensors")
	var ours []float32
	var oursShape []int
	err = mlx.Do(func() error {
		s := mlx.NewScope()
		defer s.Close()
		tokens := mlx.FromSlice([]int32{1, 5, 9, 200, 33, 7, 300, 411, 2, 64, 64, 8}, 2, 6)
		if err := mlx.SaveSafetensors(tokensFile, map[string]*mlx.Array{"tokens": tokens}, nil); err != nil {
			return err
		}
		logits := m.Forward(tokens)
		ours, oursShape = logits.Floats(), logits.Shape()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	logitsFile := filepath.Join(dir, "logits.safetensors")
	runPython(t, "testdata/logits.py", modelDir, adapterDir, tokensFile, logitsFile)
	theirs, _, err := mlx.LoadSafetensors(logitsFile)
	if err != nil {
		t.Fatal(err)
	}
	defer theirs["logits"].Free()
	if !slices.Equal(oursShape, theirs["logits"].Shape()) {
		t.Fatalf("logits shape %v, mlx-lm %v", oursShape, theirs["logits"].Shape())
	}
	if d := maxDiffValues(ours, theirs["logits"].Floats()); d > logitsTol {
		t.Errorf("logits with yai's adapters differ from mlx-lm's by %g", d)
	}
}
