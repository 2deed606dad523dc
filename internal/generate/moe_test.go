package generate

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/testenv"
)

// Greedy generation from a 4-bit Mixtral written by mlx-lm (with the tiny tokenizer) gives
// mlx_lm's tokens: the prefill gathers token-expert pairs sorted by expert, each decoding
// step unsorted.
func TestMixtralGreedyMatchesMLXLM(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mixtral")
	cfg, _ := json.Marshal(map[string]any{"model_type": "mixtral", "hidden_size": 64, "num_hidden_layers": 2, "intermediate_size": 128,
		"num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": model.TinyVocabSize, "rms_norm_eps": 1e-5,
		"num_local_experts": 4, "num_experts_per_tok": 2})
	script := filepath.Join(testenv.ModuleRoot(t), "internal", "model", "testdata", "mlxlm_reference.py")
	write := exec.Command(testenv.Python(t), script, "write", dir, string(cfg), "6", "--bits", "4", "--group-size", "32", "--dtype", "bfloat16")
	if out, err := write.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	tiny := tinyModel(t, "micro")
	for _, f := range []string{"tokenizer.json", "tokenizer_config.json"} {
		data, err := os.ReadFile(filepath.Join(tiny, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	prompt := randomPrompt(5, 40, model.TinyVocabSize)
	const maxTokens = 32
	l := mustLoad(t, dir, "")
	defer l.Free()
	got, _ := collect(t, l, prompt, maxTokens)
	var want referenceRun
	reference(t, &want, "generate", dir, "-", idsArg(prompt), fmt.Sprint(maxTokens))
	if !slices.Equal(got, want.Tokens) {
		t.Fatalf("tokens differ from mlx_lm:\n yai    %v\n mlx_lm %v", got, want.Tokens)
	}
	t.Logf("%d tokens equal mlx_lm's: %v", len(got), got)
}
