package model

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yai-dev/yai/mlx"
)

// writeMicro writes the micro preset into a fresh directory, sharded when shardBytes > 0.
func writeMicro(t *testing.T, shardBytes int) string {
	t.Helper()
	dir := t.TempDir()
	spec := TinyPresets["micro"]
	spec.ShardBytes = shardBytes
	if err := WriteTiny(dir, spec); err != nil {
		t.Fatal(err)
	}
	return dir
}

// editTensors rewrites one safetensors file after edit changes its tensors.
func editTensors(t *testing.T, path string, edit func(tensors map[string]*mlx.Array)) {
	t.Helper()
	tensors, meta, err := mlx.LoadSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	edit(tensors)
	err = mlx.SaveSafetensors(path, tensors, meta)
	for _, a := range tensors {
		a.Free()
	}
	if err != nil {
		t.Fatal(err)
	}
}

func replace(tensors map[string]*mlx.Array, name string, a *mlx.Array) {
	tensors[name].Free()
	tensors[name] = a
}

func TestLoadErrorsNameTensorAndFile(t *testing.T) {
	const norm = "model.layers.1.input_layernorm.weight"
	cases := []struct {
		name       string
		shards     int
		edit       func(t *testing.T, dir string)
		tensor     string // the tensor the error must name
		file       string // the file it must name (base name)
		wantInText string
	}{
		{name: "missing tensor", tensor: "model.layers.0.mlp.up_proj.biases", file: "model.safetensors", wantInText: "missing",
			edit: func(t *testing.T, dir string) {
				editTensors(t, filepath.Join(dir, "model.safetensors"), func(m map[string]*mlx.Array) {
					m["model.layers.0.mlp.up_proj.biases"].Free()
					delete(m, "model.layers.0.mlp.up_proj.biases")
				})
			}},
		{name: "wrong shape", tensor: norm, file: "model.safetensors", wantInText: "shape [32], expected [64]",
			edit: func(t *testing.T, dir string) {
				editTensors(t, filepath.Join(dir, "model.safetensors"), func(m map[string]*mlx.Array) {
					replace(m, norm, mlx.Ones([]int{32}, mlx.Float16))
				})
			}},
		{name: "wrong packed shape", tensor: "model.layers.0.self_attn.k_proj.weight", file: "model.safetensors", wantInText: "shape",
			edit: func(t *testing.T, dir string) {
				editTensors(t, filepath.Join(dir, "model.safetensors"), func(m map[string]*mlx.Array) {
					replace(m, "model.layers.0.self_attn.k_proj.weight", mlx.Zeros([]int{16, 8}, mlx.Uint32))
				})
			}},
		{name: "bad dtype", tensor: norm, file: "model.safetensors", wantInText: "dtype int32",
			edit: func(t *testing.T, dir string) {
				editTensors(t, filepath.Join(dir, "model.safetensors"), func(m map[string]*mlx.Array) {
					replace(m, norm, mlx.Ones([]int{64}, mlx.Int32))
				})
			}},
		{name: "bad packed dtype", tensor: "model.embed_tokens.weight", file: "model.safetensors", wantInText: "dtype float32, expected uint32",
			edit: func(t *testing.T, dir string) {
				editTensors(t, filepath.Join(dir, "model.safetensors"), func(m map[string]*mlx.Array) {
					replace(m, "model.embed_tokens.weight", mlx.Zeros([]int{1000, 8}, mlx.Float32))
				})
			}},
		{name: "unexpected tensor", tensor: "model.layers.0.self_attn.extra", file: "model.safetensors", wantInText: "unexpected",
			edit: func(t *testing.T, dir string) {
				editTensors(t, filepath.Join(dir, "model.safetensors"), func(m map[string]*mlx.Array) {
					m["model.layers.0.self_attn.extra"] = mlx.Ones([]int{3}, mlx.Float16)
				})
			}},
		{name: "shard missing a tensor of the index", shards: 20000, tensor: "model.norm.weight", wantInText: "listed in model.safetensors.index.json",
			edit: func(t *testing.T, dir string) {
				files, _ := filepath.Glob(filepath.Join(dir, "model-*.safetensors"))
				for _, f := range files {
					editTensors(t, f, func(m map[string]*mlx.Array) {
						if a, ok := m["model.norm.weight"]; ok {
							a.Free()
							delete(m, "model.norm.weight")
						}
					})
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeMicro(t, tc.shards)
			tc.edit(t, dir)
			before := mlx.LiveArrays()
			m, err := Load(dir, LoadOptions{})
			if err == nil {
				m.Free()
				t.Fatal("Load succeeded")
			}
			t.Log(err)
			var te *TensorError
			if !errors.As(err, &te) || strings.Count(err.Error(), "\n") > 0 {
				t.Fatalf("error %v: want exactly one *TensorError", err)
			}
			if te.Tensor != tc.tensor || filepath.Dir(te.File) != dir || (tc.file != "" && filepath.Base(te.File) != tc.file) {
				t.Errorf("error names tensor %q in %s, want %q in %s", te.Tensor, te.File, tc.tensor, tc.file)
			}
			if !strings.Contains(err.Error(), tc.wantInText) {
				t.Errorf("error %q does not say %q", err, tc.wantInText)
			}
			if tc.shards > 0 && !strings.Contains(te.File, "-of-") {
				t.Errorf("error names %s, want the shard the index points to", te.File)
			}
			if after := mlx.LiveArrays(); after != before {
				t.Errorf("a failed Load leaked %d arrays", after-before)
			}
		})
	}
}

func TestReadConfigErrors(t *testing.T) {
	cases := map[string]struct{ edit, want string }{
		"unknown model_type": {`"model_type": "llama"`, `unsupported model_type "gpt2"`},
		"bad rope scaling":   {`"rope_type": "llama3"`, `unsupported rope_scaling type "yarn"`},
	}
	replacements := map[string]string{"unknown model_type": `"model_type": "gpt2"`, "bad rope scaling": `"rope_type": "yarn"`}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := WriteTiny(dir, TinyPresets["tiny"]); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "config.json")
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			edited := strings.Replace(string(data), tc.edit, replacements[name], 1)
			if edited == string(data) {
				t.Fatalf("config.json has no %s", tc.edit)
			}
			if err := os.WriteFile(path, []byte(edited), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err = Load(dir, LoadOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("Load error %v, want %q naming %s", err, tc.want, path)
			}
		})
	}
}
