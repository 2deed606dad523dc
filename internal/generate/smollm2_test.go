package generate

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/yai-dev/yai/internal/ggufimport"
	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/testenv"
	"github.com/yai-dev/yai/internal/tokenizer"
	"github.com/yai-dev/yai/mlx"
)

var scratch string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "generate-test-*")
	if err != nil {
		panic(err)
	}
	scratch = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var imports sync.Map // name → *importResult

type importResult struct {
	once sync.Once
	dir  string
	err  error
}

// imported imports the real SmolLM2 GGUF once per test binary with opts.
func imported(t *testing.T, name string, opts ggufimport.Options) string {
	t.Helper()
	src := testenv.SmolLM2GGUF(t)
	v, _ := imports.LoadOrStore(name, &importResult{})
	r := v.(*importResult)
	r.once.Do(func() {
		r.dir = filepath.Join(scratch, name)
		_, r.err = ggufimport.Import(src, r.dir, opts)
	})
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.dir
}

// quickstartImport is the quickstart's import: 4-bit, group 32, float32 scales.
func quickstartImport(t *testing.T) string {
	opts := ggufimport.DefaultOptions()
	opts.GroupSize = 32
	return imported(t, "smollm2-4bit", opts)
}

// smolReference runs testdata/mlxlm_smollm2.py cmd on dir with in as JSON and decodes out.
func smolReference(t *testing.T, cmd, dir string, in, out any) {
	t.Helper()
	js, _ := json.Marshal(in)
	c := exec.Command(testenv.Python(t), "testdata/mlxlm_smollm2.py", cmd, dir)
	c.Stdin = bytes.NewReader(js)
	var stderr bytes.Buffer
	c.Stderr = &stderr
	res, err := c.Output()
	if err != nil {
		t.Fatalf("mlxlm_smollm2.py %s: %v\n%s", cmd, err, stderr.String())
	}
	if err := json.Unmarshal(res, out); err != nil {
		t.Fatal(err)
	}
}

func loadSmol(t *testing.T, dir string) (*model.Model, *tokenizer.Tokenizer) {
	t.Helper()
	tok, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(dir, model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Free)
	return m, tok
}

func chatPrompt(t *testing.T, tok *tokenizer.Tokenizer, question string) []int32 {
	t.Helper()
	text, err := tok.ApplyChatTemplate([]tokenizer.Message{{"role": "user", "content": question}}, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	return tok.Encode(text, false)
}

// The imported model, loaded by mlx-lm, generates the same greedy tokens as yai.
func TestSmolLM2GeneratesLikeMLXLM(t *testing.T) {
	dir := quickstartImport(t)
	m, tok := loadSmol(t, dir)
	prompts := [][]int32{
		chatPrompt(t, tok, "What is the capital of France?"),
		chatPrompt(t, tok, "Write a haiku about the sea."),
		tok.Encode("The history of the Roman Empire", false),
		tok.Encode("x", false), // one token: no prefill
	}
	const n = 24
	var want [][]int32
	smolReference(t, "generate", dir, map[string]any{"prompts": prompts, "max_tokens": n}, &want)
	for i, p := range prompts {
		var got []int32
		_, err := Generate(m, p, Options{MaxTokens: n}, func(id int32) error { got = append(got, id); return nil })
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want[i]) {
			t.Errorf("prompt %d: yai %q\nmlx-lm %q", i, tok.Decode(got, false), tok.Decode(want[i], false))
		}
	}
	answer, err := Answer(m, tok, "What is the capital of France?", 30)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("4-bit answer: %q", answer)
	if !bytes.Contains([]byte(answer), []byte("Paris")) {
		t.Errorf("answer %q does not name Paris", answer)
	}
}

// referenceText is English prose of well over 200 tokens, for teacher-forced comparisons.
const referenceText = `The river rose slowly through the night, and by morning the lower fields were under water. ` +
	`Farmers gathered at the old stone bridge to watch the current carry branches, fence posts and ` +
	`the occasional bewildered chicken downstream. Nobody could remember a flood like it since the ` +
	`winter their grandparents talked about, when the church bell rang for three days to warn the ` +
	`villages further south. The mayor, a practical woman who had run the bakery for twenty years, ` +
	`organised boats, blankets and bread, and by noon every family from the low houses had found a ` +
	`dry place to sleep. In the afternoon the rain stopped. The sun came out over the hills, and ` +
	`children ran along the new shoreline collecting smooth stones, while their parents counted ` +
	`what had been lost and what could still be saved. Engineers from the city arrived two days ` +
	`later with maps, measuring tapes and a great deal of advice, most of which the villagers had ` +
	`already followed. They proposed a new dam, a wider channel and a warning system with sirens. ` +
	`The villagers listened politely, thanked them for coming, and asked who would pay for it all.`

// positions is how many teacher-forced positions are compared.
const positions = 200

// teacherForced returns yai's argmax at each of the first positions tokens.
func teacherForced(t *testing.T, m *model.Model, ids []int32) []int32 {
	t.Helper()
	var out []int32
	err := mlx.Do(func() error {
		x := mlx.FromSlice(ids, 1, len(ids))
		logits := m.Forward(x)
		arg := mlx.Argmax(logits, -1, false)
		out = arg.Ints()
		mlx.Free(x, logits, arg)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func agreement(a, b []int32) float64 {
	same := 0
	for i := range a {
		if a[i] == b[i] {
			same++
		}
	}
	return float64(same) / float64(len(a))
}

// Where bit-exact equality cannot be expected (float16 arithmetic in a different op order),
// the top-1 tokens agree with mlx-lm at ≥ 95% of 200 teacher-forced positions; yai's 4-bit
// import agrees with the float16 reference as much as 4-bit weights allow.
func TestTeacherForcedTop1MatchesMLXLM(t *testing.T) {
	f16 := imported(t, "smollm2-f16", ggufimport.Options{Bits: 0, Dtype: mlx.Float16})
	q4 := quickstartImport(t)
	mf16, tok := loadSmol(t, f16)
	ids := tok.Encode(referenceText, false)
	if len(ids) < positions {
		t.Fatalf("reference text has %d tokens, want ≥ %d", len(ids), positions)
	}
	ids = ids[:positions]
	var refF16, refQ4 []int32
	smolReference(t, "argmax", f16, map[string]any{"ids": ids}, &refF16)
	smolReference(t, "argmax", q4, map[string]any{"ids": ids}, &refQ4)

	gotF16 := teacherForced(t, mf16, ids)
	if a := agreement(gotF16, refF16); a < 0.95 {
		t.Errorf("float16: yai and mlx-lm agree at %.1f%% of positions, want ≥ 95%%", 100*a)
	} else {
		t.Logf("float16: yai and mlx-lm agree at %.1f%% of %d positions", 100*a, positions)
	}
	mq4, _ := loadSmol(t, q4)
	gotQ4 := teacherForced(t, mq4, ids)
	if a := agreement(gotQ4, refQ4); a < 0.95 {
		t.Errorf("4-bit: yai and mlx-lm agree at %.1f%% of positions, want ≥ 95%%", 100*a)
	} else {
		t.Logf("4-bit: yai and mlx-lm agree at %.1f%% of %d positions", 100*a, positions)
	}
	a := agreement(gotQ4, refF16)
	t.Logf("4-bit (yai) against the float16 reference (mlx-lm): %.1f%% top-1 agreement", 100*a)
	if a < 0.6 {
		t.Errorf("4-bit import agrees with the float16 reference at only %.1f%% of positions", 100*a)
	}
}
