package lora

import (
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/mlx"
)

// blocks builds n hand-made blocks with plain linear layers of width d.
func blocks(t *testing.T, n, d int) ([]*model.Block, func()) {
	t.Helper()
	var arrays []*mlx.Array
	lin := func(in, out int) model.Linear {
		w := mlx.Full([]int{out, in}, 0.01, mlx.Float32)
		arrays = append(arrays, w)
		return &model.DenseLinear{Weight: w}
	}
	var bs []*model.Block
	_ = mlx.Do(func() error {
		for range n {
			bs = append(bs, model.NewBlock(
				&model.Attention{Q: lin(d, d), K: lin(d, d/2), V: lin(d, d/2), O: lin(d, d)},
				&model.MLP{Gate: lin(d, 2*d), Up: lin(d, 2*d), Down: lin(2*d, d)},
			))
		}
		return nil
	})
	return bs, func() { mlx.Free(arrays...) }
}

func TestResolve(t *testing.T) {
	c, err := Config{Rank: 16, Alpha: 32}.Resolve(8)
	if err != nil {
		t.Fatal(err)
	}
	if c.Scale != 2 || c.NumLayers != 8 {
		t.Errorf("resolved %+v: want scale 2, 8 layers", c)
	}
	d, _ := Config{}.Resolve(32)
	if d.Rank != 8 || d.Scale != 20 || d.NumLayers != 16 {
		t.Errorf("defaults %+v: want mlx-lm's rank 8, scale 20, 16 layers", d)
	}
	for _, bad := range []Config{
		{Scale: 2, Alpha: 32},
		{NumLayers: 9},
		{Dropout: 1},
		{Rank: -1},
	} {
		if _, err := bad.Resolve(8); err == nil {
			t.Errorf("Resolve(%+v) accepted a bad config", bad)
		}
	}
}

