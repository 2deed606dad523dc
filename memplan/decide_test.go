package memplan

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/yai-dev/yai/internal/testenv"
	"github.com/yai-dev/yai/modeldir"
)

// llama8B inspects the headers of Llama-3.1-8B-Instruct in mlx-community's 4-bit layout
// (bfloat16 scales, biases and norms); no weight data is written.
func llama8B(t *testing.T) *modeldir.Info {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "8b")
	testenv.WriteHeaderModel(t, dir, modeldir.Config{ModelType: "llama", NumHiddenLayers: 32, HiddenSize: 4096, IntermediateSize: 14336,
		NumAttentionHeads: 32, NumKeyValueHeads: 8, VocabSize: 128256})
	info, err := modeldir.Inspect(dir)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// seedWorkload is the seed recipe's step (rank 16 on q_proj of 4 blocks, one row of 1,024
// tokens, checkpointed) with compute_dtype and matmul left to the plan.
func seedWorkload() Workload {
	return Workload{ComputeDtype: "auto", Matmul: "auto", Rank: 16, Layers: 4, Keys: []string{"self_attn.q_proj"},
		BatchSize: 1, MaxSeqLength: 1024, Optimizer: "adamw", Accumulation: 1, GradCheckpoint: true, LossChunk: 512}
}

const (
	gbytes    = 1000 * 1000 * 1000
	headCopy  = 128256 * 4096 * 2                              // the head dequantized, bfloat16
	chunk     = 512 * 128256 * 4                               // a loss chunk's float32 logits
	hopperWS  = 32 << 20                                       // cuBLAS's workspace from sm_90
	cpuLimit7 = 7*gbytes - chunk                               // MLX's limit under 7 GB on the CPU
	blockCopy = (4096*4096*2 + 1024*4096*2 + 3*14336*4096) * 2 // one block's projections
)

// One decision sets the run up: on the CPU auto computes in float32 with the quantized
// kernels; on CUDA in the checkpoint's bfloat16, dequantizing what the limit holds (nothing
// under a tight limit, the blocks and the head under a loose one). MLX's limit sits below
// the recipe's by the step's largest allocation; the cache limit is the recipe's.
func TestDecide(t *testing.T) {
	info := llama8B(t)
	hopper := CUDADevice("H100", 9, 0)
	for _, c := range []struct {
		name   string
		dev    Device
		limit  int64
		edit   func(*Workload)
		want   Decision // Device, ComputeDtype, Convert, Products, MLXLimit, CacheLimit
		copies int64    // the dequantized copies the estimate counts
	}{
		{name: "cpu", dev: Device{Backend: "cpu", Name: "CPU"}, limit: 7 * gbytes,
			want: Decision{ComputeDtype: "float32", Convert: true, MLXLimit: cpuLimit7, CacheLimit: 1 << 30}},
		{name: "cuda, tight: the frozen blocks fit", dev: hopper, limit: 7 * gbytes,
			want: Decision{ComputeDtype: "bfloat16", Products: Products{Frozen: true}, MLXLimit: 7*gbytes - chunk - hopperWS, CacheLimit: 1 << 30}},
		{name: "cuda, the blocks fit", dev: hopper, limit: 7.5 * gbytes,
			want:   Decision{ComputeDtype: "bfloat16", Products: Products{Blocks: true}, MLXLimit: 7.5*gbytes - chunk - hopperWS, CacheLimit: 1 << 30},
			copies: blockCopy},
		{name: "cuda, loose", dev: hopper, limit: 64 * gbytes,
			want:   Decision{ComputeDtype: "bfloat16", Products: Products{Blocks: true, Head: true}, MLXLimit: 64*gbytes - headCopy - hopperWS, CacheLimit: 1 << 30},
			copies: headCopy},
		{name: "cuda, loose, quantized as written", dev: hopper, limit: 64 * gbytes, edit: func(w *Workload) { w.Matmul = "quantized" },
			want: Decision{ComputeDtype: "bfloat16", MLXLimit: 64*gbytes - chunk - hopperWS, CacheLimit: 1 << 30}},
		{name: "cpu, dequantized and float16 as written", dev: Device{Backend: "cpu", Name: "CPU"}, limit: 64 * gbytes,
			edit:   func(w *Workload) { w.Matmul, w.ComputeDtype = "dequantized", "float16" },
			want:   Decision{ComputeDtype: "float16", Convert: true, Products: Products{Blocks: true, Head: true}, MLXLimit: 64*gbytes - headCopy, CacheLimit: 1 << 30},
			copies: headCopy},
	} {
		w := seedWorkload()
		if c.edit != nil {
			c.edit(&w)
		}
		d := Decide(Inputs{Model: info, Workload: w, Device: c.dev, Limit: c.limit, CacheLimit: 1 << 30})
		if d.Budget == nil {
			t.Fatalf("%s: no estimate", c.name)
		}
		got := Decision{ComputeDtype: d.ComputeDtype, Convert: d.Convert, Products: d.Products, MLXLimit: d.MLXLimit, CacheLimit: d.CacheLimit}
		if diff := cmp.Diff(c.want, got); diff != "" || d.Device != c.dev {
			t.Errorf("%s: decision on %+v (-want +got):\n%s", c.name, d.Device, diff)
		}
		b := d.Budget
		if b.Products != d.Products || b.ActDtype != d.ComputeDtype || b.Copies() != c.copies {
			t.Errorf("%s: the estimate counts products %+v in %s with %d of copies; the decision is %+v in %s, %d", c.name, b.Products, b.ActDtype, b.Copies(), d.Products, d.ComputeDtype, c.copies)
		}
		if b.Peak() <= c.limit && (d.Schedule != Schedule{} || d.ScheduleBudget != nil) {
			t.Errorf("%s: the whole batch fits, yet the decision starts with %+v", c.name, d.Schedule)
		}
	}
}

