package generate

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/yai-dev/yai/internal/ggufimport"
	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/testenv"
)

// BenchmarkGenerateVsMLXLM generates greedily from the same model and prompt (256 prompt
// tokens, up to 256 new tokens) with yai and with mlx_lm's stream_generate in the same run,
// and reports both tokens/s figures of each and their ratios (yai / mlx_lm; above 1 is
// faster). The two alternate run by run, mlx_lm in a process that stays loaded, so a
// machine shared with other work slows both alike; the figures are medians after one
// warm-up each. The "wide" case (hidden 512, 4 blocks) weighs compute more than
// per-operation overhead.
func BenchmarkGenerateVsMLXLM(b *testing.B) {
	b.Run("tiny", func(b *testing.B) { benchmarkVsMLXLM(b, tinyModel(b, "tiny")) })
	b.Run("wide", func(b *testing.B) {
		spec := model.TinyPresets["tiny"]
		spec.Config.HiddenSize, spec.Config.IntermediateSize, spec.Config.NumHiddenLayers = 512, 1408, 4
		spec.Config.NumAttentionHeads, spec.Config.NumKeyValueHeads, spec.Config.HeadDim = 8, 2, 64
		dir := filepath.Join(b.TempDir(), "wide")
		if err := model.WriteTiny(dir, spec); err != nil {
			b.Fatal(err)
		}
		benchmarkVsMLXLM(b, dir)
	})
}

func benchmarkVsMLXLM(b *testing.B, dir string) {
	l := mustLoad(b, dir, "")
	defer l.Free()
	prompt := randomPrompt(21, 256, 1000)
	const maxTokens = 256
	ref := startReference(b, dir, prompt, maxTokens)
	defer ref.stop()
	collect(b, l, prompt, maxTokens) // warm-up
	ref.run(b)
	var promptTPS, genTPS, refPrompt, refGen []float64
	var tokens []int32
	for b.Loop() {
		var st Stats
		tokens, st = collect(b, l, prompt, maxTokens)
		promptTPS = append(promptTPS, st.PromptTPS)
		genTPS = append(genTPS, st.GenerationTPS)
		b.StopTimer()
		r := ref.run(b)
		if !slices.Equal(tokens, r.Tokens) {
			b.Fatalf("yai and mlx_lm generated different tokens")
		}
		refPrompt = append(refPrompt, r.PromptTPS)
		refGen = append(refGen, r.GenerationTPS)
		b.StartTimer()
	}
	b.Logf("per run, tokens/s: yai prompt %.0f\nmlx_lm prompt %.0f\nyai generation %.0f\nmlx_lm generation %.0f", promptTPS, refPrompt, genTPS, refGen)
	p, g, rp, rg := median(promptTPS), median(genTPS), median(refPrompt), median(refGen)
	b.ReportMetric(p, "prompt_tok/s")
	b.ReportMetric(g, "gen_tok/s")
	b.ReportMetric(rp, "mlxlm_prompt_tok/s")
	b.ReportMetric(rg, "mlxlm_gen_tok/s")
	b.ReportMetric(p/rp, "prompt_x")
	b.ReportMetric(g/rg, "gen_x")
	b.Logf("%d generated tokens; yai prompt %.0f tok/s, generation %.0f tok/s; mlx_lm prompt %.0f tok/s, generation %.0f tok/s; ratios %.2fx, %.2fx",
		len(tokens), p, g, rp, rg, p/rp, g/rg)
}

// mlxlmProcess is an mlx_lm process holding the model, generating once per request.
type mlxlmProcess struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func startReference(b *testing.B, dir string, prompt []int32, maxTokens int) *mlxlmProcess {
	cmd := exec.Command(testenv.Python(b), filepath.Join("testdata", "mlxlm_generate.py"), "serve", dir, "-", idsArg(prompt), fmt.Sprint(maxTokens))
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	return &mlxlmProcess{cmd: cmd, in: in, out: bufio.NewReader(out)}
}

func (r *mlxlmProcess) run(b *testing.B) referenceRun {
	if _, err := io.WriteString(r.in, "run\n"); err != nil {
		b.Fatal(err)
	}
	line, err := r.out.ReadBytes('\n')
	if err != nil {
		b.Fatalf("mlx_lm reference: %v", err)
	}
	var rr referenceRun
	if err := json.Unmarshal(line, &rr); err != nil {
		b.Fatal(err)
	}
	return rr
}

func (r *mlxlmProcess) stop() {
	r.in.Close()
	r.cmd.Wait()
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

// BenchmarkGenerateSmolLM2 times a 32-token greedy answer of the quickstart's 4-bit SmolLM2
// (prefill of the chat prompt included) and reports tokens per second.
func BenchmarkGenerateSmolLM2(b *testing.B) {
	opts := ggufimport.DefaultOptions()
	opts.GroupSize = 32
	dir := b.TempDir() + "/m"
	if _, err := ggufimport.Import(testenv.SmolLM2GGUF(b), dir, opts); err != nil {
		b.Fatal(err)
	}
	l := mustLoad(b, dir, "")
	defer l.Free()
	prompt, err := PromptTokens(l.Tokenizer, "", "Write a long story.", false)
	if err != nil {
		b.Fatal(err)
	}
	const n = 32
	for b.Loop() {
		if _, err := Generate(l.Model, prompt, Options{MaxTokens: n}, func(int32) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "tok/s")
}
