package fuse

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yai-dev/yai/internal/data"
	"github.com/yai-dev/yai/internal/evaluate"
	"github.com/yai-dev/yai/internal/generate"
	"github.com/yai-dev/yai/internal/lora"
	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/optim"
	"github.com/yai-dev/yai/internal/testenv"
	"github.com/yai-dev/yai/internal/testmodel"
	"github.com/yai-dev/yai/internal/train"
	"github.com/yai-dev/yai/mlx"
)

// quickstartData is the tiny quickstart's data: short lines of text.
func quickstartData(t *testing.T) string {
	return filepath.Join(testenv.ModuleRoot(t), "recipes", "data", "quickstart")
}

// trainTiny trains rank-8 adapters (scale 2) on q_proj and v_proj of the last two blocks of
// the model in dir with Adam at learning rate lr for steps batches of 4 quickstart rows, and
// returns their directory.
func trainTiny(t *testing.T, dir string, lr float64, steps int) string {
	t.Helper()
	l, err := generate.Load(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Free()
	ds, err := data.LoadFile(filepath.Join(quickstartData(t), "train.jsonl"), l.Tokenizer, data.Options{})
	if err != nil {
		t.Fatal(err)
	}
	opt := optim.DefaultConfig()
	opt.Name, opt.LearningRate = "adam", lr
	tr, err := train.NewTrainer(l.Model, lora.Config{Rank: 8, Scale: 2, NumLayers: 2, Seed: 1,
		Keys: []string{"self_attn.q_proj", "self_attn.v_proj"}}, opt, train.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	it, err := data.NewBatches(ds, data.BatchConfig{BatchSize: 4, MaxSeqLength: 128, Loop: true})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	for range steps {
		b, _ := it.Next()
		tb := train.Batch{Tokens: b.Tokens, Rows: b.Size, Cols: b.Width, Offsets: make([]int, b.Size), Lengths: make([]int, b.Size)}
		for i := range b.Size {
			tb.Offsets[i], tb.Lengths[i] = int(b.Offsets[i]), int(b.Lengths[i])
		}
		if _, err := tr.Step(tb); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "adapters")
	if err := tr.SaveAdapters(out); err != nil {
		t.Fatal(err)
	}
	return out
}

func validData(t *testing.T) Data {
	return Data{File: filepath.Join(quickstartData(t), "valid.jsonl"), MaxSeqLength: 128}
}

// evalLoss is evaluate's loss of the model in dir (with adapters when given) on d, computed
// apart from the check.
func evalLoss(t *testing.T, dir, adapter string, d Data) float64 {
	t.Helper()
	l, err := generate.Load(dir, adapter)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Free()
	ds, err := data.LoadFile(d.File, l.Tokenizer, data.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := evaluate.Dataset(l.Model, ds, evaluate.Options{MaxSeqLength: d.MaxSeqLength, Batches: d.Batches})
	if err != nil {
		t.Fatal(err)
	}
	return res.Loss
}

// updateVersusStep is the largest |scale·(A·B)ᵀ| of the adapters over half the smallest
// quantization step (a group's scale) of the layer it adapts: below 1, no weight moves by
// half a step, so re-quantizing rounds it back to its old code unless it lay within the
// update of a rounding boundary.
func updateVersusStep(t *testing.T, dir, adapter string) float64 {
	t.Helper()
	l, err := generate.Load(dir, adapter)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Free()
	worst := 0.0
	mlx.Do(func() error {
		s := mlx.NewScope()
		defer s.Close()
		for _, ll := range l.Adapters.Layers {
			q := ll.Base.(*model.QuantizedLinear)
			delta := mlx.MulScalar(mlx.Matmul(ll.A, ll.B), ll.Scale)
			upd := float64(mlx.Max(mlx.Abs(delta), false).Item())
			step := float64(mlx.Min(mlx.Abs(q.Scales), false).Item())
			worst = math.Max(worst, upd/(step/2))
		}
		return nil
	})
	return worst
}

// Adapters trained with a small learning rate change each weight by less than half a 4-bit
// step: re-quantizing the fused layers rounds the update away and most of what the adapters
// learned is lost. yai fuse's check refuses that fuse, names the remedy and writes nothing;
// --dequantize passes; the percentages are those of losses computed apart by evaluate.
func TestFuseCheckRefusesWhenRequantizingErasesTheUpdate(t *testing.T) {
	dir := testmodel.Tiny(t, "tiny") // 4-bit, groups of 64
	adapter := trainTiny(t, dir, 1e-5, 20)
	d := validData(t)
	ratio := updateVersusStep(t, dir, adapter)
	t.Logf("largest update / half the smallest 4-bit step: %.3f", ratio)
	if ratio >= 1 {
		t.Fatalf("the update (%.3f half-steps) is not below the rounding: the test proves nothing", ratio)
	}

	parent := t.TempDir()
	out := filepath.Join(parent, "fused")
	_, s, err := FuseChecked(dir, adapter, out, Options{}, Check{Data: d})
	t.Logf("re-quantized: %v", s)
	var lost *LostError
	if !errors.As(err, &lost) {
		t.Fatalf("fuse of an erased update: %v, want a LostError", err)
	}
	for _, remedy := range []string{"--dequantize", "--bits 8", "--group-size 32", "--force", "Nothing was written"} {
		if !strings.Contains(err.Error(), remedy) {
			t.Errorf("the refusal does not name %q: %v", remedy, err)
		}
	}
	if left, _ := os.ReadDir(parent); len(left) != 0 {
		t.Errorf("a refused fuse left %v in %s", left, parent)
	}
	if k := s.Kept(); k > 0.5 {
		t.Errorf("re-quantized fuse kept %.1f%%: the update was not erased", 100*k)
	}

	// --force writes the same fuse; its three losses, measured apart, give the same share.
	if _, forced, err := FuseChecked(dir, adapter, out, Options{}, Check{Data: d, Force: true}); err != nil || forced != s {
		t.Fatalf("forced fuse: %v, %v; refused one measured %v", err, forced, s)
	}
	base, adapted, fused := evalLoss(t, dir, "", d), evalLoss(t, dir, adapter, d), evalLoss(t, out, "", d)
	if base != s.Base || adapted != s.Adapted || fused != s.Fused {
		t.Errorf("check measured %v; evaluate: base %v, adapted %v, fused %v", s, base, adapted, fused)
	}
	if kept := (base - fused) / (base - adapted); math.Abs(kept-s.Kept()) > 1e-12 {
		t.Errorf("kept %v, from evaluate's losses %v", s.Kept(), kept)
	}

	// In float the fused layers compute what the adapters compute.
	deq := filepath.Join(t.TempDir(), "float")
	_, s, err = FuseChecked(dir, adapter, deq, Options{Dequantize: true}, Check{Data: d})
	t.Logf("--dequantize: %v", s)
	if err != nil {
		t.Fatalf("float fuse refused: %v", err)
	}
	if s.Kept() < 0.99 {
		t.Errorf("float fuse kept %.2f%%", 100*s.Kept())
	}
	if _, err := os.Stat(filepath.Join(deq, "config.json")); err != nil {
		t.Errorf("the accepted fuse was not written: %v", err)
	}
}
