package runtime

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/yai-dev/yai/lora"
	"github.com/yai-dev/yai/mlx"
	"github.com/yai-dev/yai/model"
	"github.com/yai-dev/yai/optim"
	"github.com/yai-dev/yai/stages"
	"github.com/yai-dev/yai/train"
)

// budgetCase is a tiny model and the recipe settings trained on it.
type budgetCase struct {
	name                                    string
	hidden, inter, vocab, heads, kv, layers int
	loraLayers, rank, batch, seq            int
	ckpt                                    bool
}

func (c budgetCase) recipe(modelDir string) string {
	return fmt.Sprintf(`version: 1
name: %s
model: %s
memory: {limit: 2GB}
stages:
  - {id: load, kind: load-4bit}
  - id: lora
    kind: attach-lora
    after: [load]
    with: {rank: %d, alpha: 16, layers: %d, keys: [self_attn.q_proj, self_attn.v_proj]}
  - id: data
    kind: data
    after: [load]
    with: {batch_size: %d, max_seq_length: %d}
  - id: train
    kind: step
    with: {optimizer: adamw, grad_checkpoint: %v}
`, c.name, modelDir, c.rank, c.loraLayers, c.batch, c.seq, c.ckpt)
}

// measure trains three steps of full-length batches the way the step stage does and returns
// the MLX peak above what was active before the model was loaded.
func (c budgetCase) measure(t *testing.T, dir string) int64 {
	t.Helper()
	before := mlx.Memory().Active
	m, err := model.Load(dir, model.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	mlx.ResetPeakMemory()
	tr, err := train.NewTrainer(m, lora.Config{Keys: []string{"self_attn.q_proj", "self_attn.v_proj"}, NumLayers: c.loraLayers, Rank: c.rank, Alpha: 16},
		optim.DefaultConfig(), train.Options{GradCheckpoint: c.ckpt})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
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

// The dry-run peak is within ±10% of the MLX peak of real training steps on three tiny
// configs that differ in checkpointing, rank, adapted layers, sequence length and batch.
func TestBudgetMatchesMeasuredPeak(t *testing.T) {
	cases := []budgetCase{
		{name: "wide-seq256", hidden: 512, inter: 1024, vocab: 2000, heads: 8, kv: 4, layers: 4, loraLayers: 2, rank: 8, batch: 2, seq: 256},
		{name: "ckpt-seq512", hidden: 256, inter: 512, vocab: 2000, heads: 4, kv: 2, layers: 6, loraLayers: 4, rank: 8, batch: 2, seq: 512, ckpt: true},
		{name: "ckpt-batch4", hidden: 256, inter: 1024, vocab: 3000, heads: 4, kv: 4, layers: 4, loraLayers: 3, rank: 16, batch: 4, seq: 128, ckpt: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "model")
			err := model.WriteTiny(dir, model.TinySpec{Config: model.Config{ModelType: "llama", HiddenSize: c.hidden, NumHiddenLayers: c.layers,
				IntermediateSize: c.inter, NumAttentionHeads: c.heads, NumKeyValueHeads: c.kv, VocabSize: c.vocab, HeadDim: c.hidden / c.heads,
				RMSNormEps: 1e-5, RopeTheta: 10000, MaxPositionEmbeddings: 4096},
				Seed: 1, Dtype: mlx.Float32, Quant: &mlx.Quantization{GroupSize: 64, Bits: 4, Mode: "affine"}})
			if err != nil {
				t.Fatal(err)
			}
			p, ds := ValidateSource("budget.yaml", []byte(c.recipe(dir)), nil, ValidateOptions{})
			if p == nil || p.Budget == nil {
				t.Fatalf("recipe invalid or no budget:\n%s", ds.Format())
			}
			est := p.Budget.Peak()
			got := c.measure(t, dir)
			off := float64(est-got) / float64(got)
			t.Logf("%-12s estimated %8.2f MB  measured %8.2f MB  %+5.1f%%", c.name, float64(est)/1e6, float64(got)/1e6, 100*off)
			if off < -0.10 || off > 0.10 {
				t.Errorf("estimated peak %d is %+.1f%% off the measured MLX peak %d\n%s", est, 100*off, got, p.Budget.Describe(p.Limit))
			}
		})
	}
}

// writeLlama8BHeaders writes the published config.json of
// mlx-community/Meta-Llama-3.1-8B-Instruct-4bit and a headers-only safetensors file of its
// tensor shapes (every linear, embeddings and lm_head included, as uint32 weights with bf16
// scales and biases; norms bf16). No weight data is written.
func writeLlama8BHeaders(t *testing.T, dir string) {
	t.Helper()
	writeHeaderModel(t, dir, llama8B)
	cfg := map[string]any{
		"architectures": []string{"LlamaForCausalLM"}, "model_type": "llama",
		"hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
		"intermediate_size": 14336, "vocab_size": 128256, "head_dim": 128, "hidden_act": "silu",
		"max_position_embeddings": 131072, "rms_norm_eps": 1e-05, "rope_theta": 500000.0,
		"rope_scaling": map[string]any{"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
			"original_max_position_embeddings": 8192, "rope_type": "llama3"},
		"tie_word_embeddings": false, "attention_bias": false, "mlp_bias": false, "torch_dtype": "bfloat16",
		"bos_token_id": 128000, "eos_token_id": []int{128001, 128008, 128009},
		"quantization": map[string]int{"group_size": 64, "bits": 4},
	}
	js, _ := json.MarshalIndent(cfg, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "config.json"), js, 0o644); err != nil {
		t.Fatal(err)
	}
}