func TestAttachInitForwardSaveLoadDetach(t *testing.T) {
	bs, free := blocks(t, 3, 64)
	defer free()
	before := mlx.LiveArrays()
	a, err := Attach(bs, Config{Keys: []string{"self_attn.q_proj", "mlp.down_proj"}, NumLayers: 2, Rank: 4, Scale: 3, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	wantNames := []string{
		"model.layers.1.self_attn.q_proj.lora_a", "model.layers.1.self_attn.q_proj.lora_b",
		"model.layers.1.mlp.down_proj.lora_a", "model.layers.1.mlp.down_proj.lora_b",
		"model.layers.2.self_attn.q_proj.lora_a", "model.layers.2.self_attn.q_proj.lora_b",
		"model.layers.2.mlp.down_proj.lora_a", "model.layers.2.mlp.down_proj.lora_b",
	}
	if diff := cmp.Diff(wantNames, a.ParamNames()); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
	if _, ok := bs[0].Attn.Q.(*Linear); ok {
		t.Error("block 0 got an adapter though only the last 2 blocks should")
	}
	ps := a.Params()
	if got := ps[2].Shape(); !cmp.Equal(got, []int{128, 4}) {
		t.Errorf("down_proj lora_a shape %v, want [128 4]", got)
	}
	bound := 1 / math.Sqrt(64)
	for _, v := range ps[0].Floats() {
		if math.Abs(float64(v)) > bound {
			t.Fatalf("lora_a value %v outside ±1/√in", v)
		}
	}
	for _, v := range ps[1].Floats() {
		if v != 0 {
			t.Fatal("lora_b is not zero-initialised")
		}
	}
	if ps[0].Dtype() != mlx.Float32 {
		t.Errorf("lora_a dtype %s, want float32", ps[0].Dtype())
	}

	// y = base(x) + scale·(x@A)@B: with B set to ones the update is scale·sum(x@A).
	err = mlx.Do(func() error {
		s := mlx.NewScope()
		defer s.Close()
		l := a.Layers[0]
		ones := mlx.Ones(l.B.Shape(), mlx.Float32)
		mlx.Detach(ones)
		a.Replace([]*mlx.Array{mlx.Copy(l.A), ones, mlx.Copy(ps[2]), mlx.Copy(ps[3]), mlx.Copy(ps[4]), mlx.Copy(ps[5]), mlx.Copy(ps[6]), mlx.Copy(ps[7])})
		for _, p := range a.Params() {
			mlx.Detach(p)
		}
		x := mlx.Ones([]int{1, 64}, mlx.Float32)
		y := l.Forward(x).Floats()
		xa := mlx.Sum(mlx.Matmul(x, l.A), false).Item()
		want := 64*0.01 + 3*xa
		if math.Abs(float64(y[0])-want) > 1e-4 {
			t.Errorf("forward = %v, want %v", y[0], want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	if err := a.Save(dir); err != nil {
		t.Fatal(err)
	}
	cfg, err := ReadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Rank != 4 || cfg.Scale != 3 || cfg.NumLayers != 2 || len(cfg.Keys) != 2 {
		t.Errorf("config read back %+v", cfg)
	}
	saved := a.Params()[1].Floats()
	a.Detach()
	if _, ok := bs[1].Attn.Q.(*model.DenseLinear); !ok {
		t.Error("Detach did not restore the base layer")
	}
	if now := mlx.LiveArrays(); now != before {
		t.Errorf("Detach left %d arrays", now-before)
	}

	b, err := Load(bs, dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(saved, b.Params()[1].Floats()); diff != "" {
		t.Errorf("loaded lora_b differs from saved")
	}
	// A file from another configuration is rejected with the tensor named.
	other, err := Attach(bs[:1], Config{Keys: []string{"self_attn.q_proj"}, NumLayers: 1, Rank: 4, Scale: 1})
	if err == nil {
		err = other.LoadWeights(filepath.Join(dir, WeightsFile))
		if err == nil || !strings.Contains(err.Error(), "model.layers.2.mlp.down_proj.lora_a") {
			t.Errorf("mismatched adapters: err = %v", err)
		}
		other.Detach()
	} else {
		t.Fatal(err)
	}
	b.Detach()
}

// A key that names no projection of the block is one error listing those it has; a bare
// name is qualified by suffix.
func TestAttachResolvesKeysAgainstTheBlock(t *testing.T) {
	bs, free := blocks(t, 2, 8)
	defer free()
	if _, err := Attach(bs, Config{Keys: []string{"self_attn.qproj"}, NumLayers: 1, Rank: 2, Scale: 1}); err == nil ||
		!strings.Contains(err.Error(), `"self_attn.qproj"`) || !strings.Contains(err.Error(), "self_attn.q_proj, self_attn.k_proj") {
		t.Errorf("Attach with an unknown key: %v", err)
	}
	a, err := Attach(bs, Config{Keys: []string{"v_proj"}, NumLayers: 1, Rank: 2, Scale: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Detach()
	if !slices.Equal(a.Names, []string{"model.layers.1.self_attn.v_proj"}) {
		t.Errorf("names %v", a.Names)
	}
}

// Unplug and Plug move loaded adapters out of the model and back without freeing them, so
// several adapters can take turns over one base model; two never share a slot.
func TestUnplugPlugTakeTurns(t *testing.T) {
	bs, free := blocks(t, 2, 8)
	defer free()
	q := func() model.Linear { return bs[1].Attn.Q }
	base := q()
	cfg := Config{Rank: 2, Scale: 1, NumLayers: 1, Keys: []string{"self_attn.q_proj"}}
	a, err := Attach(bs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	a.Unplug()
	if q() != base || a.Plugged() {
		t.Fatalf("after Unplug the base layer is not back")
	}
	b, err := Attach(bs, cfg) // wraps the base layer, not a's adapter
	if err != nil {
		t.Fatal(err)
	}
	defer b.Detach()
	if b.Layers[0].Base != base {
		t.Fatalf("the second adapter wraps %T, not the base layer", b.Layers[0].Base)
	}
	if err := a.Plug(); err == nil {
		t.Fatal("Plug put a second adapter into an adapted slot")
	}
	if q() != model.Linear(b.Layers[0]) {
		t.Fatal("a refused Plug changed the model")
	}
	b.Unplug()
	if err := a.Plug(); err != nil {
		t.Fatal(err)
	}
	if q() != model.Linear(a.Layers[0]) || !a.Plugged() || b.Plugged() {
		t.Fatal("Plug did not put the adapter back")
	}
	if err := a.Plug(); err != nil {
		t.Fatalf("Plug of adapters already in place: %v", err)
	}
	b.Unplug() // not plugged: changes nothing
	if q() != model.Linear(a.Layers[0]) {
		t.Fatal("Unplug of adapters not in place removed another's")
	}
	live := mlx.LiveArrays()
	a.Detach()
	if q() != base || mlx.LiveArrays() != live-2 {
		t.Fatalf("Detach: layer %T, %d arrays freed, want the base layer and 2", q(), live-mlx.LiveArrays())
	}
	if !a.Layers[0].A.Freed() {
		t.Fatal("Detach left lora_a")
	}
}
