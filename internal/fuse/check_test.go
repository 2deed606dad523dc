package fuse

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yai-dev/yai/internal/data"
	"github.com/yai-dev/yai/internal/evaluate"
	"github.com/yai-dev/yai/internal/generate"
	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/testenv"
	"github.com/yai-dev/yai/internal/testmodel"
	"github.com/yai-dev/yai/internal/testtrain"
	"github.com/yai-dev/yai/mlx"
)

func validData(t *testing.T) Data {
	return Data{File: filepath.Join(testtrain.QuickstartData(t), "valid.jsonl"), MaxSeqLength: 128}
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

// mlxlmLoss is mlx-lm's evaluate (mlx_lm.lora --test) of the model in dir, with the adapters
// when given, on d.File, in batches of 4.
func mlxlmLoss(t *testing.T, dir, adapter string, d Data) float64 {
	t.Helper()
	data := t.TempDir()
	b, err := os.ReadFile(d.File)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "test.jsonl"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if adapter == "" {
		adapter = "-"
	}
	script := filepath.Join(testenv.ModuleRoot(t), "internal", "evaluate", "testdata", "mlxlm_evaluate.py")
	cmd := exec.Command(testenv.Python(t), script, dir, adapter, data, "4", fmt.Sprint(d.MaxSeqLength), "0")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("mlxlm_evaluate.py: %v\n%s", err, stderr.String())
	}
	var res struct{ Loss float64 }
	if err := json.Unmarshal(out, &res); err != nil {
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
	adapter := testtrain.TrainedAdapter(t, dir, 1e-5, 20)
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
	// mlx-lm's evaluate on the same three models gives the same losses and share.
	base, adapted, fused = mlxlmLoss(t, dir, "", d), mlxlmLoss(t, dir, adapter, d), mlxlmLoss(t, out, "", d)
	kept := (base - fused) / (base - adapted)
	t.Logf("mlx_lm: base %.6f, with adapters %.6f, fused %.6f: %.2f%% kept (yai: %.2f%%)", base, adapted, fused, 100*kept, 100*s.Kept())
	for _, c := range [][2]float64{{s.Base, base}, {s.Adapted, adapted}, {s.Fused, fused}} {
		if math.Abs(c[0]-c[1]) > 1e-5*c[1] {
			t.Errorf("check measured %v; mlx_lm: base %v, adapted %v, fused %v", s, base, adapted, fused)
			break
		}
	}
	if math.Abs(kept-s.Kept()) > 0.01 {
		t.Errorf("kept %.2f%%, from mlx_lm's losses %.2f%%", 100*s.Kept(), 100*kept)
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

	// Re-quantized with 8 bits, the update is many steps of the finer grid: it survives.
	_, s, err = FuseChecked(dir, adapter, filepath.Join(t.TempDir(), "8bit"), Options{Bits: 8}, Check{Data: d})
	t.Logf("--bits 8: %v", s)
	if err != nil {
		t.Errorf("8-bit fuse refused: %v", err)
	}
}
