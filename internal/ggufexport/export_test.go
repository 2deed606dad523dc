package ggufexport

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/yai-dev/yai/internal/fuse"
	"github.com/yai-dev/yai/internal/gguf"
	"github.com/yai-dev/yai/internal/ggufimport"
	"github.com/yai-dev/yai/internal/lora"
	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/testenv"
	"github.com/yai-dev/yai/internal/testmodel"
	"github.com/yai-dev/yai/internal/testtrain"
	"github.com/yai-dev/yai/internal/tokenizer"
	"github.com/yai-dev/yai/mlx"
)

var scratch string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ggufexport-test-*")
	if err != nil {
		panic(err)
	}
	scratch = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// text is English prose of well over 300 tokens, for teacher-forced comparisons.
const text = `The river rose slowly through the night, and by morning the lower fields were under water. ` +
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
	`The villagers listened politely, thanked them for coming, and asked who would pay for it all. ` +
	`In the end the money came from three places: the regional council, a fund for rural roads that ` +
	`nobody had touched in a decade, and a fair on the village green where the baker sold more bread ` +
	`in one afternoon than she usually sold in a month. The dam was finished the next autumn, two ` +
	`weeks before the first storms, and the sirens were tested on a quiet Sunday morning. Half the ` +
	`village ran outside in their slippers, convinced that the river had come back; the other half ` +
	`slept through it. The mayor declared the test a success on both counts. Years later, when ` +
	`children asked about the great flood, the old farmers would point at the line of dried mud ` +
	`still visible on the church wall, and then at the dam, and tell them that water always ` +
	`remembers where it has been, so people had better remember it too. The baker, for her part, ` +
	`kept a loaf-shaped stone from the riverbank on her counter, and told anyone who asked that it ` +
	`was the only bread in the village that had never gone stale.`

// positions is how many teacher-forced positions are compared.
const positions = 300

// fixture is the real SmolLM2 imported as the quickstart imports it, random nonzero
// adapters on its last 8 blocks, and the token ids compared.
type fixture struct {
	model, adapters string
	ids             []int32
	scale           float64
}

var (
	fixOnce sync.Once
	fix     fixture
	fixErr  error
	exports sync.Map // name → *exported
)

func smol(t *testing.T) fixture {
	t.Helper()
	src := testenv.SmolLM2GGUF(t)
	fixOnce.Do(func() { fixErr = makeFixture(src) })
	if fixErr != nil {
		t.Fatal(fixErr)
	}
	return fix
}

