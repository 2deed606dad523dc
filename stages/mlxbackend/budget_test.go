package mlxbackend

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yai-dev/yai/internal/data"
	"github.com/yai-dev/yai/internal/lora"
	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/optim"
	"github.com/yai-dev/yai/internal/testenv"
	"github.com/yai-dev/yai/internal/tokenizer"
	"github.com/yai-dev/yai/internal/train"
	"github.com/yai-dev/yai/memplan"
	"github.com/yai-dev/yai/mlx"
	"github.com/yai-dev/yai/recipe"
	"github.com/yai-dev/yai/stages"
)

// budgetCase is a tiny model and the recipe settings trained on it.
type budgetCase struct {
	name                                    string
	hidden, inter, vocab, heads, kv, layers int
	loraLayers, rank, batch, seq            int
	ckpt                                    bool
	dtype                                   mlx.Dtype // of scales, norms and so activations; 0 means float32
	tied                                    bool
	// data, when set, writes completions whose widest batch is seq tokens: the budget then
	// learns the sequence length from the data (max_seq_length stays at 512), as a real
	// recipe's does.
	data  bool
	mask  bool // mask_prompt (the loss covers completions only)
	chunk int  // the step's loss_chunk; 0 means its default
	// long: checked in the long tier only (YAI_TEST_LONG=1). The largest cases, each of whose
	// settings another case of the default tier checks at a smaller size.
	long bool
	// family, when set, is the model_type of a model written by mlx-lm's own module with
	// the case's sizes and family's extra config.json fields (head_dim among them).
	family string
	extra  map[string]any
	// keys are the modules attach-lora adapts; nil means q_proj and v_proj.
	keys []string
}

// loraKeys are the modules the case adapts.
func (c budgetCase) loraKeys() []string {
	if c.keys != nil {
		return c.keys
	}
	return []string{"self_attn.q_proj", "self_attn.v_proj"}
}

// checkCases checks each case as a subtest: in the default tier those not marked long, in
// the long tier all of them.
func checkCases(t *testing.T, cases []budgetCase) {
	var run, later []string
	for _, c := range cases {
		if c.long && !testenv.Long() {
			later = append(later, c.name)
			continue
		}
		run = append(run, c.name)
		t.Run(c.name, c.check)
	}
	t.Logf("%s tier: %d of %d cases %v; %s=1 adds %v", testenv.Tier(), len(run), len(cases), run, testenv.LongEnv, later)
}

// writeModel generates the case's 4-bit model.
func (c budgetCase) writeModel(t testing.TB, dir string) {
	t.Helper()
	dtype := c.dtype
	if dtype == 0 {
		dtype = mlx.Float32
	}
	if c.family != "" {
		c.writeFamilyModel(t, dir, dtype)
		return
	}
	err := model.WriteTiny(dir, model.TinySpec{Config: model.Config{ModelType: "llama", HiddenSize: c.hidden, NumHiddenLayers: c.layers,
		IntermediateSize: c.inter, NumAttentionHeads: c.heads, NumKeyValueHeads: c.kv, VocabSize: c.vocab, HeadDim: c.hidden / c.heads,
		RMSNormEps: 1e-5, RopeTheta: 10000, MaxPositionEmbeddings: 4096, TieWordEmbeddings: c.tied},
		Seed: 1, Dtype: dtype, Quant: &mlx.Quantization{GroupSize: 64, Bits: 4, Mode: "affine"}})
	if err != nil {
		t.Fatal(err)
	}
}

