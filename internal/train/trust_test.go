package train

import (
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yai-dev/yai/internal/lora"
	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/optim"
	"github.com/yai-dev/yai/mlx"
)

// poison rewrites one tensor of a safetensors file as all NaN.
func poison(t *testing.T, path, name string) {
	t.Helper()
	err := mlx.Do(func() error {
		tensors, meta, err := mlx.LoadSafetensors(path)
		if err != nil {
			return err
		}
		x, ok := tensors[name]
		if !ok {
			t.Fatalf("%s has no tensor %s", path, name)
		}
		tensors[name] = mlx.Full(x.Shape(), math.NaN(), x.Dtype())
		mlx.Eval(tensors[name])
		tmp := path + ".new"
		if err := mlx.SaveSafetensors(tmp, tensors, meta); err != nil {
			return err
		}
		return os.Rename(tmp, path)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A checkpoint whose optimizer state, accumulated gradients or adapters hold NaN is
// refused on load, naming the file and the tensor; the trainer keeps its own values.
func TestPoisonedCheckpointIsRefused(t *testing.T) {
	modelDir, _ := makeModel(t, "float32", 2, 64, 0)
	m, err := model.Load(modelDir, model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	cfg := lora.Config{Keys: []string{"self_attn.q_proj"}, NumLayers: 1, Rank: 4, Scale: 2}
	opts := Options{GradAccumulation: 2, Seed: 1}
	rng := rand.New(rand.NewSource(3))
	tr, err := NewTrainer(m, cfg, optim.DefaultConfig(), opts)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 { // ends mid-accumulation: the checkpoint holds accumulated gradients
		if _, err := tr.Step(randomBatch(rng, 2, 40)); err != nil {
			t.Fatal(err)
		}
	}
	name := tr.Adapters().ParamNames()[0]
	slot := tr.opt.Slots()[0]
	cases := []struct{ file, tensor, dir string }{
		{StateFile, name + "." + slot, ""},
		{StateFile, name + ".grad_accum", ""},
		{lora.WeightsFile, name, ""},
	}
	for i := range cases {
		cases[i].dir = filepath.Join(t.TempDir(), "ckpt")
		if err := tr.SaveState(cases[i].dir); err != nil {
			t.Fatal(err)
		}
	}
	tr.Close() // one trainer holds the model's adapters at a time
	for _, c := range cases {
		dir := c.dir
		path := filepath.Join(dir, c.file)
		poison(t, path, c.tensor)
		fresh, err := NewTrainer(m, cfg, optim.DefaultConfig(), opts)
		if err != nil {
			t.Fatal(err)
		}
		before := snapshot(fresh.Adapters().Params())
		err = fresh.LoadState(dir)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.tensor) || !strings.Contains(err.Error(), "NaN") {
			t.Errorf("%s with NaN %s: %v; want an error naming the file and the tensor", c.file, c.tensor, err)
		}
		after := snapshot(fresh.Adapters().Params())
		for i := range before {
			for j := range before[i] {
				if before[i][j] != after[i][j] {
					t.Fatalf("%s: a refused checkpoint changed the adapters", c.file)
				}
			}
		}
		fresh.Close()
	}
}

// rewrite changes a safetensors file's tensors and metadata in place.
func rewrite(t *testing.T, path string, edit func(tensors map[string]*mlx.Array, meta map[string]string)) {
	t.Helper()
	err := mlx.Do(func() error {
		tensors, meta, err := mlx.LoadSafetensors(path)
		if err != nil {
			return err
		}
		edit(tensors, meta)
		for _, x := range tensors {
			mlx.Eval(x)
		}
		tmp := path + ".new"
		if err := mlx.SaveSafetensors(tmp, tensors, meta); err != nil {
			return err
		}
		return os.Rename(tmp, path)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The counters and shapes of a checkpoint's optimizer file are checked on load: negative
// counters, more updates than steps, or accumulated gradients of another shape are refused,
// naming the file; the trainer keeps its own state.
func TestCheckpointCountersAndShapesAreChecked(t *testing.T) {
	modelDir, _ := makeModel(t, "float32", 2, 64, 0)
	m, err := model.Load(modelDir, model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	cfg := lora.Config{Keys: []string{"self_attn.q_proj"}, NumLayers: 1, Rank: 4, Scale: 2}
	opts := Options{GradAccumulation: 2, Seed: 1}
	rng := rand.New(rand.NewSource(3))
	tr, err := NewTrainer(m, cfg, optim.DefaultConfig(), opts)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 { // ends mid-accumulation: the checkpoint holds accumulated gradients
		if _, err := tr.Step(randomBatch(rng, 2, 40)); err != nil {
			t.Fatal(err)
		}
	}
	name := tr.Adapters().ParamNames()[0]
	cases := []struct {
		what string
		edit func(map[string]*mlx.Array, map[string]string)
		want string
	}{
		{"negative steps", func(_ map[string]*mlx.Array, m map[string]string) { m["steps"] = "-1" }, "bad step counters"},
		{"more updates than steps", func(_ map[string]*mlx.Array, m map[string]string) { m["updates"] = "9" }, "bad step counters"},
		{"no counters", func(_ map[string]*mlx.Array, m map[string]string) { delete(m, "updates") }, "bad step counters"},
		{"accumulated gradients of another shape", func(ts map[string]*mlx.Array, _ map[string]string) {
			ts[name+".grad_accum"] = mlx.Zeros([]int{3}, mlx.Float32)
		}, name + ".grad_accum has shape [3]"},
		{"no random key", func(ts map[string]*mlx.Array, _ map[string]string) { delete(ts, "rng_key") }, "rng_key is missing"},
	}
	dirs := make([]string, len(cases))
	for i := range cases {
		dirs[i] = filepath.Join(t.TempDir(), "ckpt")
		if err := tr.SaveState(dirs[i]); err != nil {
			t.Fatal(err)
		}
	}
	tr.Close() // one trainer holds the model's adapters at a time
	for i, c := range cases {
		path := filepath.Join(dirs[i], StateFile)
		rewrite(t, path, c.edit)
		fresh, err := NewTrainer(m, cfg, optim.DefaultConfig(), opts)
		if err != nil {
			t.Fatal(err)
		}
		err = fresh.LoadState(dirs[i])
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want an error naming %s and saying %q", c.what, err, path, c.want)
		}
		if fresh.steps != 0 || fresh.updates != 0 {
			t.Errorf("%s: a refused checkpoint set the counters to %d steps, %d updates", c.what, fresh.steps, fresh.updates)
		}
		fresh.Close()
	}
}
