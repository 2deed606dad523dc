// Package testmodel writes the small models and adapters tests generate from: a tiny preset
// model and adapters whose lora_b is random (fresh adapters have lora_b = 0 and change
// nothing), so an adapted model answers differently from its base.
package testmodel

import (
	"path/filepath"
	"testing"

	"github.com/yai-dev/yai/internal/lora"
	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/mlx"
)

// Tiny writes the named model.TinyPresets entry into a temporary directory.
func Tiny(tb testing.TB, preset string) string {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), preset)
	if err := model.WriteTiny(dir, model.TinyPresets[preset]); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// AdapterKeys are the layers RandomAdapter adapts, in the last two blocks.
var AdapterKeys = []string{"self_attn.q_proj", "self_attn.v_proj", "mlp.down_proj"}

// RandomAdapter writes adapters (rank 4, scale 4) for the model in modelDir with lora_a and
// lora_b drawn from normal(0, std), and returns their directory. With std 0.3 the update
// outweighs the tiny models' weights (normal(0, 0.02)), so answers change visibly; with 0.05
// it is of their size, as a trained adapter's is.
func RandomAdapter(tb testing.TB, modelDir string, seed uint64, std float32) string {
	tb.Helper()
	return RandomAdapterOn(tb, modelDir, AdapterKeys, seed, std)
}

// Adapter is RandomAdapter on the family's keys.
func (f Family) Adapter(tb testing.TB, modelDir string, seed uint64, std float32) string {
	tb.Helper()
	return RandomAdapterOn(tb, modelDir, f.Keys, seed, std)
}

// RandomAdapterOn is RandomAdapter on the given block modules.
func RandomAdapterOn(tb testing.TB, modelDir string, keys []string, seed uint64, std float32) string {
	tb.Helper()
	m, err := model.Load(modelDir, model.LoadOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	defer m.Free()
	a, err := lora.Attach(m.Layers, lora.Config{Rank: 4, Scale: 4, NumLayers: 2, Seed: seed, Keys: keys})
	if err != nil {
		tb.Fatal(err)
	}
	defer a.Detach()
	err = mlx.Do(func() error {
		s := mlx.NewScope()
		defer s.Close()
		ps := a.Params()
		keys := mlx.RandomSplit(mlx.RandomKey(seed+1), len(ps))
		fresh := make([]*mlx.Array, len(ps))
		for i, p := range ps {
			k := mlx.Squeeze(mlx.SliceAxis(keys, 0, i, i+1), 0)
			fresh[i] = s.Keep(mlx.Normal(k, p.Shape(), mlx.Float32, 0, std))
			mlx.Detach(fresh[i])
		}
		mlx.Eval(fresh...)
		a.Replace(fresh)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	dir := filepath.Join(tb.TempDir(), "adapters")
	if err := a.Save(dir); err != nil {
		tb.Fatal(err)
	}
	return dir
}
