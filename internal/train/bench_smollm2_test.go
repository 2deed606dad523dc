package train

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/yai-dev/yai/internal/data"
	"github.com/yai-dev/yai/internal/lora"
	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/optim"
	"github.com/yai-dev/yai/internal/tokenizer"
	"github.com/yai-dev/yai/mlx"
)

// The data of the SmolLM2-shape benchmarks: doc-comment completions of at most smolRowBytes
// bytes (the tokenizer is byte-level; the chat template adds about 30 tokens), trained at
// smolMaxSeq, short enough that a step takes a minute, not ten, on a shared CPU.
const (
	smolRows     = 500
	smolRowBytes = 96
	smolMaxSeq   = 128
)

// smolWindow is the number of timed steps per side on the SmolLM2-135M shape; as many again
// run first untimed (compilation, warm-up): yai's first window of steps is not timed and
// mlx-lm's first report, which covers the same steps, is dropped (see runMLXLM).
// YAI_BENCH_SMOL_WINDOW raises it on a quiet machine. Each step of that model takes seconds
// to minutes on MLX's CPU backend.
func smolWindow() int {
	if n, err := strconv.Atoi(os.Getenv("YAI_BENCH_SMOL_WINDOW")); err == nil && n > 0 {
		return n
	}
	return 1
}

// BenchmarkSmolLM2VersusMLXLM trains a generated model with the published shape of
// SmolLM2-135M (4-bit, group 64) in yai and in mlx_lm.lora on the same completions of real
// text (Go standard library doc comments) with the same configuration: rank 8 on q_proj and
// v_proj of 8 blocks, Adam, no checkpointing. Cases and targets:
//
//	f16-scales-b1: float16 scales as mlx-community ships them, batch 1, real-length rows;
//	               yai converts them to float32 at load (compute_dtype auto on the CPU):
//	               tokens/s after warm-up ≥ 20×
//	f32-scales:    float32 scales, batch 4: tokens/s ≥ 1.3×
//	f32-masked:    the same with mask_prompt: peak MLX memory ≤ 0.6×
func BenchmarkSmolLM2VersusMLXLM(b *testing.B) {
	dir := b.TempDir()
	dataDir := filepath.Join(dir, "data")
	writeGoDocCompletions(b, dataDir, smolRows, smolRowBytes)
	models := map[mlx.Dtype]string{}
	for _, dt := range []mlx.Dtype{mlx.Float16, mlx.Float32} {
		spec := model.TinyPresets["smollm2-135m"]
		spec.Dtype = dt
		models[dt] = filepath.Join(dir, "smollm2-"+dt.String())
		if err := model.WriteTiny(models[dt], spec); err != nil {
			b.Fatal(err)
		}
	}
	cfg := lora.Config{Keys: []string{"self_attn.q_proj", "self_attn.v_proj"}, NumLayers: 8, Rank: 8, Scale: 20}
	w := smolWindow()
	cases := []struct {
		name   string
		scales mlx.Dtype
		run    benchRun
	}{
		// Real-length rows, as in the other cases. mlx-lm's float16 products are about 70×
		// slower than float32 on the CPU, so a step of its side takes many minutes: the
		// default window is one timed step after one untimed warm-up step per side.
		{"f16-scales-b1", mlx.Float16, benchRun{batch: 1, iters: 2 * w, window: w}},
		{"f32-scales", mlx.Float32, benchRun{batch: 4, iters: 2 * w, window: w}},
		{"f32-masked", mlx.Float32, benchRun{batch: 4, iters: 2 * w, window: w, maskPrompt: true}},
	}
	var table strings.Builder
	fmt.Fprintf(&table, "\nSmolLM2-135M shape, 4-bit, rank 8 q/v on 8 of 30 blocks, adam, max_seq_length %d, %d timed step(s) after %d warm-up per side\n", smolMaxSeq, w, w)
	fmt.Fprintf(&table, "%-14s %-7s %9s %10s %10s\n", "case", "side", "steps/s", "tokens/s", "peak MB")
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			run := c.run
			if run.maxSeq == 0 {
				run.maxSeq = smolMaxSeq
			}
			run.optimizer, run.lossChunk, run.compute = "adam", 512, mlx.Float32
			batchesFile := filepath.Join(b.TempDir(), "batches.safetensors")
			mask := "0"
			if run.maskPrompt {
				mask = "1"
			}
			runPython(b, "testdata/bench_prepare.py", models[c.scales], dataDir, fmt.Sprint(run.batch), fmt.Sprint(run.iters), batchesFile, mask, fmt.Sprint(run.maxSeq))
			var ours, theirs benchFigures
			for range b.N {
				theirs = runMLXLM(b, models[c.scales], dataDir, cfg, run)
				ours = runYai(b, models[c.scales], batchesFile, cfg, run)
			}
			b.ReportMetric(ours.tokensPerSec, "tokens/s")
			b.ReportMetric(ours.tokensPerSec/theirs.tokensPerSec, "x-mlx-lm-tokens/s")
			b.ReportMetric(float64(ours.peakBytes)/float64(theirs.peakBytes), "x-mlx-lm-peak")
			row := func(side string, f benchFigures) {
				fmt.Fprintf(&table, "%-14s %-7s %9.4f %10.2f %10.1f\n", c.name, side, f.stepsPerSec, f.tokensPerSec, float64(f.peakBytes)/1e6)
			}
			row("mlx-lm", theirs)
			row("yai", ours)
			fmt.Fprintf(&table, "%-14s %-7s %8.2fx %9.2fx %9.2fx\n", c.name, "ratio", ours.stepsPerSec/theirs.stepsPerSec,
				ours.tokensPerSec/theirs.tokensPerSec, float64(ours.peakBytes)/float64(theirs.peakBytes))
		})
	}
	fmt.Print(table.String())
}

