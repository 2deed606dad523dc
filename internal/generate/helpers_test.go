package generate

import (
	"encoding/json"
	"math/rand"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/yai-dev/yai/internal/testenv"
	"github.com/yai-dev/yai/internal/testmodel"
)

// reference runs testdata/mlxlm_generate.py and decodes its JSON answer into v.
func reference(t testing.TB, v any, args ...string) {
	t.Helper()
	cmd := exec.Command(testenv.Python(t), append([]string{filepath.Join("testdata", "mlxlm_generate.py")}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("mlxlm_generate.py %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("mlxlm_generate.py answer %q: %v", out, err)
	}
}

type referenceRun struct {
	Tokens        []int32   `json:"tokens"`
	Text          string    `json:"text"`
	Prompt        []int32   `json:"prompt"`
	PromptTPS     float64   `json:"prompt_tps"`
	GenerationTPS float64   `json:"generation_tps"`
	AllPromptTPS  []float64 `json:"all_prompt_tps"`
	AllGenTPS     []float64 `json:"all_generation_tps"`
	FinishReason  string    `json:"finish_reason"`
}

func tinyModel(t testing.TB, preset string) string { return testmodel.Tiny(t, preset) }

func randomAdapter(t testing.TB, modelDir string, seed uint64) string {
	return testmodel.RandomAdapter(t, modelDir, seed, 0.3)
}

func randomPrompt(seed int64, n, vocab int) []int32 {
	r := rand.New(rand.NewSource(seed))
	ids := make([]int32, n)
	for i := range ids {
		ids[i] = int32(r.Intn(vocab))
	}
	return ids
}

func idsArg(ids []int32) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.Itoa(int(id))
	}
	return strings.Join(parts, ",")
}

func mustLoad(t testing.TB, modelDir, adapter string) *Loaded {
	t.Helper()
	l, err := Load(modelDir, adapter)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// collect generates greedily and returns the tokens.
func collect(t testing.TB, l *Loaded, prompt []int32, maxTokens int) ([]int32, Stats) {
	t.Helper()
	var got []int32
	st, err := Generate(l.Model, prompt, Options{MaxTokens: maxTokens, Stop: l.Tokenizer.EOS()},
		func(tok int32) error { got = append(got, tok); return nil })
	if err != nil {
		t.Fatal(err)
	}
	return got, st
}
