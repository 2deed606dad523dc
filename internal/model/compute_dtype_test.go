package model

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/yai-dev/yai/mlx"
)

// A float16 checkpoint loaded with a float32 compute dtype: every floating tensor is float32,
// packed weights are untouched, the logits are mlx-lm's for the same model with its floating
// parameters converted after loading, and a selective reload converts the same way, so the
// logits after it are bit-identical.
func TestComputeDtypeConvertsAtLoadAndReload(t *testing.T) {
	dir := t.TempDir()
	spec := TinyPresets["micro"]
	spec.Dtype = mlx.Float16
	if err := WriteTiny(dir, spec); err != nil {
		t.Fatal(err)
	}
	m, err := Load(dir, LoadOptions{ComputeDtype: mlx.Float32})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	for name, a := range m.Parameters() {
		want := mlx.Float32
		if strings.HasSuffix(name, ".weight") && a.Dtype() == mlx.Uint32 {
			want = mlx.Uint32
		}
		if a.Dtype() != want {
			t.Errorf("%s is %s, want %s", name, a.Dtype(), want)
		}
	}
	rows := randomTokens(3, 2, 10, m.Config.VocabSize)
	got, shape, dt := logits(t, m, rows)
	if dt != mlx.Float32 {
		t.Fatalf("logits are %s, want float32", dt)
	}

	out := filepath.Join(t.TempDir(), "logits.safetensors")
	reference(t, "logits", dir, tokensArg(rows), out, "--dtype", "float32")
	ref, _, err := mlx.LoadSafetensors(out)
	if err != nil {
		t.Fatal(err)
	}
	want := ref["logits"]
	defer want.Free()
	if !slices.Equal(shape, want.Shape()) {
		t.Fatalf("logits shape %v, mlx-lm's %v", shape, want.Shape())
	}
	if diff, scale := maxAbsDiff(got, want.Floats()); diff > 1e-5*max(1, scale) {
		t.Errorf("logits differ from mlx-lm's by %g (scale %g)", diff, scale)
	}

	all := func(string) bool { return true }
	m.FreeTensors(all)
	if err := m.Reload(dir, all); err != nil {
		t.Fatal(err)
	}
	for name, a := range m.Parameters() {
		if a.Dtype() == mlx.Float16 {
			t.Errorf("%s reloaded as float16", name)
		}
	}
	if again, _, _ := logits(t, m, rows); !slices.Equal(again, got) {
		t.Error("logits after a reload differ")
	}
}
