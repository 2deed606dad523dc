package fuse

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/yai-dev/yai/internal/generate"
	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/testenv"
	"github.com/yai-dev/yai/internal/testmodel"
	"github.com/yai-dev/yai/mlx"
)

func python(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(testenv.Python(t), args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// mlxlmTokens is mlx_lm's greedy generation from the model in dir.
func mlxlmTokens(t *testing.T, dir string, prompt []int32, maxTokens int) []int32 {
	t.Helper()
	ids := make([]string, len(prompt))
	for i, id := range prompt {
		ids[i] = fmt.Sprint(id)
	}
	script := filepath.Join(testenv.ModuleRoot(t), "internal", "generate", "testdata", "mlxlm_generate.py")
	var ref struct{ Tokens []int32 }
	if err := json.Unmarshal(python(t, script, "generate", dir, "-", strings.Join(ids, ","), fmt.Sprint(maxTokens)), &ref); err != nil {
		t.Fatal(err)
	}
	return ref.Tokens
}

func yaiTokens(t *testing.T, dir, adapter string, prompt []int32, maxTokens int) []int32 {
	t.Helper()
	l, err := generate.Load(dir, adapter)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Free()
	var out []int32
	_, err = generate.Generate(l.Model, prompt, generate.Options{MaxTokens: maxTokens, Stop: l.Tokenizer.EOS()},
		func(tok int32) error { out = append(out, tok); return nil })
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func loadTensors(t *testing.T, dir string) map[string]*mlx.Array {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.safetensors"))
	all := map[string]*mlx.Array{}
	for _, f := range files {
		ts, _, err := mlx.LoadSafetensors(f)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range ts {
			all[k] = v
		}
	}
	t.Cleanup(func() {
		for _, a := range all {
			a.Free()
		}
	})
	return all
}

func sameArray(t *testing.T, a, b *mlx.Array) bool {
	if !slices.Equal(a.Shape(), b.Shape()) || a.Dtype() != b.Dtype() {
		return false
	}
	var eq bool
	mlx.Do(func() error {
		s := mlx.NewScope()
		defer s.Close()
		eq = mlx.All(mlx.Equal(a, b), false).Item() == 1
		return nil
	})
	return eq
}

var prompt = []int32{999, 12, 400, 87, 33, 910, 5, 77, 301, 302, 303, 4, 66}

func fixture(t *testing.T) (modelDir, adapter string) {
	dir := testmodel.Tiny(t, "tiny")
	return dir, testmodel.RandomAdapter(t, dir, 11, 0.3)
}

// The fused layers are bit for bit what mlx_lm.fuse writes, re-quantized or in float, and
// every other tensor is the base model's: on the quickstart's model and each family of
// testmodel.Families with adapters on its keys (a float fuse of every family in the long
// tier).
func TestFusedTensorsMatchMLXLMFuse(t *testing.T) {
	rows := append([]testmodel.Family{{Name: "quickstart", Preset: "tiny", Keys: testmodel.AdapterKeys}}, testmodel.Families...)
	for _, f := range rows {
		dir := testmodel.Tiny(t, f.Preset)
		adapter := f.Adapter(t, dir, 11, 0.3)
		for _, deq := range []bool{false, true} {
			if deq && f.Name != "quickstart" && !testenv.Long() {
				continue
			}
			t.Run(fmt.Sprintf("%s/dequantize=%v", f.Name, deq), func(t *testing.T) { fusedMatchesMLXLM(t, dir, adapter, deq) })
		}
	}
}

// checkFusedTensors runs fusedMatchesMLXLM re-quantized and in float, for models written
// outside the family table.
func checkFusedTensors(t *testing.T, dir, adapter string) {
	t.Helper()
	for _, deq := range []bool{false, true} {
		t.Run(fmt.Sprintf("dequantize=%v", deq), func(t *testing.T) { fusedMatchesMLXLM(t, dir, adapter, deq) })
	}
}

// fusedMatchesMLXLM fuses adapter into the model in dir and compares the fused layers, and
// in a re-quantized fuse every tensor, with mlx_lm.fuse's.
func fusedMatchesMLXLM(t *testing.T, dir, adapter string, deq bool) {
	out := filepath.Join(t.TempDir(), "fused")
	res, err := Fuse(dir, adapter, out, Options{Dequantize: deq})
	if err != nil {
		t.Fatal(err)
	}
	adapted := 0
	for name := range loadTensors(t, adapter) {
		if strings.HasSuffix(name, ".lora_a") {
			adapted++
		}
	}
	if len(res.Layers) != adapted || adapted == 0 {
		t.Fatalf("fused %v, the adapter has %d layers", res.Layers, adapted)
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
			if _, ok := got[layer+".scales"]; ok {
				t.Errorf("%s kept its scales in a float fuse", layer)
			}
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
	for n, b := range base {
		layer := n[:strings.LastIndex(n, ".")]
		if !slices.Contains(res.Layers, layer) && !sameArray(t, got[n], b) {
			t.Errorf("%s: not adapted, yet changed", n)
		}
	}
	if !deq {
		// A re-quantized fuse is the whole of mlx_lm.fuse's output (its float fuse
		// dequantizes every layer, yai's only the fused ones).
		if len(got) != len(base) || len(got) != len(want) {
			t.Errorf("%d tensors written, the base has %d, mlx_lm.fuse wrote %d", len(got), len(base), len(want))
		}
		for n, w := range want {
			if g, ok := got[n]; !ok || !sameArray(t, g, w) {
				t.Errorf("%s differs from mlx_lm.fuse's (present %v)", n, ok)
			}
		}
	}
	for _, f := range []string{"config.json", "model.safetensors.index.json", "tokenizer.json", "tokenizer_config.json"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("fused model lacks %s", f)
		}
	}
}

// A float fuse generates exactly the adapter's greedy tokens in yai and in mlx_lm.
func TestFloatFuseGeneratesTheAdaptersTokens(t *testing.T) {
	dir, adapter := fixture(t)
	out := filepath.Join(t.TempDir(), "fused")
	if _, err := Fuse(dir, adapter, out, Options{Dequantize: true}); err != nil {
		t.Fatal(err)
	}
	const n = 32
	want := yaiTokens(t, dir, adapter, prompt, n)
	if base := yaiTokens(t, dir, "", prompt, n); slices.Equal(base, want) {
		t.Fatalf("the adapter changes nothing: the test proves nothing")
	}
	if got := yaiTokens(t, out, "", prompt, n); !slices.Equal(got, want) {
		t.Errorf("fused model in yai: %v\nadapter: %v", got, want)
	}
	if got := mlxlmTokens(t, out, prompt, n); !slices.Equal(got, want) {
		t.Errorf("fused model in mlx_lm: %v\nadapter: %v", got, want)
	}
}

// Re-quantizing W + ΔW to 4 bits moves each weight by up to half a quantization step,
// (max − min)/15/2 of its group of 64, so the fused model's logits differ from the
// adapter's. Two bounds, both relative: to the largest logit (the tiny random model's
// logits span about ±1; measured 9.8%), and to the adapter's own effect on the logits,
// max |base − adapter| (measured 15%): the fuse must keep most of what the adapter does.
const (
	requantizedTolerance = 0.15
	requantizedOfEffect  = 0.25
)

// A re-quantized fuse loads in yai and mlx_lm with the same logits in both, within
// requantizedTolerance of the adapter's logits.
func TestRequantizedFuseLogits(t *testing.T) {
	dir := testmodel.Tiny(t, "tiny")
	adapter := testmodel.RandomAdapter(t, dir, 11, 0.05)
	out := filepath.Join(t.TempDir(), "fused")
	if _, err := Fuse(dir, adapter, out, Options{}); err != nil {
		t.Fatal(err)
	}
	want := logits(t, dir, adapter)
	got := logits(t, out, "")
	diff, scale := 0.0, 0.0
	for i := range want {
		diff = math.Max(diff, math.Abs(float64(got[i]-want[i])))
		scale = math.Max(scale, math.Abs(float64(want[i])))
	}
	base := logits(t, dir, "")
	effect := 0.0
	for i := range want {
		effect = math.Max(effect, math.Abs(float64(base[i]-want[i])))
	}
	t.Logf("max |fused − adapter| = %.4g, largest logit %.4g: %.2f%%; the adapter moves logits by %.4g", diff, scale, 100*diff/scale, effect)
	if diff > requantizedTolerance*scale {
		t.Errorf("re-quantized fuse moves logits by %.4g > %.2f × %.4g", diff, requantizedTolerance, scale)
	}
	if diff > requantizedOfEffect*effect {
		t.Errorf("re-quantized fuse moves logits by %.4g > %.2f × the adapter's effect %.4g", diff, requantizedOfEffect, effect)
	}
	if got, want := mlxlmTokens(t, out, prompt, 24), yaiTokens(t, out, "", prompt, 24); !slices.Equal(got, want) {
		t.Errorf("mlx_lm on the re-quantized fuse: %v, yai: %v", got, want)
	}
}

// logits runs the model (with adapters) over the prompt.
func logits(t *testing.T, dir, adapter string) []float32 {
	l, err := generate.Load(dir, adapter)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Free()
	var out []float32
	mlx.Do(func() error {
		s := mlx.NewScope()
		defer s.Close()
		out = l.Model.Forward(mlx.FromSlice(prompt, 1, len(prompt))).Floats()
		return nil
	})
	return out
}

func TestFuseNeverOverwrites(t *testing.T) {
	dir, adapter := fixture(t)
	out := t.TempDir() // exists, empty
	if _, err := Fuse(dir, adapter, out, Options{}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("fusing into an existing directory: %v", err)
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Errorf("the existing directory was written to: %v", entries)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".*tmp-*")); len(leftovers) != 0 {
		t.Errorf("temporary directories left behind: %v", leftovers)
	}
	// A bad adapter fails before anything is written.
	bad := filepath.Join(t.TempDir(), "fused")
	if _, err := Fuse(dir, t.TempDir(), bad, Options{}); err == nil {
		t.Errorf("fusing without adapter files succeeded")
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Errorf("a failed fuse left %s", bad)
	}
}

// A fuse of a sharded model into small shards writes several files and an index that yai
// and mlx_lm both follow, giving the same tokens as a single-file fuse.
func TestShardedFuse(t *testing.T) {
	spec := model.TinyPresets["tiny"]
	spec.ShardBytes = 150000
	dir := filepath.Join(t.TempDir(), "sharded")
	if err := model.WriteTiny(dir, spec); err != nil {
		t.Fatal(err)
	}
	adapter := testmodel.RandomAdapter(t, dir, 11, 0.3)
	one, many := filepath.Join(t.TempDir(), "one"), filepath.Join(t.TempDir(), "many")
	if _, err := Fuse(dir, adapter, one, Options{}); err != nil {
		t.Fatal(err)
	}
	res, err := Fuse(dir, adapter, many, Options{ShardBytes: 200000})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Files) < 2 || res.Files[0] != fmt.Sprintf("model-00001-of-%05d.safetensors", len(res.Files)) {
		t.Fatalf("files %v", res.Files)
	}
	want := yaiTokens(t, one, "", prompt, 16)
	if got := yaiTokens(t, many, "", prompt, 16); !slices.Equal(got, want) {
		t.Errorf("sharded fuse in yai: %v, single file: %v", got, want)
	}
	if got := mlxlmTokens(t, many, prompt, 16); !slices.Equal(got, want) {
		t.Errorf("sharded fuse in mlx_lm: %v, single file in yai: %v", got, want)
	}
}

// Fusing gives back everything it allocated: live arrays and MLX active memory are the same
// before and after, and fusing twice peaks no higher than fusing once.
func TestFuseFreesWhatItMade(t *testing.T) {
	dir, adapter := fixture(t)
	var peaks []uint64
	var live []int64
	var active []uint64
	for i := range 3 {
		mlx.Do(func() error { mlx.ClearCache(); mlx.ResetPeakMemory(); return nil })
		live = append(live, mlx.LiveArrays())
		mlx.Do(func() error { active = append(active, mlx.Memory().Active); return nil })
		if _, err := Fuse(dir, adapter, filepath.Join(t.TempDir(), fmt.Sprint(i)), Options{}); err != nil {
			t.Fatal(err)
		}
		mlx.Do(func() error { peaks = append(peaks, mlx.Memory().Peak); return nil })
	}
	live = append(live, mlx.LiveArrays())
	mlx.Do(func() error { active = append(active, mlx.Memory().Active); return nil })
	t.Logf("live arrays %v, active %v, peaks %v", live, active, peaks)
	for i := range live {
		if live[i] != live[0] || active[i] != active[0] {
			t.Errorf("fuse %d: %d live arrays and %d bytes active, %d and %d before the first", i, live[i], active[i], live[0], active[0])
		}
	}
	// A repeated fuse must not peak higher than an earlier one by more than a few scalars,
	// whose order of evaluation varies between runs; a leaked weight is larger. It may peak
	// lower: now and then MLX frees an intermediate before the next allocation rather than
	// after, so the highest earlier peak is the bound, not the last one.
	if highest := max(peaks[0], peaks[1]); peaks[2] > highest+4096 {
		t.Errorf("the third fuse peaked at %d bytes, the earlier ones at %v", peaks[2], peaks[:2])
	}
}
