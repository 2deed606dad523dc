package peft

import (
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/yai-dev/yai/internal/generate"
	"github.com/yai-dev/yai/internal/lora"
	"github.com/yai-dev/yai/internal/testenv"
	"github.com/yai-dev/yai/internal/testmodel"
	"github.com/yai-dev/yai/mlx"
	"github.com/yai-dev/yai/modeldir"
)

func python(t *testing.T, py string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(py, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", py, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

func script(t *testing.T, name string) string {
	return filepath.Join(testenv.ModuleRoot(t), "internal", "peft", "testdata", name)
}

// prompts are three token sequences of the tiny tokenizer's vocabulary.
var prompts = [][]int32{
	{999, 12, 400, 87, 33, 910, 5, 77, 301, 302, 303, 4, 66},
	{1, 2, 3, 4, 5, 6, 7, 8},
	{450, 451, 17, 900, 23, 23, 23, 800, 801, 5, 600},
}

// logits runs the model in dir, with the adapters in adapter when given, over each prompt.
func logits(t *testing.T, dir, adapter string) [][]float32 {
	t.Helper()
	l, err := generate.Load(dir, adapter)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Free()
	var out [][]float32
	mlx.Do(func() error {
		for _, p := range prompts {
			s := mlx.NewScope()
			out = append(out, l.Model.Forward(mlx.FromSlice(p, 1, len(p))).Floats())
			s.Close()
		}
		return nil
	})
	return out
}

func maxDiff(a, b [][]float32) float64 {
	d := 0.0
	for i := range a {
		for j := range a[i] {
			d = math.Max(d, math.Abs(float64(a[i][j]-b[i][j])))
		}
	}
	return d
}

type format struct {
	Config  map[string]any
	Tensors map[string]struct {
		Shape []int
		Dtype string
	}
	Diffs map[string]*float64
}

// The exported files are what peft reads, checked with safetensors and numpy: peft's tensor
// names, lora_A (r, in) and lora_B (out, r) equal to the transposes of mlx's lora_a (in, r)
// and lora_b (r, out), lora_alpha = scale · r, the target modules and blocks, the base model.
func TestExportFormat(t *testing.T) {
	dir := testmodel.Tiny(t, "tiny")
	adapter := testmodel.RandomAdapter(t, dir, 11, 0.3) // rank 4, scale 4, q/v/down of blocks 2 and 3
	out := filepath.Join(t.TempDir(), "peft")
	res, err := Export(dir, adapter, out, ExportOptions{BaseModel: "org/tiny-float"})
	if err != nil {
		t.Fatal(err)
	}
	var f format
	if err := json.Unmarshal(python(t, testenv.Python(t), script(t, "peft_format.py"), out, adapter), &f); err != nil {
		t.Fatal(err)
	}
	want := map[string][]int{}
	for _, b := range []string{"2", "3"} {
		p := "base_model.model.model.layers." + b + "."
		want[p+"self_attn.q_proj.lora_A.weight"] = []int{4, 128}
		want[p+"self_attn.q_proj.lora_B.weight"] = []int{128, 4}
		want[p+"self_attn.v_proj.lora_A.weight"] = []int{4, 128}
		want[p+"self_attn.v_proj.lora_B.weight"] = []int{64, 4}
		want[p+"mlp.down_proj.lora_A.weight"] = []int{4, 256}
		want[p+"mlp.down_proj.lora_B.weight"] = []int{128, 4}
	}
	if len(f.Tensors) != len(want) {
		t.Errorf("%d tensors, want %d: %v", len(f.Tensors), len(want), f.Tensors)
	}
	for n, shape := range want {
		got, ok := f.Tensors[n]
		switch {
		case !ok:
			t.Errorf("%s missing", n)
		case !slices.Equal(got.Shape, shape) || got.Dtype != "float32":
			t.Errorf("%s: %v %s, want %v float32", n, got.Shape, got.Dtype, shape)
		case f.Diffs[n] == nil || *f.Diffs[n] != 0:
			t.Errorf("%s is not the transpose of mlx's tensor (max diff %v)", n, f.Diffs[n])
		}
	}
	c := f.Config
	checks := map[string]any{"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 4.0, "lora_alpha": 16.0,
		"base_model_name_or_path": "org/tiny-float", "bias": "none", "use_dora": false, "use_rslora": false}
	for k, v := range checks {
		if c[k] != v {
			t.Errorf("adapter_config.json %s = %v, want %v", k, c[k], v)
		}
	}
	if got := c["target_modules"]; !slices.Equal(toStrings(got), []string{"mlp.down_proj", "self_attn.q_proj", "self_attn.v_proj"}) {
		t.Errorf("target_modules %v", got)
	}
	if got := c["layers_to_transform"]; !slices.Equal(toStrings(got), []string{"2", "3"}) {
		t.Errorf("layers_to_transform %v", got)
	}
	if res.Rank != 4 || res.Alpha != 16 || len(res.Modules) != 6 {
		t.Errorf("result %+v", res)
	}
	// Without a name for the float base, the model directory is named.
	out2 := filepath.Join(t.TempDir(), "peft")
	if _, err := Export(dir, adapter, out2, ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(out2, ConfigFile))
	abs, _ := filepath.Abs(dir)
	if !strings.Contains(string(raw), `"base_model_name_or_path": "`+abs+`"`) {
		t.Errorf("base model not named %s:\n%s", abs, raw)
	}
	if _, err := Export(dir, adapter, out2, ExportOptions{}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("export over an existing directory: %v", err)
	}
}

func toStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, len(list))
	for i, x := range list {
		switch x := x.(type) {
		case string:
			out[i] = x
		default:
			b, _ := json.Marshal(x)
			out[i] = string(b)
		}
	}
	return out
}

