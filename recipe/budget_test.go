package recipe

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/testenv"
	"github.com/yai-dev/yai/memplan"
	"github.com/yai-dev/yai/modeldir"
	"github.com/yai-dev/yai/stages"
	"github.com/yai-dev/yai/stages/stage"
)

// writeLlama8BHeaders writes the published config.json of
// mlx-community/Meta-Llama-3.1-8B-Instruct-4bit and a headers-only safetensors file of its
// tensor shapes (every linear, embeddings and lm_head included, as uint32 weights with bf16
// scales and biases; norms bf16). No weight data is written.
func writeLlama8BHeaders(t *testing.T, dir string) {
	t.Helper()
	testenv.WriteHeaderModel(t, dir, llama8B)
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
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Blocks*512 > 1<<20 {
		t.Fatalf("headers-only file takes %d bytes of disk; its data should be a hole", sys.Blocks*512)
	}
	p, ds := Validate("../recipes/llama-3.1-8b-7gb.yaml", []string{"model=" + dir}, ValidateOptions{SkipData: true})
	if p == nil || p.Decision.Budget == nil {
		t.Fatalf("seed recipe invalid:\n%s", ds.Format())
	}
	b := *p.Decision.Budget
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
	if b.SeqLen != 1024 {
		t.Errorf("the seed recipe trains %d tokens, want 1024", b.SeqLen)
	}
	// At 2048 tokens the logits exist a few loss_chunk positions at a time (four
	// checkpointed chunks: 6.3 chunk-sized tensors); in one chunk they cover all 2048 × 128k
	// positions (3 such tensors of four times the size).
	p1, _ := Validate("../recipes/llama-3.1-8b-7gb.yaml", []string{"model=" + dir, "stages.data.with.max_seq_length=2048"}, ValidateOptions{SkipData: true})
	p2, ds2 := Validate("../recipes/llama-3.1-8b-7gb.yaml", []string{"model=" + dir, "stages.data.with.max_seq_length=2048", "stages.train.with.loss_chunk=0"}, ValidateOptions{SkipData: true})
	if p1 == nil || p2 == nil || 2*p2.Decision.Budget.Logits < 3*p1.Decision.Budget.Logits || p2.Decision.Budget.Peak() <= p1.Decision.Budget.Peak() {
		t.Errorf("with loss_chunk 0 the logits should cover all 2048 positions:\n%s", ds2.Format())
	}
	js := p.JSON()
	if js.Budget == nil || js.Budget.Floor != p.Decision.Budget.Floor() || js.Budget.Peak != p.Decision.Budget.Peak() || !js.Budget.Fits {
		t.Errorf("--json budget = %+v", js.Budget)
	}
}

// A limit below the floor is an error at memory.limit; one below the peak only a warning.
func TestBudgetAgainstLimit(t *testing.T) {
	dir := t.TempDir()
	writeLlama8BHeaders(t, dir)
	recipe := "../recipes/llama-3.1-8b-7gb.yaml"
	p, ds := Validate(recipe, []string{"model=" + dir, "memory.limit=4GB"}, ValidateOptions{SkipData: true})
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
	_, ds = ValidateSource("seed.yaml", src, []string{"model=" + dir}, ValidateOptions{SkipData: true})
	if len(ds) != 1 || !strings.HasPrefix(ds[0].String(), "seed.yaml:18:10: error: limit: 4GB is below") {
		t.Errorf("diagnostics:\n%s", ds.Format())
	}

	p, ds = Validate(recipe, []string{"model=" + dir, "memory.limit=5GB"}, ValidateOptions{SkipData: true})
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
	if p == nil || p.Decision.Budget == nil {
		t.Fatalf("quickstart invalid:\n%s", ds.Format())
	}
	golden(t, "budget-quickstart.txt", p.Decision.Budget.Describe(p.Limit))
}

