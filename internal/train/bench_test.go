package train

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/yai-dev/yai/internal/lora"
	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/optim"
	"github.com/yai-dev/yai/internal/testenv"
	"github.com/yai-dev/yai/mlx"
)

// Benchmark shape: a generated 4-bit Llama with float32 scales (float16 matmuls are slow on
// the CPU backend), mlx-lm's text dataset layout, batch 4.
// Each side trains benchIters steps; the first benchWarmup (compile, cache warm-up) are not
// timed, as mlx-lm's first report window is dropped.
const (
	benchLayers = 8
	benchHidden = 128
	benchBatch  = 4
	benchIters  = 40
	benchWarmup = 10
)

type benchFigures struct {
	stepsPerSec, tokensPerSec float64
	peakBytes                 uint64
}

// BenchmarkVersusMLXLM trains the same model on the same batches with the same LoRA
// configuration in yai and in `python -m mlx_lm lora`, and prints steps/s, tokens/s and peak
// MLX memory of both with the ratios. Targets: yai ≥ 1.0× steps/s, ≤ 1.0× peak memory.
func BenchmarkVersusMLXLM(b *testing.B) {
	modelDir, dataDir := makeModel(b, "float32", benchLayers, benchHidden, 400)
	batchesFile := filepath.Join(b.TempDir(), "batches.safetensors")
	runPython(b, "testdata/bench_prepare.py", modelDir, dataDir, fmt.Sprint(benchBatch), fmt.Sprint(benchIters), batchesFile)
	cases := []struct {
		name string
		cfg  lora.Config
	}{
		{"rank16_q", lora.Config{Keys: []string{"self_attn.q_proj"}, NumLayers: 4, Rank: 16, Scale: 2}},
		{"rank8_qkvo", lora.Config{Keys: []string{"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj"}, NumLayers: 4, Rank: 8, Scale: 2}},
	}
	var table strings.Builder
	fmt.Fprintf(&table, "\n%-11s %-7s %9s %10s %10s\n", "config", "side", "steps/s", "tokens/s", "peak MB")
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var ours, theirs benchFigures
			for range b.N {
				theirs = runMLXLM(b, modelDir, dataDir, c.cfg, defaultBenchRun)
				ours = runYai(b, modelDir, batchesFile, c.cfg, defaultBenchRun)
			}
			b.ReportMetric(ours.stepsPerSec, "steps/s")
			b.ReportMetric(ours.stepsPerSec/theirs.stepsPerSec, "x-mlx-lm-steps/s")
			b.ReportMetric(float64(ours.peakBytes)/float64(theirs.peakBytes), "x-mlx-lm-peak")
			row := func(side string, f benchFigures) {
				fmt.Fprintf(&table, "%-11s %-7s %9.2f %10.0f %10.1f\n", c.name, side, f.stepsPerSec, f.tokensPerSec, float64(f.peakBytes)/1e6)
			}
			row("mlx-lm", theirs)
			row("yai", ours)
			fmt.Fprintf(&table, "%-11s %-7s %8.2fx %9.2fx %9.2fx\n", c.name, "ratio", ours.stepsPerSec/theirs.stepsPerSec,
				ours.tokensPerSec/theirs.tokensPerSec, float64(ours.peakBytes)/float64(theirs.peakBytes))
		})
	}
	fmt.Print(table.String())
}

// benchRun is what both sides of a comparison train: batch size, steps, the window of steps
// whose time is dropped (compilation, warm-up) and reported, and the data settings. A window
// of 0 times a single step, compilation included on both sides.
type benchRun struct {
	batch, iters, window int
	maxSeq               int    // 0: 2048
	maskPrompt           bool   // train on completions only
	optimizer            string // "" is adamw
	lossChunk            int    // yai's loss_chunk
	compute              mlx.Dtype
}

var defaultBenchRun = benchRun{batch: benchBatch, iters: benchIters, window: benchWarmup}

func (r benchRun) maxSeqLength() int {
	if r.maxSeq == 0 {
		return 2048
	}
	return r.maxSeq
}

func (r benchRun) optimizerName() string {
	if r.optimizer == "" {
		return "adamw"
	}
	return r.optimizer
}

