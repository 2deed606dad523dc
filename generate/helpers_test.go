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
	"github.com/yai-dev/yai/lora"
	"github.com/yai-dev/yai/mlx"
	"github.com/yai-dev/yai/model"
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

// tinyModel writes the named tiny preset into a temporary directory.
func tinyModel(t testing.TB, preset string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), preset)
	if err := model.WriteTiny(dir, model.TinyPresets[preset]); err != nil {
		t.Fatal(err)
	}
	return dir
}

// randomAdapter writes adapters for the model in modelDir whose lora_b is random (fresh
// adapters have lora_b = 0 and change nothing), so an adapted model answers differently.
func randomAdapter(t testing.TB, modelDir string, seed uint64) string {
	t.Helper()
	m, err := model.Load(modelDir, model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	a, err := lora.Attach(m.Layers, lora.Config{Rank: 4, Scale: 4, NumLayers: 2, Seed: seed,
		Keys: []string{"self_attn.q_proj", "self_attn.v_proj", "mlp.down_proj"}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Detach()
	err = mlx.Do(func() error {
		key := mlx.RandomKey(seed + 1)
		defer key.Free()
		ps := a.Params()
		fresh := make([]*mlx.Array, len(ps))
		for i, p := range ps {
			k2 := mlx.RandomSplit(key, i+2)
			k := mlx.SliceAxis(k2, 0, i+1, i+2)
			kk := mlx.Squeeze(k, 0)
			fresh[i] = mlx.Normal(kk, p.Shape(), mlx.Float32, 0, 0.3)
			mlx.Free(k2, k, kk)
		}
		mlx.Eval(fresh...)
		a.Replace(fresh)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "adapters")
	if err := a.Save(dir); err != nil {
		t.Fatal(err)
	}
	return dir
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