// Without the model the decision holds the device and the limits as the recipe gives them.
func TestDecideWithoutTheModel(t *testing.T) {
	d := Decide(Inputs{Workload: seedWorkload(), Limit: 7 * gbytes, CacheLimit: 1 << 30})
	if want := PlatformDevice(); d.Device != want || d.MLXLimit != 7*gbytes || d.CacheLimit != 1<<30 || d.Budget != nil || d.ComputeDtype != "" {
		t.Errorf("decision %+v, want the platform's device and the recipe's limits only", d)
	}
}

// Over the limit the decision starts with the cheapest schedule that fits with the
// estimate's margin — here the batch of 4 split — and with Strict it keeps the step whole.
func TestDecideSchedule(t *testing.T) {
	info := llama8B(t)
	w := seedWorkload()
	w.ComputeDtype, w.BatchSize = "checkpoint", 4
	in := Inputs{Model: info, Workload: w, Device: Device{Backend: "metal"}, Limit: 7 * gbytes}
	d := Decide(in)
	if d.Budget.Peak() <= in.Limit {
		t.Fatalf("the whole batch fits (%d): the case tests nothing", d.Budget.Peak())
	}
	if d.Schedule.MicroBatches < 2 || d.ScheduleBudget == nil || float64(d.ScheduleBudget.Peak()) > (1-EstimateMargin)*float64(in.Limit) {
		t.Fatalf("schedule %+v with estimate %v; want a split that fits with the margin to spare", d.Schedule, d.ScheduleBudget)
	}
	if !strings.Contains(d.Describe(in.Limit), "schedule: the whole batch would not fit, so each step computes") {
		t.Errorf("the decision does not say its schedule:\n%s", d.Describe(in.Limit))
	}
	in.Strict = true
	if d := Decide(in); d.Schedule != (Schedule{}) || d.ScheduleBudget != nil {
		t.Errorf("strict: schedule %+v", d.Schedule)
	}
	in.Strict, in.Ranks = false, 4 // one row per process fits whole
	if d := Decide(in); d.Budget.Batch != 1 || d.Schedule != (Schedule{}) {
		t.Errorf("4 ranks: batch %d per process, schedule %+v", d.Budget.Batch, d.Schedule)
	}
}