// runMLXLM runs mlx_lm.lora as a subprocess and averages its reports after the first window.
func runMLXLM(b *testing.B, modelDir, dataDir string, cfg lora.Config, run benchRun) benchFigures {
	dir := b.TempDir()
	keys, _ := json.Marshal(cfg.Keys)
	yaml := fmt.Sprintf("lora_parameters:\n  rank: %d\n  scale: %g\n  dropout: 0.0\n  keys: %s\n", cfg.Rank, cfg.Scale, keys)
	cfgFile := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfgFile, []byte(yaml), 0o644)
	args := []string{"testdata/bench_mlx_lm.py", "--model", modelDir, "--train", "--data", dataDir,
		"--optimizer", run.optimizerName(), "--num-layers", fmt.Sprint(cfg.NumLayers), "--batch-size", fmt.Sprint(run.batch),
		"--iters", fmt.Sprint(run.iters), "--steps-per-report", fmt.Sprint(max(1, run.window)), "--steps-per-eval", "100000",
		"--val-batches", "1", "--save-every", "100000", "--adapter-path", filepath.Join(dir, "adapters"), "-c", cfgFile,
		"--max-seq-length", fmt.Sprint(run.maxSeqLength())}
	if run.maskPrompt {
		args = append(args, "--mask-prompt")
	}
	out, err := exec.Command(testenv.Python(b), args...).CombinedOutput()
	if err != nil {
		b.Fatalf("mlx_lm lora: %v\n%s", err, out)
	}
	var reports []map[string]float64
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "REPORT "); ok {
			var r map[string]float64
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				b.Fatal(err)
			}
			reports = append(reports, r)
		}
	}
	timed := reports[min(1, len(reports)-1):] // the first window holds compilation, unless it is the only one
	if len(reports) == 0 || run.window > 0 && len(reports) < 2 {
		b.Fatalf("mlx_lm lora printed %d reports\n%s", len(reports), out)
	}
	var f benchFigures
	var secs, tokens float64
	w := float64(max(1, run.window))
	for _, r := range timed {
		secs += w / r["iterations_per_second"]
		tokens += r["tokens_per_second"] * w / r["iterations_per_second"]
	}
	for _, r := range reports {
		f.peakBytes = max(f.peakBytes, uint64(r["peak_memory"]*1e9))
	}
	f.stepsPerSec = w * float64(len(timed)) / secs
	f.tokensPerSec = tokens / secs
	return f
}

// runYai trains on the batches mlx-lm drew, timing the steps after the first window; peak
// memory counts from before the model is loaded, as mlx-lm's does.
func runYai(b *testing.B, modelDir, batchesFile string, cfg lora.Config, run benchRun) benchFigures {
	saved, _, err := mlx.LoadSafetensors(batchesFile)
	if err != nil {
		b.Fatal(err)
	}
	batches := make([]Batch, run.iters)
	for i := range batches {
		batches[i] = batchFrom(saved[fmt.Sprintf("%d/tokens", i)], saved[fmt.Sprintf("%d/lengths", i)])
	}
	for _, a := range saved {
		a.Free()
	}
	return trainBatches(b, modelDir, batches, cfg, run)
}

// trainBatches trains on batches, timing the steps after the first window.
func trainBatches(b *testing.B, modelDir string, batches []Batch, cfg lora.Config, run benchRun) benchFigures {
	mlx.ClearCache()
	mlx.ResetPeakMemory()
	m, err := model.Load(modelDir, model.LoadOptions{ComputeDtype: run.compute})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Free()
	optCfg := optim.DefaultConfig()
	optCfg.Name = run.optimizerName()
	if optCfg.Name == "adam" {
		optCfg.WeightDecay = 0
	}
	tr, err := NewTrainer(m, cfg, optCfg, Options{LossChunk: run.lossChunk})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	var start time.Time
	tokens := 0
	for i, batch := range batches {
		if i == run.window {
			start = time.Now()
		}
		r, err := tr.Step(batch)
		if err != nil {
			b.Fatal(err)
		}
		if i >= run.window {
			tokens += r.Tokens
		}
	}
	secs := time.Since(start).Seconds()
	return benchFigures{
		stepsPerSec:  float64(run.iters-run.window) / secs,
		tokensPerSec: float64(tokens) / secs,
		peakBytes:    mlx.Memory().Peak,
	}
}
