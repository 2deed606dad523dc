package optim

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/yai-dev/yai/internal/testenv"
	"github.com/yai-dev/yai/mlx"
)

type optCase struct {
	Name   string `json:"name"`
	Config Config `json:"config"`
}

func cases() []optCase {
	adamw := DefaultConfig()
	adamw.LearningRate = 1e-2
	adamwBC := adamw
	adamwBC.BiasCorrection = true
	adamwBC.WeightDecay = 0.1
	adam := adamw
	adam.Name = "adam"
	adamBC := adam
	adamBC.BiasCorrection = true
	adamBC.Betas = [2]float64{0.8, 0.99}
	sgd := Config{Name: "sgd", LearningRate: 0.05}
	sgdMom := Config{Name: "sgd", LearningRate: 0.05, Momentum: 0.9, WeightDecay: 0.01}
	sgdDamp := Config{Name: "sgd", LearningRate: 0.05, Momentum: 0.9, Dampening: 0.3}
	sgdNesterov := Config{Name: "sgd", LearningRate: 0.05, Momentum: 0.9, Nesterov: true}
	clipped := adamw
	clipped.MaxGradNorm = 0.5
	cosine := adamw
	cosine.Schedule = &Schedule{Name: "cosine_decay", Arguments: []float64{1e-2, 4, 1e-3}, Warmup: 2, WarmupInit: 1e-4}
	cosineNoWarm := adamw
	cosineNoWarm.Schedule = &Schedule{Name: "cosine_decay", Arguments: []float64{1e-2, 5}}
	linear := adamw
	linear.Schedule = &Schedule{Name: "linear_schedule", Arguments: []float64{1e-2, 1e-3, 3}}
	warmConst := adamw
	warmConst.Schedule = &Schedule{Name: "constant", Arguments: []float64{1e-2}, Warmup: 3}
	expDecay := sgdMom
	expDecay.Schedule = &Schedule{Name: "exponential_decay", Arguments: []float64{0.1, 0.9}}
	return []optCase{
		{"adamw", adamw}, {"adamw_bias_correction", adamwBC}, {"adam", adam}, {"adam_bias_correction", adamBC},
		{"sgd", sgd}, {"sgd_momentum", sgdMom}, {"sgd_dampening", sgdDamp}, {"sgd_nesterov", sgdNesterov},
		{"adamw_clipped", clipped}, {"cosine_warmup", cosine}, {"cosine", cosineNoWarm},
		{"linear", linear}, {"constant_warmup", warmConst}, {"sgd_exponential", expDecay},
	}
}

// The "constant" schedule is yai's: the Python side gets the equivalent mlx-lm config.
func (c optCase) MarshalJSON() ([]byte, error) {
	cfg := c.Config
	type plain Config
	if s := cfg.Schedule; s != nil && s.Name == "constant" {
		// linear_schedule(lr, lr, 1) is flat at lr, which is what "constant" means.
		s2 := *s
		s2.Name, s2.Arguments = "linear_schedule", []float64{s.Arguments[0], s.Arguments[0], 1}
		cfg.Schedule = &s2
	}
	return json.Marshal(struct {
		Name   string `json:"name"`
		Config plain  `json:"config"`
	}{c.Name, plain(cfg)})
}