// MLX's limit sits below the recipe's by the step's largest allocation, at most a quarter
// of the limit.
func TestMLXLimitLeavesRoomForOneAllocation(t *testing.T) {
	const limit = 1_000_000_000
	for overshoot, want := range map[int64]int64{0: limit, 200 << 20: limit - 200<<20, 400 << 20: limit * 3 / 4} {
		if got := mlxLimit(limit, overshoot); got != want {
			t.Errorf("overshoot %d: MLX limit %d, want %d", overshoot, got, want)
		}
	}
}

// The estimate follows the device: compute_dtype auto is float32 on the CPU and the
// checkpoint's bfloat16 on a GPU, and on CUDA a product's cuBLAS workspace (32 MiB from
// compute capability 9, 4 MiB before) adds to the peak and to the largest allocation.
func TestBudgetFollowsTheDevice(t *testing.T) {
	info := llama8B(t)
	on := func(d Device) Budget { return *Decide(Inputs{Model: info, Workload: seedWorkload(), Device: d}).Budget }
	cpu, metal := on(Device{Backend: "cpu"}), on(Device{Backend: "metal"})
	hopper, ampere := on(CUDADevice("H100", 9, 0)), on(CUDADevice("A100", 8, 0))
	if cpu.ActDtype != "float32" || metal.ActDtype != "bfloat16" || hopper.ActDtype != "bfloat16" {
		t.Errorf("compute_dtype auto: CPU %s, Metal %s, CUDA %s; want float32, bfloat16, bfloat16", cpu.ActDtype, metal.ActDtype, hopper.ActDtype)
	}
	for _, c := range []struct {
		name string
		b    Budget
		ws   int64
	}{{"cpu", cpu, 0}, {"metal", metal, 0}, {"sm_90", hopper, 32 << 20}, {"sm_80", ampere, 4 << 20}} {
		if c.b.Workspace != c.ws {
			t.Errorf("%s: workspace %d, want %d", c.name, c.b.Workspace, c.ws)
		}
	}
	if d := hopper.Peak() - metal.Peak(); d != 32<<20 {
		t.Errorf("CUDA's peak is %d above Metal's, want the 32 MiB workspace", d)
	}
	if d := hopper.Overshoot - metal.Overshoot; d != 32<<20 {
		t.Errorf("CUDA's largest allocation is %d above Metal's, want the 32 MiB workspace", d)
	}
	const limit = 7 * gbytes
	if out := hopper.Describe(limit); !strings.Contains(out, "matmul scratch") || !strings.Contains(out, "H100 (compute capability 9.0)") {
		t.Errorf("the CUDA breakdown does not show the workspace:\n%s", out)
	}
	if out := metal.Describe(limit); strings.Contains(out, "matmul scratch") {
		t.Errorf("Metal's breakdown shows a workspace:\n%s", out)
	}
}

// Long rows get attention and MLP chunks where their whole tensors pass chunkFrom, short rows
// none, and sequence_chunks: off none at any length.
func TestDecideSequenceChunks(t *testing.T) {
	info := llama8B(t)
	at := func(seq int, setting string) Chunks {
		w := seedWorkload()
		w.MaxSeqLength, w.SequenceChunks = seq, setting
		return Decide(Inputs{Model: info, Workload: w, Limit: 7 << 30, Device: Device{Backend: "cpu", Name: "CPU"}}).Chunks
	}
	if c := at(1024, "auto"); c != (Chunks{}) {
		t.Errorf("1,024 tokens: chunks %+v, want none (the whole row's scores are 128 MB)", c)
	}
	c := at(8192, "auto")
	if c.Attention == 0 || c.Attention >= 8192 || c.FeedForward == 0 || c.FeedForward >= 8192 {
		t.Errorf("8,192 tokens: chunks %+v, want attention and the MLP in chunks", c)
	}
	if scores := int64(32) * int64(c.Attention) * 8192 * 4; scores > chunkBytes {
		t.Errorf("8,192 tokens: a chunk of %d queries holds %d bytes of scores, over %d", c.Attention, scores, chunkBytes)
	}
	if c := at(8192, "off"); c != (Chunks{}) {
		t.Errorf("sequence_chunks off: chunks %+v, want none", c)
	}
}