// Over the limit, the dry run plans the cheapest schedule that fits — here the batch of 4
// split into micro-batches — instead of warning; yai run starts with it. --strict warns as
// before and plans nothing.
func TestPreflightSchedule(t *testing.T) {
	dir := t.TempDir()
	writeLlama8BHeaders(t, dir)
	recipe := "../recipes/llama-3.1-8b-7gb.yaml"
	sets := []string{"model=" + dir, "stages.data.with.batch_size=4", "stages.data.with.max_seq_length=1024"}
	p, ds := Validate(recipe, sets, ValidateOptions{SkipData: true})
	if p == nil || len(ds) != 0 {
		t.Fatalf("batch 4 at 7GB:\n%s", ds.Format())
	}
	if p.Decision.Budget.Peak() <= p.Limit {
		t.Fatalf("the whole batch fits (%d ≤ %d): the case tests nothing", p.Decision.Budget.Peak(), p.Limit)
	}
	if p.Decision.Schedule.MicroBatches < 2 || p.Decision.ScheduleBudget == nil || float64(p.Decision.ScheduleBudget.Peak()) > (1-memplan.EstimateMargin)*float64(p.Limit) {
		t.Fatalf("schedule %+v with estimate %v; want a split that fits with 10%% to spare", p.Decision.Schedule, p.Decision.ScheduleBudget)
	}
	// It is the cheapest: one part fewer does not fit.
	fewer := p.Decision.Schedule
	fewer.MicroBatches--
	if b := p.Decision.EstimateSchedule(p.Model, Workload(p.Recipe), fewer); float64(b.Peak()) <= (1-memplan.EstimateMargin)*float64(p.Limit) {
		t.Errorf("%+v would fit too (%d), and splits less", fewer, b.Peak())
	}
	if d := p.Describe(); !strings.Contains(d, "schedule: the whole batch would not fit, so each step computes "+fmt.Sprint(p.Decision.Schedule.MicroBatches)+" micro-batches") {
		t.Errorf("plan does not say the schedule:\n%s", d)
	}
	if info := p.RunInfo(); info.Decision.Schedule != p.Decision.Schedule {
		t.Errorf("the run is not handed the schedule: %+v", info.Decision.Schedule)
	}
	p, ds = Validate(recipe, sets, ValidateOptions{Strict: true, SkipData: true})
	if p == nil || len(ds) != 1 || ds[0].Severity != Warning || p.Decision.Schedule != (memplan.Schedule{}) {
		t.Errorf("--strict: schedule %+v, diagnostics:\n%s", p.Decision.Schedule, ds.Format())
	}
}

// Each rank of a distributed run holds its share of the batch: the estimate is per process.
func TestBudgetIsPerRank(t *testing.T) {
	dir := t.TempDir()
	writeLlama8BHeaders(t, dir)
	budget := func(sets ...string) memplan.Budget {
		t.Helper()
		p, ds := Validate("../recipes/llama-3.1-8b-7gb.yaml", append([]string{"model=" + dir, "stages.data.with.batch_size=4"}, sets...), ValidateOptions{SkipData: true})
		if p == nil || p.Decision.Budget == nil {
			t.Fatalf("invalid:\n%s", ds.Format())
		}
		return *p.Decision.Budget
	}
	one, four := budget(), budget("distributed.ranks=4")
	if one.Batch != 4 || four.Batch != 1 {
		t.Errorf("batch per process: %d alone, %d on 4 ranks", one.Batch, four.Batch)
	}
	if four.Weights != one.Weights || four.Peak() >= one.Peak() {
		t.Errorf("4 ranks: weights %d (alone %d), peak %d (alone %d)", four.Weights, one.Weights, four.Peak(), one.Peak())
	}
}

// compute_dtype counts the converted sizes: float32 on a bfloat16 checkpoint doubles every
// floating tensor (scales, biases, norms) and leaves the packed weights as they are.
func TestBudgetCountsComputeDtype(t *testing.T) {
	dir := t.TempDir()
	writeLlama8BHeaders(t, dir)
	at := func(dtype string) memplan.Budget {
		p, ds := Validate("../recipes/llama-3.1-8b-7gb.yaml", []string{"model=" + dir, "memory.limit=64GB", "stages.load.with.compute_dtype=" + dtype}, ValidateOptions{SkipData: true})
		if p == nil || p.Decision.Budget == nil {
			t.Fatalf("compute_dtype %s:\n%s", dtype, ds.Format())
		}
		return *p.Decision.Budget
	}
	half, full := at("checkpoint"), at("float32")
	info, err := modeldir.Inspect(dir)
	if err != nil {
		t.Fatal(err)
	}
	var floating int64
	for _, ti := range info.Tensors {
		if ti.Dtype == "BF16" {
			floating += ti.Bytes()
		}
	}
	if full.Weights-half.Weights != floating || half.ActDtype != "bfloat16" || full.ActDtype != "float32" {
		t.Errorf("float32 adds %d bytes of weights (want %d); activation dtypes %s, %s", full.Weights-half.Weights, floating, half.ActDtype, full.ActDtype)
	}
	if full.Activations <= half.Activations {
		t.Errorf("float32 activations %d not above bfloat16's %d", full.Activations, half.Activations)
	}
}

