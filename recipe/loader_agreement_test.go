package recipe

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/modeldir"
)

// rewriteHeader replaces a real safetensors file's header, keeping its data bytes.
func rewriteHeader(t *testing.T, path string, fix func(map[string]json.RawMessage)) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(b)
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &hdr); err != nil {
		t.Fatal(err)
	}
	fix(hdr)
	js, _ := json.Marshal(hdr)
	out := append(binary.LittleEndian.AppendUint64(nil, uint64(len(js))), js...)
	if err := os.WriteFile(path, append(out, b[8+n:]...), 0o644); err != nil {
		t.Fatal(err)
	}
}

// The dry run's model check and the loader agree: on a real tiny model both accept it, and
// each broken copy that the loader rejects when it reads the weights, validate already
// rejects from the headers.
func TestModelCheckAgreesWithLoader(t *testing.T) {
	breaks := map[string]func(t *testing.T, dir string){
		"intact": func(*testing.T, string) {},
		"scales dropped": func(t *testing.T, dir string) {
			rewriteHeader(t, filepath.Join(dir, "model.safetensors"), func(h map[string]json.RawMessage) {
				delete(h, "model.layers.1.mlp.up_proj.scales")
			})
		},
		"truncated": func(t *testing.T, dir string) {
			path := filepath.Join(dir, "model.safetensors")
			st, _ := os.Stat(path)
			os.Truncate(path, st.Size()-1000)
		},
		"vocab disagrees": func(t *testing.T, dir string) {
			path := filepath.Join(dir, "config.json")
			var cfg map[string]any
			b, _ := os.ReadFile(path)
			json.Unmarshal(b, &cfg)
			cfg["vocab_size"] = 1024
			b, _ = json.Marshal(cfg)
			os.WriteFile(path, b, 0o644)
		},
		"extra tensor": func(t *testing.T, dir string) {
			rewriteHeader(t, filepath.Join(dir, "model.safetensors"), func(h map[string]json.RawMessage) {
				h["model.layers.9.input_layernorm.weight"] = h["model.norm.weight"]
			})
		},
	}
	for name, breakIt := range breaks {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "tiny")
			if err := model.WriteTiny(dir, model.TinyPresets["tiny"]); err != nil {
				t.Fatal(err)
			}
			breakIt(t, dir)
			info, err := modeldir.Inspect(dir)
			var problems []modeldir.Problem
			if err == nil {
				problems = append(info.Problems, info.Check()...)
			}
			dryRunOK := err == nil && len(problems) == 0
			m, loadErr := model.Load(dir, model.LoadOptions{})
			if m != nil {
				m.Free()
			}
			if dryRunOK != (loadErr == nil) {
				t.Errorf("dry run accepts: %v (%v %v); loader: %v", dryRunOK, err, problems, loadErr)
			}
			if name == "intact" && !dryRunOK {
				t.Errorf("the intact model fails the dry run: %v %v", err, problems)
			}
		})
	}
}
