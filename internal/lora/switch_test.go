package lora

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/testenv"
	"github.com/yai-dev/yai/mlx"
)

// mlxlm runs internal/model's mlx-lm reference script.
func mlxlm(t *testing.T, args ...string) {
	t.Helper()
	script := filepath.Join(testenv.ModuleRoot(t), "internal", "model", "testdata", "mlxlm_reference.py")
	cmd := exec.Command(testenv.Python(t), append([]string{script}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("mlxlm_reference.py %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
}

// writeMoE writes a mixture-of-experts model with mlx-lm's own module (4 experts, 2 per
// token, hidden size 64) and loads it.
func writeMoE(t *testing.T, modelType string, flags ...string) (*model.Model, string) {
	t.Helper()
	cfg := map[string]any{"model_type": modelType, "hidden_size": 64, "num_hidden_layers": 2, "intermediate_size": 128,
		"num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 128, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
		"tie_word_embeddings": false, "max_position_embeddings": 512, "num_local_experts": 4, "num_experts": 4,
		"num_experts_per_tok": 2, "moe_intermediate_size": 64, "head_dim": 16, "decoder_sparse_step": 1,
		"mlp_only_layers": []int{0}, "norm_topk_prob": true}
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	mlxlm(t, append([]string{"write", dir, string(js), "3"}, flags...)...)
	m, err := model.Load(dir, model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Free)
	return m, dir
}

func tokenRows(seed int64, b, l, vocab int) [][]int32 {
	r := rand.New(rand.NewSource(seed))
	rows := make([][]int32, b)
	for i := range rows {
		for range l {
			rows[i] = append(rows[i], int32(r.Intn(vocab)))
		}
	}
	return rows
}

func rowsArray(rows [][]int32) *mlx.Array {
	var flat []int32
	for _, r := range rows {
		flat = append(flat, r...)
	}
	return mlx.FromSlice(flat, len(rows), len(rows[0]))
}

// compareWithMLXLM compares the adapted model's logits with mlx-lm's for the same model and
// the adapters saved in adapterDir.
func compareWithMLXLM(t *testing.T, m *model.Model, dir, adapterDir string, rows [][]int32) {
	t.Helper()
	got, dt := forward(t, m, rows)
	var parts []string
	for _, r := range rows {
		s := make([]string, len(r))
		for i, v := range r {
			s[i] = fmt.Sprint(v)
		}
		parts = append(parts, strings.Join(s, ","))
	}
	out := filepath.Join(t.TempDir(), "logits.safetensors")
	mlxlm(t, "logits", dir, strings.Join(parts, ";"), out, "--adapter", adapterDir)
	ts, _, err := mlx.LoadSafetensors(out)
	if err != nil {
		t.Fatal(err)
	}
	want := ts["logits"].Floats()
	ts["logits"].Free()
	var diff, scale float64
	for i := range want {
		diff = math.Max(diff, math.Abs(float64(got[i]-want[i])))
		scale = math.Max(scale, math.Abs(float64(want[i])))
	}
	tol := 1e-5 * scale
	if dt != mlx.Float32 {
		tol = scale / 128
	}
	t.Logf("%d×%d tokens: max |yai - mlx-lm| = %.3g (largest logit %.3g, tolerance %.3g, %s)", len(rows), len(rows[0]), diff, scale, tol, dt)
	if diff > tol {
		t.Errorf("adapted logits differ from mlx-lm's by %g > %g", diff, tol)
	}
}

func forward(t *testing.T, m *model.Model, rows [][]int32) (logits []float32, dt mlx.Dtype) {
	t.Helper()
	if err := mlx.Do(func() error {
		s := mlx.NewScope()
		defer s.Close()
		out := m.Forward(rowsArray(rows))
		logits, dt = out.Floats(), out.Dtype()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return logits, dt
}

// randomize gives every adapter parameter random values, so lora_b is not zero and each
// expert's update differs.
func randomize(t *testing.T, a *Adapters) {
	t.Helper()
	if err := mlx.Do(func() error {
		key := mlx.RandomKey(11)
		defer key.Free()
		keys := mlx.RandomSplit(key, len(a.Params()))
		defer keys.Free()
		var ps []*mlx.Array
		for i, p := range a.Params() {
			k := mlx.SliceAxis(keys, 0, i, i+1)
			k2 := mlx.Squeeze(k, 0)
			ps = append(ps, mlx.Uniform(k2, -0.05, 0.05, p.Shape(), mlx.Float32))
			mlx.Free(k, k2)
		}
		mlx.Eval(ps...)
		a.Replace(ps)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// Adapters on every module mlx-lm adapts by default (the router and the experts'
// stacks among them: LoRASwitchLinear), saved by yai and loaded by mlx-lm, give mlx-lm's
// logits; on the short batch SwitchGLU gathers unsorted, on the long one sorted.
func TestSwitchAdaptersMatchMLXLM(t *testing.T) {
	for _, tc := range []struct {
		name      string
		modelType string
		flags     []string
		names     []string // some of the adapted modules
	}{
		{"mixtral-float32", "mixtral", []string{"--dtype", "float32"}, []string{"model.layers.1.block_sparse_moe.gate", "model.layers.1.block_sparse_moe.switch_mlp.down_proj"}},
		{"mixtral-4bit-bf16", "mixtral", []string{"--bits", "4", "--group-size", "32", "--dtype", "bfloat16"}, []string{"model.layers.0.block_sparse_moe.switch_mlp.up_proj"}},
		// Block 0 is dense (mlp_only_layers), block 1 a mixture: each adapts what it has.
		{"qwen3moe-4bit-bf16", "qwen3_moe", []string{"--bits", "4", "--group-size", "32", "--dtype", "bfloat16"},
			[]string{"model.layers.0.mlp.gate_proj", "model.layers.1.mlp.gate", "model.layers.1.mlp.switch_mlp.gate_proj"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, dir := writeMoE(t, tc.modelType, tc.flags...)
			long := tokenRows(2, 2, 40, 128)
			base, _ := forward(t, m, long)
			a, err := Attach(m.Layers, Config{NumLayers: -1, Rank: 4, Scale: 3, Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { a.Detach() }()
			for _, n := range tc.names {
				if !slices.Contains(a.Names, n) {
					t.Errorf("%s has no adapter (adapted: %v)", n, a.Names)
				}
			}
			if slices.Contains(a.Names, "model.layers.0.mlp.switch_mlp.gate_proj") {
				t.Error("a dense block got an experts' adapter")
			}
			names := a.ParamNames()
			for i, p := range a.Params() {
				if strings.Contains(names[i], "switch_mlp.down_proj.lora_a") && !slices.Equal(p.Shape(), []int{4, 4, m.Config.ExpertSize}) ||
					strings.Contains(names[i], "switch_mlp.down_proj.lora_b") && !slices.Equal(p.Shape(), []int{4, 64, 4}) {
					t.Errorf("%s: shape %v, want mlx-lm's (experts, r, in) and (experts, out, r)", names[i], p.Shape())
				}
			}
			randomize(t, a)
			adapters := t.TempDir()
			if err := a.Save(adapters); err != nil {
				t.Fatal(err)
			}
			if adapted, _ := forward(t, m, long); slices.Equal(adapted, base) {
				t.Fatal("the adapters change nothing")
			}
			for _, rows := range [][][]int32{tokenRows(1, 2, 9, 128), long} {
				compareWithMLXLM(t, m, dir, adapters, rows)
			}
			// And back: yai loads the file it wrote into a fresh set of adapters.
			a.Detach()
			b, err := Load(m.Layers, adapters)
			if err != nil {
				t.Fatal(err)
			}
			a = b
		})
	}
}

// Gradients reach the experts' adapters: a few steps of gradient descent on the experts'
// adapters alone lower a tiny mixture's loss on a fixed batch.
func TestSwitchAdaptersTrain(t *testing.T) {
	m, _ := writeMoE(t, "mixtral", "--bits", "4", "--group-size", "32", "--dtype", "float32")
	a, err := Attach(m.Layers, Config{Keys: []string{"switch_mlp.gate_proj", "switch_mlp.up_proj", "switch_mlp.down_proj"}, NumLayers: -1, Rank: 4, Scale: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Detach()
	if len(a.Layers) != 6 || a.Layers[0].Switch == nil {
		t.Fatalf("adapted %v: want the 3 expert stacks of each of 2 blocks", a.Names)
	}
	rows := tokenRows(3, 2, 48, 128)
	var losses []float64
	err = mlx.Do(func() error {
		s := mlx.NewScope()
		defer s.Close()
		tokens := rowsArray(rows)
		inputs := mlx.SliceAxis(tokens, 1, 0, 47)
		targets := mlx.SliceAxis(tokens, 1, 1, 48)
		np := len(a.Params())
		loss := func(in []*mlx.Array) []*mlx.Array {
			previous := a.Swap(in[:np])
			defer a.Swap(previous)
			logits := m.Forward(inputs)
			lse := mlx.LogSumExp(logits, false, -1)
			picked := mlx.TakeAlongAxis(logits, mlx.ExpandDims(targets, -1), -1)
			return []*mlx.Array{mlx.Mean(mlx.Subtract(lse, mlx.Squeeze(picked, -1)), false)}
		}
		step := mlx.ValueAndGrad(loss)
		for range 5 {
			values, grads := step(a.Params())
			mlx.Eval(append(values, grads...)...)
			losses = append(losses, values[0].Item())
			for i, g := range grads {
				if strings.HasSuffix(a.ParamNames()[i], "lora_b") && mlx.Max(mlx.Abs(g), false).Item() == 0 {
					t.Errorf("%s: zero gradient", a.ParamNames()[i])
				}
			}
			next := make([]*mlx.Array, np)
			for i, p := range a.Params() {
				next[i] = mlx.Subtract(p, mlx.MulScalar(grads[i], 0.5))
			}
			mlx.Eval(next...)
			s.Keep(next...)
			a.Replace(next)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("losses %.4f", losses)
	if !(losses[len(losses)-1] < losses[0]-0.01) {
		t.Errorf("loss did not fall: %v", losses)
	}
}

// Adapters mlx_lm.lora would write for a mixture (every default module of both blocks,
// experts' stacks included) load into yai and give mlx-lm's logits.
func TestSwitchAdaptersFromMLXLM(t *testing.T) {
	m, dir := writeMoE(t, "qwen3_moe", "--bits", "4", "--group-size", "32", "--dtype", "bfloat16")
	adapters := filepath.Join(t.TempDir(), "adapters")
	mlxlm(t, "adapters", dir, adapters, "2", "4", "2.5", "7")
	a, err := Load(m.Layers, adapters)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Detach()
	if !slices.Contains(a.Names, "model.layers.1.mlp.switch_mlp.down_proj") || !slices.Contains(a.Names, "model.layers.0.mlp.down_proj") {
		t.Errorf("adapted %v", a.Names)
	}
	for _, rows := range [][][]int32{tokenRows(1, 2, 9, 128), tokenRows(2, 2, 40, 128)} {
		compareWithMLXLM(t, m, dir, adapters, rows)
	}
}
