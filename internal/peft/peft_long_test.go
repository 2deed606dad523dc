package peft

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"

	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/testenv"
	"github.com/yai-dev/yai/internal/testmodel"
)

// torchTolerance bounds |yai − peft| on any logit. Both run the tiny float32 model in
// float32; they differ only in the order of the sums (measured below 1e-5), while the adapter
// moves logits by more than 0.1.
const torchTolerance = 1e-4

// floatTiny writes the tiny model unquantized: the float base peft loads, and yai too.
func floatTiny(t *testing.T) string {
	spec := model.TinyPresets["tiny"]
	spec.Quant = nil
	dir := filepath.Join(t.TempDir(), "tiny-float")
	if err := model.WriteTiny(dir, spec); err != nil {
		t.Fatal(err)
	}
	return dir
}

func longOnly(t *testing.T) {
	if !testenv.Long() {
		t.Skipf("long tier only (%s=1, go tool task test:long): needs torch and peft from `go tool task setup:peft`", testenv.LongEnv)
	}
}

func torchLogits(t *testing.T, cmd, modelDir, adapterDir string) [][]float32 {
	t.Helper()
	ps, _ := json.Marshal(prompts)
	var out [][]float32
	if err := json.Unmarshal(python(t, testenv.PeftPython(t), script(t, "peft_torch.py"), cmd, modelDir, adapterDir, string(ps)), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// peft loads yai's export onto the float base in transformers and computes yai's logits on
// three prompts.
func TestPeftLoadsExport(t *testing.T) {
	longOnly(t)
	dir := floatTiny(t)
	adapter := testmodel.RandomAdapter(t, dir, 11, 0.3)
	out := filepath.Join(t.TempDir(), "peft")
	if _, err := Export(dir, adapter, out, ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	want := logits(t, dir, adapter)
	got := torchLogits(t, "logits", dir, out)
	effect := maxDiff(want, logits(t, dir, ""))
	d := maxDiff(want, got)
	t.Logf("max |peft − yai| = %.3g over %d prompts; the adapter moves logits by %.3g", d, len(prompts), effect)
	if d > torchTolerance {
		t.Errorf("peft's logits differ from yai's by %g > %g", d, torchTolerance)
	}
	if effect < 1000*torchTolerance {
		t.Errorf("the adapter moves logits by only %g: the test proves nothing", effect)
	}
}

// An adapter made and saved by peft itself (every block, q/k/o/up projections) imports into
// yai with peft's logits.
func TestImportPeftWritten(t *testing.T) {
	longOnly(t)
	dir := floatTiny(t)
	src := filepath.Join(t.TempDir(), "peft")
	want := torchLogits(t, "write", dir, src)
	out := filepath.Join(t.TempDir(), "imported")
	res, err := Import(dir, src, out)
	if err != nil {
		t.Fatal(err)
	}
	got := logits(t, dir, out)
	effect := maxDiff(got, logits(t, dir, ""))
	d := maxDiff(want, got)
	t.Logf("imported %+v; max |yai − peft| = %.3g; the adapter moves logits by %.3g", res.Config, d, effect)
	if d > torchTolerance {
		t.Errorf("yai's logits with the imported adapter differ from peft's by %g > %g", d, torchTolerance)
	}
	if effect < 1000*torchTolerance {
		t.Errorf("the adapter moves logits by only %g: the test proves nothing", effect)
	}
}

// peft loads yai's export of a tiny float model of every family PEFT export supports, with
// adapters on the family's own projections, and computes yai's logits.
func TestPeftLoadsExportEveryFamily(t *testing.T) {
	longOnly(t)
	for _, f := range testmodel.Families {
		if !slices.Contains(Supported(), f.Name) {
			continue
		}
		t.Run(f.Name, func(t *testing.T) {
			spec := model.TinyPresets[f.Preset]
			spec.Quant, spec.LayerQuant = nil, nil
			dir := filepath.Join(t.TempDir(), f.Name)
			if err := model.WriteTiny(dir, spec); err != nil {
				t.Fatal(err)
			}
			adapter := f.Adapter(t, dir, 11, 0.3)
			out := filepath.Join(t.TempDir(), "peft")
			if _, err := Export(dir, adapter, out, ExportOptions{}); err != nil {
				t.Fatal(err)
			}
			want := logits(t, dir, adapter)
			got := torchLogits(t, "logits", dir, out)
			effect := maxDiff(want, logits(t, dir, ""))
			d := maxDiff(want, got)
			t.Logf("%s: max |peft − yai| = %.3g; the adapter moves logits by %.3g", f.Name, d, effect)
			if d > torchTolerance {
				t.Errorf("peft's logits differ from yai's by %g > %g", d, torchTolerance)
			}
			if effect < 1000*torchTolerance {
				t.Errorf("the adapter moves logits by only %g: the test proves nothing", effect)
			}
		})
	}
}

// An adapter made and saved by peft on a tiny float model of every family of the table
// imports into yai with peft's logits.
func TestImportPeftWrittenEveryFamily(t *testing.T) {
	longOnly(t)
	for _, f := range testmodel.Families {
		if !slices.Contains(Supported(), f.Name) {
			continue
		}
		t.Run(f.Name, func(t *testing.T) {
			spec := model.TinyPresets[f.Preset]
			spec.Quant, spec.LayerQuant = nil, nil
			dir := filepath.Join(t.TempDir(), f.Name)
			if err := model.WriteTiny(dir, spec); err != nil {
				t.Fatal(err)
			}
			src := filepath.Join(t.TempDir(), "peft")
			want := torchLogits(t, "write", dir, src)
			out := filepath.Join(t.TempDir(), "imported")
			if _, err := Import(dir, src, out); err != nil {
				t.Fatal(err)
			}
			got := logits(t, dir, out)
			d := maxDiff(want, got)
			t.Logf("%s: max |yai − peft| = %.3g; the adapter moves logits by %.3g", f.Name, d, maxDiff(got, logits(t, dir, "")))
			if d > torchTolerance {
				t.Errorf("yai's logits with the imported adapter differ from peft's by %g > %g", d, torchTolerance)
			}
		})
	}
}
