package lora

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/mlx"
)

// A block with fused projections (Phi-3) is adapted on them, in mlx-lm's module order, and
// a bare qkv_proj names the fused one.
func TestAttachFusedProjections(t *testing.T) {
	const d = 8
	var arrays []*mlx.Array
	lin := func(in, out int) model.Linear {
		w := mlx.Full([]int{out, in}, 0.01, mlx.Float32)
		arrays = append(arrays, w)
		return &model.DenseLinear{Weight: w}
	}
	var b *model.Block
	_ = mlx.Do(func() error {
		b = model.NewBlock(&model.Attention{QKV: lin(d, 2*d), O: lin(d, d)}, &model.MLP{GateUp: lin(d, 4*d), Down: lin(2*d, d)})
		return nil
	})
	defer mlx.Free(arrays...)
	want := []string{"self_attn.qkv_proj", "self_attn.o_proj", "mlp.gate_up_proj", "mlp.down_proj"}
	if diff := cmp.Diff(want, Keys(b)); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
	a, err := Attach([]*model.Block{b}, Config{Keys: []string{"qkv_proj", "gate_up_proj"}, NumLayers: 1, Rank: 2, Scale: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Detach()
	if diff := cmp.Diff([]string{"model.layers.0.self_attn.qkv_proj", "model.layers.0.mlp.gate_up_proj"}, a.Names); diff != "" {
		t.Errorf("adapted (-want +got):\n%s", diff)
	}
	if l := a.Layers[0]; l.A.Dim(0) != d || l.B.Dim(1) != 2*d {
		t.Errorf("qkv_proj adapter %v × %v, want (%d, r) × (r, %d)", l.A.Shape(), l.B.Shape(), d, 2*d)
	}
}
