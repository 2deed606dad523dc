package testmodel

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/testenv"
)

// Family is one architecture the cross-checks of every command against mlx-lm cover
// (training, generation, fuse): a small model of it and the projections its adapters wrap.
type Family struct {
	Name   string   // the modeldir family (mlx-lm's module)
	Preset string   // its model.TinyPresets entry
	Keys   []string // the block-relative projections the tests adapt, the family's own among them
}

// Families lists one row per modeldir family; a new family adds its tiny preset and a row.
var Families = []Family{
	{Name: "llama", Preset: "micro", Keys: AdapterKeys},
	{Name: "qwen2", Preset: "tiny-qwen2", Keys: []string{"self_attn.q_proj", "self_attn.k_proj", "mlp.up_proj"}},
	{Name: "qwen3", Preset: "tiny-qwen3", Keys: []string{"self_attn.q_proj", "self_attn.o_proj", "mlp.gate_proj"}},
	{Name: "phi3", Preset: "tiny-phi3", Keys: []string{"self_attn.qkv_proj", "mlp.gate_up_proj", "mlp.down_proj"}},
	{Name: "mixtral", Preset: "tiny-mixtral", Keys: []string{"self_attn.q_proj", "block_sparse_moe.switch_mlp.down_proj", "block_sparse_moe.switch_mlp.gate_proj"}},
	{Name: "gemma2", Preset: "tiny-gemma2", Keys: []string{"self_attn.q_proj", "self_attn.o_proj", "mlp.gate_proj"}},
	{Name: "gemma3_text", Preset: "tiny-gemma3", Keys: []string{"self_attn.k_proj", "self_attn.v_proj", "mlp.down_proj"}},
	{Name: "gemma3", Preset: "tiny-gemma3-multimodal", Keys: []string{"self_attn.q_proj", "mlp.up_proj"}},
	{Name: "qwen3_moe", Preset: "tiny-qwen3-moe", Keys: []string{"self_attn.v_proj", "mlp.down_proj", "mlp.switch_mlp.up_proj"}},
}

// MLXLMModel writes the family's preset with mlx-lm's own module instead of WriteTiny: the
// preset's config.json (without quantization) through internal/model/testdata/
// mlxlm_reference.py write, whose flags (--bits, --group-size, --dtype) pick the packing.
// The directory has no tokenizer.
func MLXLMModel(tb testing.TB, f Family, seed int, flags ...string) string {
	tb.Helper()
	spec := model.TinyPresets[f.Preset]
	spec.Quant, spec.LayerQuant = nil, nil
	cfg, err := model.TinyConfigJSON(spec)
	if err != nil {
		tb.Fatal(err)
	}
	var arg bytes.Buffer // one line, the numbers as written (2.0 stays a float)
	if err := json.Compact(&arg, cfg); err != nil {
		tb.Fatal(err)
	}
	dir := filepath.Join(tb.TempDir(), f.Name+"-mlxlm")
	script := filepath.Join(testenv.ModuleRoot(tb), "internal", "model", "testdata", "mlxlm_reference.py")
	args := append([]string{script, "write", dir, arg.String(), fmt.Sprint(seed)}, flags...)
	cmd := exec.Command(testenv.Python(tb), args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("mlxlm_reference.py write %s: %v\n%s", strings.Join(flags, " "), err, out)
	}
	return dir
}