// smolFloat32 writes the float32-scale SmolLM2-135M shape into dir and returns its directory
// and the tokenized training set of dir/data.
func smolFloat32(b *testing.B, dir string) (string, *data.Dataset) {
	dataDir := filepath.Join(dir, "data")
	modelDir := filepath.Join(dir, "smollm2-float32")
	spec := model.TinyPresets["smollm2-135m"]
	spec.Dtype = mlx.Float32
	if err := model.WriteTiny(modelDir, spec); err != nil {
		b.Fatal(err)
	}
	tok, err := tokenizer.Load(modelDir)
	if err != nil {
		b.Fatal(err)
	}
	ds, err := data.LoadFile(filepath.Join(dataDir, "train.jsonl"), tok, data.Options{})
	if err != nil {
		b.Fatal(err)
	}
	return modelDir, ds
}

// The data of the packing benchmark: rows a user would pack. Each is a question-and-answer
// chat row (an exported Go standard library function's signature, its whole doc comment as
// the answer, in shuffled order) of at most packRowBytes bytes, many times shorter than
// packMaxSeq and of widely spread lengths, as chat data's are: padded batches of such rows
// spend much of their compute on padding, packed rows almost none.
const (
	packRowBytes = 448
	packMaxSeq   = 512
)

// BenchmarkPackingSmolLM2 trains the float32-scale SmolLM2-135M shape at max_seq_length
// packMaxSeq on the short chat rows above, batch 4, with packing off (rows padded to a
// multiple of 32) and on (rows of max_seq_length filled with whole examples), the same
// settings otherwise, and prints yai's tokens/s both ways. Target: packing on ≥ 1.5× off.
func BenchmarkPackingSmolLM2(b *testing.B) {
	dir := b.TempDir()
	writeGoDocAnswers(b, filepath.Join(dir, "data"), smolRows, packRowBytes)
	modelDir, ds := smolFloat32(b, dir)
	cfg := lora.Config{Keys: []string{"self_attn.q_proj", "self_attn.v_proj"}, NumLayers: 8, Rank: 8, Scale: 20}
	w := smolWindow()
	var table strings.Builder
	fmt.Fprintf(&table, "\nSmolLM2-135M shape, float32 scales, batch 4, max_seq_length %d, chat rows of at most %d bytes, yai only\n%-8s %9s %10s %10s\n",
		packMaxSeq, packRowBytes, "packing", "steps/s", "tokens/s", "peak MB")
	var off benchFigures
	for _, pack := range []bool{false, true} {
		name := map[bool]string{false: "off", true: "on"}[pack]
		b.Run(name, func(b *testing.B) {
			it, err := data.NewBatches(ds, data.BatchConfig{BatchSize: 4, MaxSeqLength: packMaxSeq, Loop: true, Pack: pack, Random: data.NewNumpyRandom(0)})
			if err != nil {
				b.Fatal(err)
			}
			defer it.Close()
			batches := make([]Batch, 2*w)
			for i := range batches {
				db, _ := it.Next()
				batches[i] = fromDataBatch(db)
			}
			var f benchFigures
			for range b.N {
				f = trainBatches(b, modelDir, batches, cfg, benchRun{iters: 2 * w, window: w, optimizer: "adam", lossChunk: 512})
			}
			b.ReportMetric(f.tokensPerSec, "tokens/s")
			if pack {
				b.ReportMetric(f.tokensPerSec/off.tokensPerSec, "x-unpacked-tokens/s")
			} else {
				off = f
			}
			fmt.Fprintf(&table, "%-8s %9.4f %10.2f %10.1f\n", name, f.stepsPerSec, f.tokensPerSec, float64(f.peakBytes)/1e6)
			if pack {
				fmt.Fprintf(&table, "%-8s %9.2fx %9.2fx\n", "ratio", f.stepsPerSec/off.stepsPerSec, f.tokensPerSec/off.tokensPerSec)
			}
		})
	}
	fmt.Print(table.String())
}