// prefix_cache counts its bound in the floor, and validate warns when the adapters cover
// every block (nothing frozen to cache).
func TestBudgetPrefixCache(t *testing.T) {
	dir := t.TempDir()
	writeLlama8BHeaders(t, dir)
	base, _ := Validate("../recipes/llama-3.1-8b-7gb.yaml", []string{"model=" + dir}, ValidateOptions{SkipData: true})
	p, ds := Validate("../recipes/llama-3.1-8b-7gb.yaml", []string{"model=" + dir, "stages.train.with.prefix_cache=200MB"}, ValidateOptions{SkipData: true})
	if p == nil || base == nil || len(ds) != 0 {
		t.Fatalf("prefix_cache 200MB:\n%s", ds.Format())
	}
	if got := p.Decision.Budget.Floor() - base.Decision.Budget.Floor(); got != 200*stages.MB || !strings.Contains(p.Describe(), "prefix cache") {
		t.Errorf("prefix_cache adds %d bytes to the floor, want 200 MB", got)
	}
	_, ds = Validate("../recipes/llama-3.1-8b-7gb.yaml", []string{"model=" + dir, "stages.train.with.prefix_cache=200MB", "stages.lora.with.layers=32"}, ValidateOptions{SkipData: true})
	if !strings.Contains(ds.Format(), "no block is frozen") {
		t.Errorf("adapters on every block with a prefix cache: want a warning, got:\n%s", ds.Format())
	}
}

// matmul: dequantized counts the copies its products keep: with checkpointing the larger of
// the head (128256 × 4096 in bfloat16) and one block's seven projections, without it the head
// and every adapted block's; auto off CUDA leaves them out.
func TestBudgetCountsDequantizedCopies(t *testing.T) {
	dir := t.TempDir()
	writeLlama8BHeaders(t, dir)
	at := func(sets ...string) *Plan {
		p, ds := Validate("../recipes/llama-3.1-8b-7gb.yaml", append([]string{"model=" + dir}, sets...), ValidateOptions{SkipData: true})
		if p == nil || p.Decision.Budget == nil {
			t.Fatalf("%v:\n%s", sets, ds.Format())
		}
		return p
	}
	const head = 128256 * 4096 * 2
	const block = (4096*4096*2 + 1024*4096*2 + 3*14336*4096) * 2
	auto := at()
	dense := at("stages.load.with.matmul=dequantized")
	if auto.Decision.Budget.Copies() != 0 || dense.Decision.Budget.Peak()-auto.Decision.Budget.Peak() != head {
		t.Errorf("auto counts %d of copies (want 0); dequantized adds %d to the peak, want the head's %d", auto.Decision.Budget.Copies(), dense.Decision.Budget.Peak()-auto.Decision.Budget.Peak(), head)
	}
	flat := at("stages.load.with.matmul=dequantized", "stages.train.with.grad_checkpoint=false")
	if got := flat.Decision.Budget.Transient() - at("stages.train.with.grad_checkpoint=false").Decision.Budget.Transient(); got != head+4*block {
		t.Errorf("without checkpointing dequantized products add %d, want the head and 4 blocks: %d", got, head+4*block)
	}
	if auto.Decision.Budget.Overshoot != 512*128256*4 || dense.Decision.Budget.Overshoot != head {
		t.Errorf("largest allocations %d and %d, want a 512-position chunk's float32 logits and the head's copy", auto.Decision.Budget.Overshoot, dense.Decision.Budget.Overshoot)
	}
	if !strings.Contains(dense.Describe(), "dequantized") {
		t.Errorf("the breakdown does not show the copies:\n%s", dense.Describe())
	}
	// Off CUDA auto keeps the quantized kernels whatever the limit (on CUDA it dequantizes
	// what the limit holds: TestBudgetCountsAutoProductsOnCUDA); the run is handed the same.
	for _, limit := range []string{"7GB", "64GB"} {
		if got := at("memory.limit="+limit, "stages.data.with.max_seq_length=1024").RunInfo().Decision.Products; got != (memplan.Products{}) {
			t.Errorf("under %s off CUDA the run dequantizes %+v", limit, got)
		}
	}
}