// writeFamilyModel writes the case's 4-bit model with mlx-lm's module for its family, and
// the tiny tokenizer beside it.
func (c budgetCase) writeFamilyModel(t testing.TB, dir string, dtype mlx.Dtype) {
	t.Helper()
	cfg := map[string]any{"model_type": c.family, "hidden_size": c.hidden, "num_hidden_layers": c.layers,
		"intermediate_size": c.inter, "num_attention_heads": c.heads, "num_key_value_heads": c.kv, "vocab_size": c.vocab,
		"rms_norm_eps": 1e-5, "rope_theta": 10000.0, "max_position_embeddings": 4096, "tie_word_embeddings": c.tied}
	for k, v := range c.extra {
		cfg[k] = v
	}
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	root := testenv.ModuleRoot(t)
	cmd := exec.Command(testenv.Python(t), filepath.Join(root, "internal", "model", "testdata", "mlxlm_reference.py"),
		"write", dir, string(js), "1", "--bits", "4", "--group-size", "64", "--dtype", dtype.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("writing the %s model: %v\n%s", c.family, err, out)
	}
	for _, f := range []string{"tokenizer.json", "tokenizer_config.json"} {
		data, err := os.ReadFile(filepath.Join(root, "internal", "model", "tinytokenizer", f))
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, f), data, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// writeData writes completions of varied length, the longest at most seq tokens with the
// tiny tokenizer (so its batch pads to seq+1), and returns the directory.
func (c budgetCase) writeData(t testing.TB, dir string) string {
	t.Helper()
	tok, err := tokenizer.Load(filepath.Join(dir, "model"))
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	os.MkdirAll(data, 0o755)
	var rows []string
	words := []string{"hen", "dog", "owl", "green", "blue", "red"}
	length := func(prompt, completion string) int {
		text, err := tok.ApplyChatTemplate([]tokenizer.Message{{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}}, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		return len(tok.Encode(text, false))
	}
	// rows from short to the longest that fits seq tokens: batches of every width up to it
	prompt := "What is it?"
	for completion := "It is"; ; {
		next := completion + " " + words[len(rows)%len(words)]
		if length(prompt, next) > c.seq {
			break
		}
		completion = next
		rows = append(rows, fmt.Sprintf(`{"prompt": %q, "completion": %q}`, prompt, completion))
	}
	if len(rows) < 2*c.batch {
		t.Fatalf("only %d rows fit %d tokens", len(rows), c.seq)
	}
	content := strings.Join(rows, "\n") + "\n"
	for _, f := range []string{"train.jsonl", "valid.jsonl"} {
		if err := os.WriteFile(filepath.Join(data, f), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return data
}

// dataMaxSeq is max_seq_length of a case with data: above every row, so the data's widest
// batch sets the width.
const dataMaxSeq = 512

func (c budgetCase) recipe(modelDir, dataDir string) string {
	maxSeq := c.seq
	if dataDir != "" {
		maxSeq = dataMaxSeq
	}
	return fmt.Sprintf(`version: 1
name: %s
model: %s
data: %s
memory: {limit: 8GB}
stages:
  - {id: load, kind: load-4bit, with: {compute_dtype: checkpoint}}
  - id: lora
    kind: attach-lora
    after: [load]
    with: {rank: %d, alpha: 16, layers: %d, keys: [%s]}
  - id: data
    kind: data
    after: [load]
    with: {batch_size: %d, max_seq_length: %d, mask_prompt: %v, shuffle: false}
  - id: train
    kind: step
    with: {optimizer: adamw, grad_checkpoint: %v, loss_chunk: %d}
`, c.name, modelDir, dataDir, c.rank, c.loraLayers, strings.Join(c.loraKeys(), ", "), c.batch, maxSeq, c.mask, c.ckpt, c.lossChunk())
}

// lossChunk is the loss_chunk the case trains with.
func (c budgetCase) lossChunk() int {
	if c.chunk > 0 {
		return c.chunk
	}
	return stages.Step.Defaults().LossChunk
}

// measure trains three steps of full-length batches the way the step stage does, in the
// plan's sequence chunks as load-4bit applies them, and returns the MLX peak above what was
// active before the model was loaded. On a GPU, MLX runs ahead of
// the device and holds finished work's buffers until it catches up, so an unbounded peak
// measures the queue, not the step: there the estimate is MLX's memory limit, as yai run
// makes a recipe's limit, and the peak says whether the step fits in it.
func (c budgetCase) measure(t testing.TB, dir string, est int64, chunks memplan.Chunks) int64 {
	t.Helper()
	before := mlx.Memory().Active
	if onGPU() {
		defer mlx.SetMemoryLimit(mlx.SetMemoryLimit(before + uint64(est)))
	}
	m, err := model.Load(dir, model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	m.SetSequenceChunks(chunks.Attention, chunks.FeedForward)
	mlx.ResetPeakMemory()
	tr, err := train.NewTrainer(m, lora.Config{Keys: c.loraKeys(), NumLayers: c.loraLayers, Rank: c.rank, Alpha: 16},
		optim.DefaultConfig(), train.Options{GradCheckpoint: c.ckpt, LossChunk: c.lossChunk()})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if c.data && c.mask {
		// Masked rows train fewer positions than they hold, and the estimate counts the
		// data's: train one epoch of the data's own batches.
		for _, b := range c.dataBatches(t, dir) {
			if _, err := tr.Step(b); err != nil {
				t.Fatal(err)
			}
		}
		return int64(mlx.Memory().Peak - before)
	}
	rng := rand.New(rand.NewSource(1))
	for range 3 {
		b := train.Batch{Rows: c.batch, Cols: c.seq + 1, Tokens: make([]int32, c.batch*(c.seq+1)), Lengths: make([]int, c.batch)}
		for i := range b.Tokens {
			b.Tokens[i] = int32(rng.Intn(c.vocab))
		}
		for i := range b.Lengths {
			b.Lengths[i] = c.seq
		}
		if _, err := tr.Step(b); err != nil {
			t.Fatal(err)
		}
	}
	return int64(mlx.Memory().Peak - before)
}

// dataBatches are one epoch of the batches the run makes of the case's data (written beside
// the model by writeData), as the data stage makes them.
func (c budgetCase) dataBatches(t testing.TB, modelDir string) []train.Batch {
	t.Helper()
	tok, err := tokenizer.Load(modelDir)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := data.LoadFile(filepath.Join(filepath.Dir(modelDir), "data", "train.jsonl"), tok, data.Options{TrainOn: data.TrainLast})
	if err != nil {
		t.Fatal(err)
	}
	it, err := data.NewBatches(ds, data.BatchConfig{BatchSize: c.batch, MaxSeqLength: dataMaxSeq, KeepOrder: true})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var out []train.Batch
	for b, ok := it.Next(); ok; b, ok = it.Next() {
		out = append(out, toTrainBatch(b))
	}
	return out
}

// estimateAndMeasure validates the case's recipe on this program's device and trains it: the
// dry run's budget, MLX's measured peak, and the budget's breakdown.
func (c budgetCase) estimateAndMeasure(t testing.TB) (b memplan.Budget, got int64, breakdown string) {
	t.Helper()
	dir := t.TempDir()
	modelDir := filepath.Join(dir, "model")
	c.writeModel(t, modelDir)
	dataDir := ""
	opts := recipe.ValidateOptions{SkipData: true, Env: Environment()}
	if c.data {
		dataDir, opts.SkipData = c.writeData(t, dir), false
	}
	p, ds := recipe.ValidateSource(filepath.Join(dir, "budget.yaml"), []byte(c.recipe(modelDir, dataDir)), nil, opts)
	if p == nil || p.Decision.Budget == nil {
		t.Fatalf("recipe invalid or no budget:\n%s", ds.Format())
	}
	if c.data && p.Decision.Budget.SeqLen != c.seq {
		t.Fatalf("the budget's sequence is %d tokens; the data's widest batch makes %d", p.Decision.Budget.SeqLen, c.seq)
	}
	return *p.Decision.Budget, c.measure(t, modelDir, p.Decision.Budget.Peak(), p.Decision.Chunks), p.Decision.Budget.Describe(p.Limit)
}

// check holds the case's estimated peak to ±10% of MLX's. On a GPU, where the estimate is
// MLX's limit (see measure), the step must fit it: MLX checks its limit between operations,
// so the peak may pass it by the one allocation that crosses it (Budget.Overshoot, which a
// run's MLX limit leaves room for), no more.
func (c budgetCase) check(t *testing.T) {
	b, got, breakdown := c.estimateAndMeasure(t)
	est := b.Peak()
	off := float64(est-got) / float64(got)
	t.Logf("%-16s estimated %8.2f MB  measured %8.2f MB  %+5.1f%%  (largest allocation %.2f MB)", c.name, float64(est)/1e6, float64(got)/1e6, 100*off, float64(b.Overshoot)/1e6)
	if onGPU() {
		if got > est+b.Overshoot {
			t.Errorf("with the estimated peak %d as MLX's limit the step peaked at %d, past it by more than the largest allocation %d\n%s", est, got, b.Overshoot, breakdown)
		}
		return
	}
	if off < -0.10 || off > 0.10 {
		t.Errorf("estimated peak %d is %+.1f%% off the measured MLX peak %d\n%s", est, 100*off, got, breakdown)
	}
}

// The dry-run peak within ±10% of the MLX peak of real training steps on three tiny
// configs, none of them among the configurations the coefficients were fitted on (see
// memplan/budget.go). The default tier checks two: a wide model without checkpointing, a
// checkpointed one at batch 4; the long tier adds checkpointing over 512 positions, the
// costliest of the three.
func TestBudgetMatchesMeasuredPeak(t *testing.T) {
	checkCases(t, []budgetCase{
		{name: "wide-seq256", hidden: 512, inter: 1024, vocab: 2000, heads: 8, kv: 4, layers: 4, loraLayers: 2, rank: 8, batch: 2, seq: 256},
		{name: "ckpt-seq512", hidden: 256, inter: 512, vocab: 2000, heads: 4, kv: 2, layers: 6, loraLayers: 4, rank: 8, batch: 2, seq: 512, ckpt: true, long: true},
		{name: "ckpt-batch4", hidden: 256, inter: 1024, vocab: 3000, heads: 4, kv: 4, layers: 4, loraLayers: 3, rank: 16, batch: 4, seq: 128, ckpt: true},
	})
}

// Out of sample: configurations none of the coefficients were derived from, across depth,
// head counts and GQA ratios, vocabularies, tied and untied heads, float32 and half-precision
// activations, checkpointing and masked prompts; the first has the shape of a 135M model
// (SmolLM-135M: 30 blocks, hidden 576, 9/3 heads, vocab 49152, tied) trained at batch 4 on
// completions whose widest batch is 128 tokens, with max_seq_length 512. That one, by far
// the costliest, runs in the long tier; the default tier checks the other five, which
// between them cover every setting it has (depth, GQA, a vocabulary in the tens of
// thousands, tied heads, a sequence length learned from the data) at a smaller size.
func TestBudgetHoldsOutOfSample(t *testing.T) {
	checkCases(t, []budgetCase{
		{name: "135m-completions", hidden: 576, inter: 1536, vocab: 49152, heads: 9, kv: 3, layers: 30, loraLayers: 8, rank: 8, batch: 4, seq: 128, tied: true, data: true, long: true},
		{name: "gqa3-depth8", hidden: 384, inter: 1024, vocab: 6000, heads: 6, kv: 2, layers: 8, loraLayers: 3, rank: 8, batch: 2, seq: 192},
		{name: "bf16-mqa-tied", hidden: 256, inter: 768, vocab: 5000, heads: 4, kv: 1, layers: 4, loraLayers: 2, rank: 8, batch: 2, seq: 128, dtype: mlx.BFloat16, tied: true},
		{name: "ckpt-mha-batch3", hidden: 320, inter: 640, vocab: 4000, heads: 5, kv: 5, layers: 6, loraLayers: 4, rank: 8, batch: 3, seq: 96, ckpt: true},
		// float16 scales make MLX's CPU quantized matmul slow: the smallest of the six
		{name: "f16-masked", hidden: 128, inter: 512, vocab: 8000, heads: 4, kv: 1, layers: 3, loraLayers: 2, rank: 8, batch: 2, seq: 96, dtype: mlx.Float16, data: true, mask: true},
		{name: "ckpt-vocab20k", hidden: 448, inter: 896, vocab: 20000, heads: 7, kv: 7, layers: 6, loraLayers: 3, rank: 4, batch: 1, seq: 256, ckpt: true},
	})
}

// The estimate on each family's own block, out of sample (memplan/budget.go's family terms
// were fitted at hidden 256 with 8 heads, BenchmarkBudgetSweep's family-… cases): models
// written by mlx-lm's module for the family, with attention wider and narrower than the
// hidden size (heads × head_dim ≠ hidden), Qwen2's biases, Phi-3's fused projections,
// Gemma 2's softcapped scores and logits, Gemma 3's sliding windows (sequences longer than
// the window; the text model and the multimodal wrapper), and mixtures of experts
// (Mixtral's; Qwen3-MoE's beside a dense block, its experts adapted).
// The default tier checks each family at a small size; the long tier adds each at a larger
// one, and checkpointed Gemma 2, Gemma 3 and Mixtral.
func TestBudgetHoldsForFamilies(t *testing.T) {
	phi3 := []string{"self_attn.qkv_proj"}
	gemma2 := func(headDim int) map[string]any {
		return map[string]any{"head_dim": headDim, "query_pre_attn_scalar": headDim}
	}
	gemma3 := func(headDim, window int) map[string]any {
		return map[string]any{"head_dim": headDim, "sliding_window": window, "sliding_window_pattern": 2}
	}
	mixtral := func(experts int) map[string]any {
		return map[string]any{"num_local_experts": experts, "num_experts_per_tok": 2}
	}
	// block 0 dense, the others 8 experts, 3 per token
	qwen3MoE := func(headDim, size int) map[string]any {
		return map[string]any{"head_dim": headDim, "num_experts": 8, "num_experts_per_tok": 3, "moe_intermediate_size": size,
			"decoder_sparse_step": 1, "mlp_only_layers": []int{0}, "norm_topk_prob": true}
	}
	moeKeys := []string{"self_attn.q_proj", "switch_mlp.gate_proj"}
	checkCases(t, []budgetCase{
		{name: "qwen3-wide-ckpt", family: "qwen3", extra: map[string]any{"head_dim": 64}, hidden: 320, inter: 896, vocab: 4000, heads: 10, kv: 5, layers: 5, loraLayers: 3, rank: 8, batch: 2, seq: 160, ckpt: true, long: true},
		{name: "qwen3-narrow", family: "qwen3", extra: map[string]any{"head_dim": 64}, hidden: 512, inter: 1024, vocab: 3000, heads: 4, kv: 2, layers: 4, loraLayers: 2, rank: 8, batch: 2, seq: 128, tied: true},
		{name: "qwen2-bias", family: "qwen2", hidden: 192, inter: 512, vocab: 2000, heads: 6, kv: 2, layers: 3, loraLayers: 2, rank: 8, batch: 2, seq: 96, tied: true},
		{name: "phi3-fused", family: "phi3", keys: phi3, hidden: 192, inter: 384, vocab: 2000, heads: 3, kv: 1, layers: 3, loraLayers: 2, rank: 8, batch: 2, seq: 64},
		{name: "phi3-fused-384", family: "phi3", keys: phi3, hidden: 384, inter: 768, vocab: 3200, heads: 6, kv: 2, layers: 4, loraLayers: 2, rank: 8, batch: 2, seq: 128, long: true},
		{name: "gemma2-softcap", family: "gemma2", extra: gemma2(64), hidden: 128, inter: 384, vocab: 2000, heads: 4, kv: 2, layers: 3, loraLayers: 2, rank: 8, batch: 2, seq: 64, tied: true},
		{name: "gemma2-softcap-256", family: "gemma2", extra: gemma2(96), hidden: 256, inter: 640, vocab: 3000, heads: 4, kv: 2, layers: 4, loraLayers: 2, rank: 8, batch: 2, seq: 128, tied: true, long: true},
		{name: "gemma2-ckpt", family: "gemma2", extra: gemma2(64), hidden: 128, inter: 384, vocab: 2000, heads: 4, kv: 2, layers: 4, loraLayers: 4, rank: 8, batch: 2, seq: 64, tied: true, ckpt: true, long: true},
		{name: "gemma3-windows", family: "gemma3_text", extra: gemma3(48, 32), hidden: 192, inter: 384, vocab: 2000, heads: 4, kv: 1, layers: 3, loraLayers: 2, rank: 8, batch: 2, seq: 64, tied: true},
		{name: "gemma3-windows-320", family: "gemma3_text", extra: gemma3(64, 64), hidden: 320, inter: 640, vocab: 3000, heads: 4, kv: 1, layers: 4, loraLayers: 3, rank: 8, batch: 2, seq: 160, tied: true, long: true},
		{name: "gemma3-wrapped", family: "gemma3", extra: map[string]any{"vision_config": map[string]any{"hidden_size": 16},
			"text_config": map[string]any{"model_type": "gemma3_text", "hidden_size": 256, "num_hidden_layers": 3, "intermediate_size": 512,
				"num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 128, "vocab_size": 2500, "rms_norm_eps": 1e-6,
				"sliding_window": 48, "sliding_window_pattern": 3}},
			hidden: 256, inter: 512, vocab: 2500, heads: 2, kv: 1, layers: 3, loraLayers: 2, rank: 8, batch: 2, seq: 64, tied: true},
		{name: "gemma3-ckpt", family: "gemma3_text", extra: gemma3(48, 32), hidden: 192, inter: 384, vocab: 2000, heads: 4, kv: 1, layers: 4, loraLayers: 4, rank: 8, batch: 2, seq: 64, tied: true, ckpt: true, long: true},
		{name: "mixtral", family: "mixtral", extra: mixtral(4), hidden: 192, inter: 256, vocab: 2000, heads: 3, kv: 1, layers: 3, loraLayers: 2, rank: 8, batch: 2, seq: 64},
		{name: "mixtral-320", family: "mixtral", extra: mixtral(6), hidden: 320, inter: 448, vocab: 3500, heads: 5, kv: 1, layers: 3, loraLayers: 2, rank: 8, batch: 2, seq: 96, long: true},
		{name: "mixtral-ckpt", family: "mixtral", extra: mixtral(4), hidden: 192, inter: 256, vocab: 2000, heads: 3, kv: 1, layers: 4, loraLayers: 4, rank: 8, batch: 2, seq: 64, ckpt: true, long: true},
		{name: "qwen3moe-experts", family: "qwen3_moe", keys: moeKeys, extra: qwen3MoE(32, 128), hidden: 128, inter: 256, vocab: 2000, heads: 4, kv: 2, layers: 3, loraLayers: 3, rank: 8, batch: 2, seq: 64},
		{name: "qwen3moe-experts-192", family: "qwen3_moe", keys: moeKeys, extra: qwen3MoE(48, 192), hidden: 192, inter: 384, vocab: 3000, heads: 6, kv: 2, layers: 3, loraLayers: 3, rank: 8, batch: 2, seq: 128, long: true},
	})
}