// TestMatchesMLXOptimizers runs every optimizer, schedule and clipping case for six steps on
// fixed gradients and compares each step's parameters with mlx.optimizers'.
func TestMatchesMLXOptimizers(t *testing.T) {
	py := testenv.Python(t)
	dir := t.TempDir()
	const steps = 6
	shapes := map[string][]int{"a.lora_a": {7, 3}, "a.lora_b": {3, 5}, "b.weight": {11}}
	names := []string{"a.lora_a", "a.lora_b", "b.weight"}

	inputs := map[string]*mlx.Array{}
	err := mlx.Do(func() error {
		key := mlx.RandomKey(7)
		defer key.Free()
		keys := mlx.RandomSplit(key, 4*steps)
		defer keys.Free()
		k := 0
		next := func() *mlx.Array {
			sub := mlx.Squeeze(mlx.SliceAxis(keys, 0, k, k+1), 0)
			defer sub.Free()
			k++
			return sub.Clone()
		}
		for _, n := range names {
			kk := next()
			inputs["param/"+n] = mlx.Normal(kk, shapes[n], mlx.Float32, 0, 1)
			kk.Free()
			for s := range steps {
				kk := next()
				inputs[fmt.Sprintf("grad/%d/%s", s, n)] = mlx.Normal(kk, shapes[n], mlx.Float32, 0, float32(s+1))
				kk.Free()
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, a := range inputs {
			a.Free()
		}
	}()
	inFile := filepath.Join(dir, "inputs.safetensors")
	if err := mlx.SaveSafetensors(inFile, inputs, nil); err != nil {
		t.Fatal(err)
	}
	cs := cases()
	js, _ := json.Marshal(cs)
	casesFile := filepath.Join(dir, "cases.json")
	os.WriteFile(casesFile, js, 0o644)
	outFile := filepath.Join(dir, "ref.safetensors")
	cmd := exec.Command(py, "testdata/reference.py", inFile, casesFile, outFile)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("reference script: %v\n%s", err, out)
	}
	ref, _, err := mlx.LoadSafetensors(outFile)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, a := range ref {
			a.Free()
		}
	}()

	for _, c := range cs {
		t.Run(c.Name, func(t *testing.T) {
			opt, err := New(c.Config)
			if err != nil {
				t.Fatal(err)
			}
			err = mlx.Do(func() error {
				scope := mlx.NewScope()
				defer scope.Close()
				params := make([]*mlx.Array, len(names))
				for i, n := range names {
					params[i] = inputs["param/"+n]
				}
				state := opt.Init(params)
				for s := range steps {
					grads := make([]*mlx.Array, len(names))
					for i, n := range names {
						grads[i] = inputs[fmt.Sprintf("grad/%d/%s", s, n)]
					}
					if c.Config.MaxGradNorm > 0 {
						var norm *mlx.Array
						grads, norm = ClipGradNorm(grads, c.Config.MaxGradNorm)
						closeTo(t, fmt.Sprintf("step %d norm", s), norm, ref[fmt.Sprintf("%s/%d/norm", c.Name, s)], 1e-6)
					}
					lrValue := c.Config.LearningRateAt(s)
					wantLR := ref[fmt.Sprintf("%s/%d/lr", c.Name, s)].Item()
					if d := math.Abs(float64(lrValue) - wantLR); d > 1e-6*math.Abs(wantLR)+1e-12 {
						t.Errorf("step %d lr = %v, mlx %v", s, lrValue, wantLR)
					}
					lr := mlx.Scalar(float64(lrValue), mlx.Float32)
					step := mlx.Scalar(float64(s+1), mlx.Float32)
					params, state = opt.Apply(params, grads, state, lr, step)
					mlx.Eval(append(params, state...)...)
					for i, n := range names {
						closeTo(t, fmt.Sprintf("step %d %s", s, n), params[i], ref[fmt.Sprintf("%s/%d/%s", c.Name, s, n)], 1e-6)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// closeTo fails unless every element of got is within tol (relative, with an absolute floor
// of tol) of want.
func closeTo(t *testing.T, what string, got, want *mlx.Array, tol float64) {
	t.Helper()
	g, w := got.Floats(), want.Floats()
	if len(g) != len(w) {
		t.Fatalf("%s: %d elements, want %d", what, len(g), len(w))
	}
	for i := range g {
		d := math.Abs(float64(g[i]) - float64(w[i]))
		if d > tol*math.Max(1, math.Abs(float64(w[i]))) {
			t.Errorf("%s[%d] = %v, mlx %v (diff %g)", what, i, g[i], w[i], d)
			return
		}
	}
}

func TestValidate(t *testing.T) {
	bad := []Config{
		{Name: "lion"},
		{Name: "adam", Betas: [2]float64{1, 0.9}},
		{Name: "sgd", Nesterov: true},
		{Name: "sgd", Momentum: 0.9, Dampening: 0.1, Nesterov: true},
		{Name: "adamw", Betas: [2]float64{0.9, 0.99}, Schedule: &Schedule{Name: "cosine_decay", Arguments: []float64{1e-3}}},
		{Name: "adamw", Betas: [2]float64{0.9, 0.99}, Schedule: &Schedule{Name: "warp", Arguments: []float64{1e-3}}},
		{Name: "adamw", Betas: [2]float64{0.9, 0.99}, MaxGradNorm: -1},
	}
	for _, c := range bad {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) accepted a bad config", c)
		}
	}
	if _, err := New(DefaultConfig()); err != nil {
		t.Errorf("default config rejected: %v", err)
	}
}