// On CUDA the dry run counts what matmul: auto will choose under the limit: the copies join
// the peak and the largest allocation (so MLX's limit leaves room for the head's), and the
// breakdown says which parts dequantize, or that none fit.
func TestBudgetCountsAutoProductsOnCUDA(t *testing.T) {
	dir := t.TempDir()
	writeLlama8BHeaders(t, dir)
	env := trainingEnvironment()
	env.SetDevice(memplan.CUDADevice("H100", 9, 0))
	at := func(limit string) *Plan {
		sets := []string{"model=" + dir, "memory.limit=" + limit, "stages.data.with.max_seq_length=1024"}
		p, ds := Validate("../recipes/llama-3.1-8b-7gb.yaml", sets, ValidateOptions{SkipData: true, Env: env})
		if p == nil || p.Decision.Budget == nil {
			t.Fatalf("%v:\n%s", sets, ds.Format())
		}
		return p
	}
	const head = 128256 * 4096 * 2
	const block = (4096*4096*2 + 1024*4096*2 + 3*14336*4096) * 2
	const workspace = 32 << 20
	quantized := at("7GB").Decision.Budget
	for _, c := range []struct {
		limit    string
		products memplan.Products
		copies   int64
		says     string
	}{
		{"7GB", memplan.Products{Frozen: true}, 0, "the limit holds for the frozen blocks below the adapted ones"},
		{"7.5GB", memplan.Products{Blocks: true}, block, "the limit holds for the blocks, not the head too"},
		{"64GB", memplan.Products{Blocks: true, Head: true}, max(block, head), "the limit holds for the blocks and the head"},
	} {
		p := at(c.limit)
		b := p.Decision.Budget
		if b.Products != c.products || b.Products != p.RunInfo().Decision.Products {
			t.Errorf("%s: the budget counts products %+v and the run is handed %+v, want %+v", c.limit, b.Products, p.RunInfo().Decision.Products, c.products)
		}
		if got := b.Peak() - quantized.Peak(); got != c.copies {
			t.Errorf("%s: the copies add %d to the peak, want %d", c.limit, got, c.copies)
		}
		if out := b.Describe(p.Limit); !strings.Contains(out, c.says) {
			t.Errorf("%s: the breakdown does not say %q:\n%s", c.limit, c.says, out)
		}
	}
	if got := at("64GB").Decision.Budget.Overshoot; got != head+workspace {
		t.Errorf("with the head dequantized the largest allocation is %d, want its copy and the workspace: %d", got, head+workspace)
	}
	if got := quantized.Overshoot; got != 512*128256*4+workspace {
		t.Errorf("with quantized kernels the largest allocation is %d, want a chunk's logits and the workspace", got)
	}
}

// trainingEnvironment can build every kind the seed recipe uses, as a training backend's
// does, without one: the dry run on a device this machine lacks.
func trainingEnvironment() *stages.Environment {
	type none struct{}
	env := stages.NewEnvironment()
	stages.SetBackend(env, "dry", func(stages.RunInfo) (none, func(), error) { return none{}, func() {}, nil })
	stages.Implement(env, stages.Load4Bit, func(*stages.Load4BitConfig, none) (stage.Stage, error) { return nil, nil })
	stages.Implement(env, stages.AttachLoRA, func(*stages.AttachLoRAConfig, none) (stage.Stage, error) { return nil, nil })
	stages.Implement(env, stages.Data, func(*stages.DataConfig, none) (stage.Stage, error) { return nil, nil })
	stages.Implement(env, stages.Step, func(*stages.StepConfig, none) (stage.Stage, error) { return nil, nil })
	stages.Implement(env, stages.ReloadSelective, func(*stages.ReloadSelectiveConfig, none) (stage.Stage, error) { return nil, nil })
	stages.Implement(env, stages.Eval, func(*stages.EvalConfig, none) (stage.Stage, error) { return nil, nil })
	stages.Implement(env, stages.SaveAdapter, func(*stages.SaveAdapterConfig, none) (stage.Stage, error) { return nil, nil })
	stages.Implement(env, stages.Adapt, func(*stages.AdaptConfig, none) (stage.Stage, error) { return nil, nil })
	return env
}