// Export then import gives back the same adapters: the same logits, bit for bit.
func TestExportImportRoundTrip(t *testing.T) {
	dir := testmodel.Tiny(t, "tiny")
	adapter := testmodel.RandomAdapter(t, dir, 11, 0.3)
	exported := filepath.Join(t.TempDir(), "peft")
	if _, err := Export(dir, adapter, exported, ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	back := filepath.Join(t.TempDir(), "back")
	res, err := Import(dir, exported, back)
	if err != nil {
		t.Fatal(err)
	}
	if res.Config.Rank != 4 || res.Config.Scale != 4 || res.Config.NumLayers != 2 ||
		!slices.Equal(res.Config.Keys, []string{"mlp.down_proj", "self_attn.q_proj", "self_attn.v_proj"}) {
		t.Errorf("imported config %+v", res.Config)
	}
	want, got := logits(t, dir, adapter), logits(t, dir, back)
	if d := maxDiff(want, got); d != 0 {
		t.Errorf("imported adapter's logits differ from the original's by %g", d)
	}
	if d := maxDiff(want, logits(t, dir, "")); d < 0.1 {
		t.Fatalf("the adapter moves logits by only %g: the test proves nothing", d)
	}
}

// A PEFT adapter written as peft writes it (every block, float16, rsLoRA) imports with
// lora_a = lora_Aᵀ and lora_b = lora_Bᵀ in float32 and the scale alpha/√r.
func TestImportPeftLayout(t *testing.T) {
	dir := testmodel.Tiny(t, "tiny")
	src := t.TempDir()
	python(t, testenv.Python(t), script(t, "peft_format.py"), "write", src)
	out := filepath.Join(t.TempDir(), "imported")
	res, err := Import(dir, src, out)
	if err != nil {
		t.Fatal(err)
	}
	if c := res.Config; c.Rank != 2 || math.Abs(c.Scale-6/math.Sqrt2) > 1e-12 || c.NumLayers != 4 ||
		!slices.Equal(c.Keys, []string{"self_attn.o_proj", "self_attn.q_proj"}) {
		t.Errorf("imported config %+v", c)
	}
	// The format check reads the import as mlx's side of the comparison.
	var f format
	if err := json.Unmarshal(python(t, testenv.Python(t), script(t, "peft_format.py"), src, out), &f); err != nil {
		t.Fatal(err)
	}
	for n, d := range f.Diffs {
		if d == nil || *d != 0 {
			t.Errorf("%s: imported tensor is not its transpose (max diff %v)", n, d)
		}
	}
	if len(f.Diffs) != 16 {
		t.Errorf("%d tensors compared, want 16", len(f.Diffs))
	}
	cfg, err := lora.ReadConfig(out)
	if err != nil || cfg.Scale != res.Config.Scale {
		t.Errorf("written config %+v, %v", cfg, err)
	}
	if l := logits(t, dir, out); maxDiff(l, logits(t, dir, "")) == 0 {
		t.Errorf("the imported adapter changes nothing")
	}
}

// What yai's adapters cannot express is refused, each reason named.
func TestImportRefuses(t *testing.T) {
	dir := testmodel.Tiny(t, "tiny")
	for _, c := range []struct {
		name, from, to, want string
	}{
		{"dora", "{", `{"use_dora": true, `, "use_dora"},
		{"bias", `"bias": "none"`, `"bias": "all"`, `bias "all"`},
		{"modules_to_save", "{", `{"modules_to_save": ["lm_head"], `, "modules_to_save"},
		{"rank_pattern", "{", `{"rank_pattern": {"q_proj": 8}, `, "rank_pattern"},
		{"not lora", `"peft_type": "LORA"`, `"peft_type": "IA3"`, `peft_type "IA3"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := t.TempDir()
			python(t, testenv.Python(t), script(t, "peft_format.py"), "write", src)
			path := filepath.Join(src, ConfigFile)
			raw, _ := os.ReadFile(path)
			os.WriteFile(path, []byte(strings.Replace(string(raw), c.from, c.to, 1)), 0o644)
			out := filepath.Join(t.TempDir(), "x")
			if _, err := Import(dir, src, out); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("import: %v, want an error naming %s", err, c.want)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("a refused import wrote %s", out)
			}
		})
	}
	// Blocks with a gap before the last one cannot be yai's adapters.
	src := t.TempDir()
	python(t, testenv.Python(t), script(t, "peft_format.py"), "write", src)
	ts, _, err := mlx.LoadSafetensors(filepath.Join(src, WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	for n, a := range ts {
		if strings.Contains(n, "layers.3.") {
			a.Free()
			delete(ts, n)
		}
	}
	if err := mlx.SaveSafetensors(filepath.Join(src, WeightsFile), ts, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := Import(dir, src, filepath.Join(t.TempDir(), "x")); err == nil || !strings.Contains(err.Error(), "without gaps") {
		t.Errorf("import of blocks 0-2 of 4: %v", err)
	}
}

// A family without a PEFT mapping is one clear error naming it and the supported ones.
func TestUnsupportedFamily(t *testing.T) {
	_, err := familyOf(&modeldir.Config{ModelType: "exotic", Family: &modeldir.Family{Name: "exotic"}})
	if err == nil || !strings.Contains(err.Error(), `model_type "exotic"`) || !strings.Contains(err.Error(), "llama") {
		t.Errorf("err = %v", err)
	}
}