// fromDataBatch converts a data batch (plain or packed) to the trainer's layout.
func fromDataBatch(db data.Batch) Batch {
	out := Batch{Tokens: db.Tokens, Rows: db.Size, Cols: db.Width}
	for i := range db.Size {
		out.Offsets = append(out.Offsets, int(db.Offsets[i]))
		out.Lengths = append(out.Lengths, int(db.Lengths[i]))
	}
	if db.Segments != nil {
		out.Segments = make([][]Segment, db.Size)
		for i, row := range db.Segments {
			for _, s := range row {
				out.Segments[i] = append(out.Segments[i], Segment{Start: s.Start, Len: s.Len, Offset: s.Offset, Truncated: s.Truncated})
			}
		}
	}
	return out
}

// BenchmarkPrefixCacheSmolLM2 trains the float32-scale SmolLM2-135M shape (8 of 30 blocks
// adapted) for 3 epochs of 4 packed batches with the prefix cache on, and prints the mean
// step time of epoch 1 and of epochs 2–3, each without its first step (which compiles the
// step that fills, then the step that uses, the cache). Target: epochs 2–3 ≤ 0.5× epoch 1.
func BenchmarkPrefixCacheSmolLM2(b *testing.B) {
	const perEpoch, epochs = 4, 3
	dir := b.TempDir()
	writeGoDocCompletions(b, filepath.Join(dir, "data"), smolRows, smolRowBytes)
	modelDir, ds := smolFloat32(b, dir)
	it, err := data.NewBatches(ds, data.BatchConfig{BatchSize: 4, MaxSeqLength: smolMaxSeq, Loop: true, Pack: true, KeepOrder: true})
	if err != nil {
		b.Fatal(err)
	}
	var epoch []Batch
	for range perEpoch {
		db, _ := it.Next()
		tb := fromDataBatch(db)
		tb.Key = fmt.Sprint(db.Examples)
		epoch = append(epoch, tb)
	}
	it.Close()
	m, err := model.Load(modelDir, model.LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Free()
	cfg := lora.Config{Keys: []string{"self_attn.q_proj", "self_attn.v_proj"}, NumLayers: 8, Rank: 8, Scale: 20}
	for range b.N {
		tr, err := NewTrainer(m, cfg, optim.DefaultConfig(), Options{LossChunk: 512, PrefixCache: 1 << 30})
		if err != nil {
			b.Fatal(err)
		}
		var first, later time.Duration
		for e := range epochs {
			for i, batch := range epoch {
				start := time.Now()
				if _, err := tr.Step(batch); err != nil {
					b.Fatal(err)
				}
				d := time.Since(start)
				switch {
				case i == 0 && e < 2: // compiles the filling, then the using, step
				case e == 0:
					first += d
				default:
					later += d
				}
			}
		}
		tr.Close()
		firstMean := first.Seconds() / (perEpoch - 1)
		laterMean := later.Seconds() / (2*perEpoch - 1)
		b.ReportMetric(laterMean/firstMean, "x-epoch1-step-time")
		fmt.Printf("\nprefix cache, SmolLM2-135M shape, 8 of 30 blocks adapted, 4 packed batches of 4×%d: mean step %.2fs in epoch 1, %.2fs in epochs 2-3 (%.2fx)\n",
			smolMaxSeq, firstMean, laterMean, laterMean/firstMean)
	}
}