// The seed recipe against the 8B model's headers: the weights are the published 4.52 GB,
// every term is printed, and what must be resident fits in 7 GB.
func TestBudgetLlama8BSeedRecipe(t *testing.T) {
	dir := t.TempDir()
	writeLlama8BHeaders(t, dir)
	st, _ := os.Stat(filepath.Join(dir, "model.safetensors"))
	if st.Size() > 1<<20 {
		t.Fatalf("headers-only file is %d bytes", st.Size())
	}
	p, ds := Validate("../recipes/llama-3.1-8b-7gb.yaml", []string{"model=" + dir}, ValidateOptions{})
	if p == nil || p.Budget == nil {
		t.Fatalf("seed recipe invalid:\n%s", ds.Format())
	}
	b := *p.Budget
	out := p.Describe()
	t.Logf("\n%s%s", ds.Format(), out)
	for _, term := range []string{"memory budget (limit 7.00 GB)", "weights", "lora params", "gradients", "optimizer", "activations", "logits", "expected cache", "floor", "estimated peak"} {
		if !strings.Contains(out, term) {
			t.Errorf("breakdown lacks %q", term)
		}
	}
	// 4-bit 8B: 4.52 GB with every scale and bias (mlx-community's files total this).
	if b.Weights < 4.50e9 || b.Weights > 4.55e9 {
		t.Errorf("weights = %d, want about 4.52 GB", b.Weights)
	}
	// rank 16 on q_proj (4096→4096) of 4 blocks: 16·8192·4 bytes per module.
	if want := int64(4 * 16 * (4096 + 4096) * 4); b.LoRA != want || b.Optimizer != 2*want || b.Gradients != want {
		t.Errorf("lora %d, optimizer %d, gradients %d; want %d, %d, %d", b.LoRA, b.Optimizer, b.Gradients, want, 2*want, want)
	}
	if b.Floor() > 7*stages.GB || b.Peak() > 7*stages.GB || len(ds) != 0 {
		t.Errorf("the seed recipe should fit in 7 GB without warnings: floor %d, peak %d\n%s", b.Floor(), b.Peak(), ds.Format())
	}
	// At 2048 tokens the step itself no longer fits: a warning, not an error.
	p2, ds2 := Validate("../recipes/llama-3.1-8b-7gb.yaml", []string{"model=" + dir, "stages.data.with.max_seq_length=2048"}, ValidateOptions{})
	if p2 == nil || len(ds2) != 1 || !strings.Contains(ds2.Format(), "warning: limit: estimated peak") {
		t.Errorf("at max_seq_length 2048 want one peak warning, got:\n%s", ds2.Format())
	}
	js := p.JSON()
	if js.Budget == nil || js.Budget.Floor != p.Budget.Floor() || js.Budget.Peak != p.Budget.Peak() || !js.Budget.Fits {
		t.Errorf("--json budget = %+v", js.Budget)
	}
}

// A limit below the floor is an error at memory.limit; one below the peak only a warning.
func TestBudgetAgainstLimit(t *testing.T) {
	dir := t.TempDir()
	writeLlama8BHeaders(t, dir)
	recipe := "../recipes/llama-3.1-8b-7gb.yaml"
	p, ds := Validate(recipe, []string{"model=" + dir, "memory.limit=4GB"}, ValidateOptions{})
	if p != nil || len(ds) != 1 {
		t.Fatalf("limit under the floor accepted:\n%s", ds.Format())
	}
	if got := ds[0].String(); !strings.HasPrefix(got, "--set memory.limit=4GB: error: limit: 4GB is below the estimated floor of 4.53GB") {
		t.Errorf("diagnostic = %q", got)
	}
	if !strings.Contains(ds[0].Detail, "weights            4.52 GB") {
		t.Errorf("detail lacks the breakdown:\n%s", ds[0].Detail)
	}

	// In the file itself the error points at the limit's scalar.
	src, err := os.ReadFile(recipe)
	if err != nil {
		t.Fatal(err)
	}
	src = []byte(strings.Replace(string(src), "limit: 7GB", "limit: 4GB", 1))
	_, ds = ValidateSource("seed.yaml", src, []string{"model=" + dir}, ValidateOptions{})
	if len(ds) != 1 || !strings.HasPrefix(ds[0].String(), "seed.yaml:14:10: error: limit: 4GB is below") {
		t.Errorf("diagnostics:\n%s", ds.Format())
	}

	p, ds = Validate(recipe, []string{"model=" + dir, "memory.limit=5GB"}, ValidateOptions{})
	if p == nil || len(ds) != 1 || ds[0].Severity != Warning || !strings.Contains(ds[0].Summary, "estimated peak") {
		t.Errorf("limit under the peak should warn only:\n%s", ds.Format())
	}
}

// The printed breakdown for the tiny quickstart's model.
func TestBudgetGoldenQuickstart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tiny")
	if err := model.WriteTiny(dir, model.TinyPresets["tiny"]); err != nil {
		t.Fatal(err)
	}
	p, ds := Validate("../recipes/quickstart-tiny.yaml", []string{"model=" + dir}, ValidateOptions{})
	if p == nil || p.Budget == nil {
		t.Fatalf("quickstart invalid:\n%s", ds.Format())
	}
	golden(t, "budget-quickstart.txt", p.Budget.Describe(p.Limit))
}
