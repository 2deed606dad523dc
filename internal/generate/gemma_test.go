package generate

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/yai-dev/yai/internal/testenv"
	"github.com/yai-dev/yai/internal/testmodel"
)

// referenceModel writes a random model of config with mlx-lm's own module (the model
// package's mlxlm_reference.py) and the tiny tokenizer, so mlx_lm.load reads it.
func referenceModel(t testing.TB, config map[string]any, flags ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "model")
	js, err := json.Marshal(config)
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join("..", "model", "testdata", "mlxlm_reference.py")
	cmd := exec.Command(testenv.Python(t), append([]string{script, "write", dir, string(js), "3"}, flags...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("mlxlm_reference.py write: %v\n%s", err, stderr.String())
	}
	for _, name := range []string{"tokenizer.json", "tokenizer_config.json"} {
		b, err := os.ReadFile(filepath.Join("..", "model", "tinytokenizer", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func gemmaTextConfig() map[string]any {
	return map[string]any{
		"model_type": "gemma3_text", "hidden_size": 128, "num_hidden_layers": 3, "intermediate_size": 256,
		"num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 32, "vocab_size": 1024, "rms_norm_eps": 1e-6,
		"query_pre_attn_scalar": 32, "sliding_window": 4, "sliding_window_pattern": 2,
	}
}

// Greedy decoding of sliding-window models (a window of 4, far shorter than prompt and
// output) gives exactly mlx_lm.generate's tokens: Gemma 3 (text, and multimodal with an
// adapter named under language_model.*), Gemma 2's softcapped attention with its full
// cache, and Llama's sliding layers. Prompts shorter than the window, longer than it, and
// longer than PrefillStep (the second chunk joins a full rotating cache) are all decoded.
func TestGreedyMatchesMLXLMWithWindows(t *testing.T) {
	llama := map[string]any{"model_type": "llama", "hidden_size": 128, "num_hidden_layers": 2, "intermediate_size": 256,
		"num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 1024, "rms_norm_eps": 1e-5,
		"tie_word_embeddings": true, "layer_types": []string{"sliding_attention", "full_attention"}, "sliding_window": 4}
	gemma2 := map[string]any{"model_type": "gemma2", "hidden_size": 128, "num_hidden_layers": 2, "intermediate_size": 256,
		"num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 32, "vocab_size": 1024, "rms_norm_eps": 1e-6,
		"attn_logit_softcapping": 5.5, "final_logit_softcapping": 8.5}
	wrapped := map[string]any{"model_type": "gemma3", "vocab_size": 1024, "text_config": gemmaTextConfig()}
	for _, tc := range []struct {
		name    string
		config  map[string]any
		flags   []string
		adapter bool
		prompts []int
	}{
		{name: "gemma3_text-bf16", config: gemmaTextConfig(), flags: []string{"--dtype", "bfloat16"}, prompts: []int{3, 40, PrefillStep + 10}},
		{name: "gemma3_text-4bit", config: gemmaTextConfig(), flags: []string{"--bits", "4", "--group-size", "64", "--dtype", "bfloat16", "--tie"}, prompts: []int{40}},
		{name: "gemma3-float32-adapter", config: wrapped, flags: []string{"--dtype", "float32"}, adapter: true, prompts: []int{40}},
		{name: "gemma2-float32", config: gemma2, flags: []string{"--dtype", "float32"}, prompts: []int{40}},
		{name: "llama-sliding-float32", config: llama, flags: []string{"--dtype", "float32"}, prompts: []int{3, 40}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := referenceModel(t, tc.config, tc.flags...)
			ad, refAdapter := "", "-"
			if tc.adapter {
				ad = testmodel.RandomAdapter(t, dir, 5, 0.3)
				refAdapter = ad
			}
			l := mustLoad(t, dir, ad)
			defer l.Free()
			for _, n := range tc.prompts {
				prompt := randomPrompt(int64(n), n, 1000)
				const maxTokens = 24
				got, _ := collect(t, l, prompt, maxTokens)
				var want referenceRun
				reference(t, &want, "generate", dir, refAdapter, idsArg(prompt), fmt.Sprint(maxTokens))
				if !slices.Equal(got, want.Tokens) {
					t.Fatalf("%d-token prompt: tokens differ from mlx_lm:\n yai    %v\n mlx_lm %v", n, got, want.Tokens)
				}
				if tc.adapter {
					// mlx-lm loads adapters leniently: one misnamed would be ignored there, and
					// the tokens would then still be the base model's.
					var base referenceRun
					reference(t, &base, "generate", dir, "-", idsArg(prompt), fmt.Sprint(maxTokens))
					if slices.Equal(base.Tokens, want.Tokens) {
						t.Errorf("the adapter did not change mlx_lm's output: the comparison proves nothing")
					}
				}
				t.Logf("%d-token prompt: %d tokens equal mlx_lm's", n, len(got))
			}
		})
	}
}