func makeFixture(src string) error {
	fix.model = filepath.Join(scratch, "smollm2")
	fix.adapters = filepath.Join(scratch, "adapters")
	fix.scale = 2
	if _, err := ggufimport.Import(src, fix.model, ggufimport.Options{Bits: 4, GroupSize: 32, Dtype: mlx.Float32}); err != nil {
		return err
	}
	m, err := model.Load(fix.model, model.LoadOptions{})
	if err != nil {
		return err
	}
	defer m.Free()
	a, err := lora.Attach(m.Layers, lora.Config{Rank: 8, Scale: fix.scale, NumLayers: 8, Seed: 3})
	if err != nil {
		return err
	}
	defer a.Free()
	// lora_b starts at zero; random values make every adapter count, strongly enough to
	// move the model's predictions.
	r := rand.New(rand.NewPCG(1, 2))
	err = mlx.Do(func() error {
		for _, l := range a.Layers {
			v := make([]float32, l.B.Dim(0)*l.B.Dim(1))
			for i := range v {
				v[i] = float32(r.NormFloat64() * 0.5)
			}
			old := l.B
			l.B = mlx.FromSlice(v, l.B.Dim(0), l.B.Dim(1))
			old.Free()
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := a.Save(fix.adapters); err != nil {
		return err
	}
	tok, err := tokenizer.Load(fix.model)
	if err != nil {
		return err
	}
	fix.ids = tok.Encode(text, false)
	if len(fix.ids) < positions+1 {
		return &testError{"the text has too few tokens"}
	}
	fix.ids = fix.ids[:positions+1]
	return nil
}

type testError struct{ s string }

func (e *testError) Error() string { return e.s }

type exported struct {
	once sync.Once
	res  *Result
	err  error
}

// export runs an export once per test binary.
func export(t *testing.T, name string, run func(out string) (*Result, error)) *Result {
	t.Helper()
	v, _ := exports.LoadOrStore(name, &exported{})
	e := v.(*exported)
	e.once.Do(func() { e.res, e.err = run(filepath.Join(scratch, name)) })
	if e.err != nil {
		t.Fatal(e.err)
	}
	return e.res
}

func mergedExport(t *testing.T, f fixture, typ gguf.TensorType, withAdapters bool) string {
	name, adapters := "merged-"+typ.String(), f.adapters
	if !withAdapters {
		name, adapters = "base-"+typ.String(), ""
	}
	res := export(t, name, func(out string) (*Result, error) {
		return Merged(f.model, adapters, out, MergedOptions{Type: typ, Name: "smol"})
	})
	return filepath.Join(res.Dir, res.Files[0])
}

func adapterExport(t *testing.T, f fixture) string {
	res := export(t, "lora", func(out string) (*Result, error) {
		return Adapter(f.model, f.adapters, out, AdapterOptions{BaseGGUF: testenv.SmolLM2GGUF(t)})
	})
	return filepath.Join(res.Dir, AdapterFile)
}

// teacher is a teacher-forced pass: the top-1 token at each position and the
// log-probability of the token that follows.
type teacher struct {
	Top1    []int32   `json:"top1"`
	Logprob []float64 `json:"logprob"`
}

func (p teacher) loss() float64 {
	s := 0.0
	for _, l := range p.Logprob {
		s -= l
	}
	return s / float64(len(p.Logprob))
}

// yaiTeacher runs the model in dir (with the adapters in adapterDir, if any).
func yaiTeacher(t *testing.T, dir, adapterDir string, ids []int32) teacher {
	t.Helper()
	m, err := model.Load(dir, model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	if adapterDir != "" {
		a, err := lora.Load(m.Layers, adapterDir)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Free()
	}
	var logits []float32
	err = mlx.Do(func() error {
		x := mlx.FromSlice(ids, 1, len(ids))
		y := m.Forward(x)
		logits = y.Floats()
		mlx.Free(x, y)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	v := len(logits) / len(ids)
	var p teacher
	for i := 0; i+1 < len(ids); i++ {
		row := logits[i*v : (i+1)*v]
		best, mx := 0, row[0]
		for j, x := range row {
			if x > mx {
				best, mx = j, x
			}
		}
		s := 0.0
		for _, x := range row {
			s += math.Exp(float64(x - mx))
		}
		p.Top1 = append(p.Top1, int32(best))
		p.Logprob = append(p.Logprob, float64(row[ids[i+1]]-mx)-math.Log(s))
	}
	return p
}

// llamaCpp runs testdata/llamacpp_teacher.mjs: llama.cpp's own teacher-forced pass.
func llamaCpp(t *testing.T, modelPath, loraPath string, scale float64, ids []int32) teacher {
	t.Helper()
	p, err := runLlamaCpp(testenv.ModuleRoot(t), modelPath, loraPath, scale, ids)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// runLlamaCpp is llamaCpp for any goroutine: its failure is an error.
func runLlamaCpp(root, modelPath, loraPath string, scale float64, ids []int32) (teacher, error) {
	var p teacher
	module := filepath.Join(root, ".node", "node_modules", "node-llama-cpp")
	if _, err := os.Stat(filepath.Join(module, "dist", "index.js")); err != nil {
		return p, fmt.Errorf("node-llama-cpp is missing from %s: run `go tool task setup`", module)
	}
	in, _ := json.Marshal(map[string]any{"module": module, "model": modelPath, "lora": loraPath, "scale": scale, "ids": ids})
	cmd := exec.Command("node", filepath.Join(root, "internal", "ggufexport", "testdata", "llamacpp_teacher.mjs"))
	cmd.Env = append(os.Environ(), "NODE_LLAMA_CPP_SKIP_DOWNLOAD=true", "NODE_LLAMA_CPP_GPU=false")
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return p, fmt.Errorf("llamacpp_teacher.mjs %s: %v\n%s", filepath.Base(modelPath), err, stderr.String())
	}
	if err := json.Unmarshal(out, &p); err != nil {
		return p, err
	}
	if len(p.Top1) != len(ids)-1 {
		return p, fmt.Errorf("llama.cpp gave %d positions, want %d", len(p.Top1), len(ids)-1)
	}
	return p, nil
}

// agree compares two passes: top-1 agreement at least minAgree and losses within maxLoss.
func agree(t *testing.T, what string, got, want teacher, minAgree, maxLoss float64) {
	t.Helper()
	same := 0
	for i := range got.Top1 {
		if got.Top1[i] == want.Top1[i] {
			same++
		}
	}
	a := float64(same) / float64(len(got.Top1))
	dl := math.Abs(got.loss() - want.loss())
	t.Logf("%s: top-1 agreement %.2f%% of %d positions; loss %.5f against %.5f (difference %.5f nats)",
		what, 100*a, len(got.Top1), got.loss(), want.loss(), dl)
	if a < minAgree {
		t.Errorf("%s: top-1 agreement %.2f%%, want ≥ %.0f%%", what, 100*a, 100*minAgree)
	}
	if dl > maxLoss {
		t.Errorf("%s: loss differs by %.5f nats, want ≤ %g", what, dl, maxLoss)
	}
}

// The merged F16 GGUF, run by llama.cpp, predicts what yai's fused float model predicts;
// the base GGUF with the exported LoRA adapter predicts what yai with its adapters does.
func TestLlamaCppAgreesWithYai(t *testing.T) {
	start := time.Now()
	step := func(what string) { t.Logf("%6.1fs %s", time.Since(start).Seconds(), what) }
	defer step("done")
	f := smol(t)
	step("fixture")
	mf16 := mergedExport(t, f, gguf.F16, true)
	lora := adapterExport(t, f)
	base16 := mergedExport(t, f, gguf.F16, false)
	step("exports")

	// llama.cpp (one thread, in node) runs its passes while yai runs its own.
	type pass struct {
		model, lora string
		got         teacher
		err         error
	}
	passes := map[string]*pass{
		"merged": {model: mf16}, "lora": {model: base16, lora: lora}, "base": {model: base16},
		"imported+lora": {model: testenv.SmolLM2GGUF(t), lora: lora}, "imported": {model: testenv.SmolLM2GGUF(t)},
	}
	root := testenv.ModuleRoot(t)
	var wg sync.WaitGroup
	wg.Go(func() {
		for _, name := range []string{"merged", "lora", "base", "imported+lora", "imported"} {
			p := passes[name]
			scale := 0.0
			if p.lora != "" {
				scale = 1
			}
			p.got, p.err = runLlamaCpp(root, p.model, p.lora, scale, f.ids)
			step("llama.cpp " + name)
		}
	})
	fused := filepath.Join(scratch, "fused")
	_, err := fuse.Fuse(f.model, f.adapters, fused, fuse.Options{Dequantize: true})
	var yaiFused, yaiLive teacher
	if err == nil {
		step("fuse")
		yaiFused = yaiTeacher(t, fused, "", f.ids)
		step("yai fused")
		yaiLive = yaiTeacher(t, f.model, f.adapters, f.ids)
		step("yai live")
	}
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range passes {
		if p.err != nil {
			t.Fatal(p.err)
		}
	}
	t.Logf("yai: loss %.4f with the adapters, %.4f fused", yaiLive.loss(), yaiFused.loss())
	merged, withLora, plainBase := passes["merged"].got, passes["lora"].got, passes["base"].got
	agree(t, "merged F16 GGUF in llama.cpp vs yai's fused float model", merged, yaiFused, 0.99, 0.002)
	agree(t, "base F16 GGUF + GGUF LoRA in llama.cpp vs yai with its adapters", withLora, yaiLive, 0.99, 0.002)
	if d := math.Abs(plainBase.loss() - yaiLive.loss()); d < 0.1 {
		t.Fatalf("the adapters hardly change the loss (%.4f → %.4f): the comparisons prove nothing", plainBase.loss(), yaiLive.loss())
	}

	// The GGUF the model was imported from takes the adapter too. Its weights are the Q4_1
	// originals (and its embedding is not 4-bit), not yai's 4-bit re-quantization of them,
	// so the losses differ: the change the adapter makes must agree.
	onImported, plain := passes["imported+lora"].got, passes["imported"].got
	onYai, onOriginal := withLora.loss()-plainBase.loss(), onImported.loss()-plain.loss()
	t.Logf("the adapter changes the loss by %+.4f on the imported Q4_1 GGUF (%.4f → %.4f), by %+.4f on yai's base export (%.4f → %.4f)",
		onOriginal, plain.loss(), onImported.loss(), onYai, plainBase.loss(), withLora.loss())
	if math.Abs(onOriginal-onYai) > 0.1*math.Abs(onYai) {
		t.Errorf("on the imported GGUF the adapter changes the loss by %+.4f, on yai's export by %+.4f: more than 10%% apart", onOriginal, onYai)
	}
}

// The tiny tokenizer adds <|begin_of_text|> through its post-processor, as Llama 3's does,
// with no add_bos_token in tokenizer_config.json: the merged GGUF says to add it
// (tokenizer.ggml.add_bos_token, as llama.cpp's converter reads the post-processor), so the
// file read back tokenizes as the model does and computes the same validation loss.
func TestMergedKeepsTheTokenizersBOS(t *testing.T) {
	dir := testmodel.Tiny(t, "micro")
	res, err := Merged(dir, "", filepath.Join(t.TempDir(), "base"), MergedOptions{Type: gguf.F32})
	if err != nil {
		t.Fatal(err)
	}
	g, err := gguf.Open(filepath.Join(res.Dir, res.Files[0]))
	if err != nil {
		t.Fatal(err)
	}
	add, _ := g.Metadata.Bool("tokenizer.ggml.add_bos_token")
	g.Close()
	if !add {
		t.Errorf("tokenizer.ggml.add_bos_token is not true")
	}
	back := filepath.Join(t.TempDir(), "back")
	if _, err := ggufimport.Import(filepath.Join(res.Dir, res.Files[0]), back, ggufimport.Options{Dtype: mlx.Float32}); err != nil {
		t.Fatal(err)
	}
	d := fuse.Data{File: filepath.Join(testtrain.QuickstartData(t), "valid.jsonl")}
	want, err := fuse.MeasureModel(dir, d)
	if err != nil {
		t.Fatal(err)
	}
	got, err := fuse.MeasureModel(back, d)
	if err != nil {
		t.Fatal(err)
	}
	if got.Tokens != want.Tokens || math.Abs(got.Loss-want.Loss) > 1e-5 {
		t.Errorf("read back: %d tokens, loss %.6f; the model: %d tokens, loss %.6f", got.Tokens, got.Loss, want.Tokens, want.Loss)
	}
}
