package mlxbackend

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/yai-dev/yai/internal/lora"
	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/rundir"
	"github.com/yai-dev/yai/internal/testenv"
	"github.com/yai-dev/yai/memplan"
	"github.com/yai-dev/yai/mlx"
	"github.com/yai-dev/yai/modeldir"
	"github.com/yai-dev/yai/recipe"
	"github.com/yai-dev/yai/stages"
)

var micro struct {
	once sync.Once
	dir  string
	err  error
}

// governedModel is the model the governor's tests train: the micro preset, the smallest, for
// long runs. On a GPU it is the SmolLM2-135M shape instead: the micro model's steps (a few MB)
// are smaller than the scratch cuBLAS may take for one product (up to 32 MiB on Hopper), which
// the estimate counts whole, so its schedules would differ by less than that bound; the larger
// model's steps take hundreds of MB.
func governedModel(t testing.TB) string {
	t.Helper()
	micro.once.Do(func() {
		micro.dir, micro.err = os.MkdirTemp("", "yai-micro-")
		preset := "micro"
		if onGPU() {
			preset = "smollm2-135m"
		}
		if micro.err == nil {
			micro.err = model.WriteTiny(micro.dir, model.TinyPresets[preset])
		}
	})
	if micro.err != nil {
		t.Fatal(micro.err)
	}
	return micro.dir
}

// governedRecipe trains the governed model with batches of 8 under a guard that adapts. Its
// products are quantized and in float32 on every backend (as auto makes them on the CPU).
func governedRecipe(t testing.TB, steps int, limit, data string, extra string) string {
	return fmt.Sprintf(`version: 1
name: governed
model: %s
data: %s
steps: %d
memory: {limit: %s}
stages:
  - {id: load, kind: load-4bit, with: {compute_dtype: float32, matmul: quantized}}
  - {id: lora, kind: attach-lora, after: [load], with: {rank: 8, layers: 2, keys: [q_proj, v_proj]}}
  - {id: data, kind: data, after: [load], with: {format: text, batch_size: 8, max_seq_length: 96, shuffle: false}}
  - {id: train, kind: step, with: {lr: 1e-3, grad_checkpoint: false}}
%s`, governedModel(t), data, steps, limit, extra)
}

// splitLossTol is how far a split step's loss may be from the whole batch's, relative. On a
// GPU float32 products run on TF32 tensor cores and a split batch rounds differently (2e-3,
// as the mlx-lm loss curve's tolerance).
func splitLossTol() float64 {
	if onGPU() {
		return 2e-3
	}
	return 1e-5
}

// lossesAgree checks a governed run's losses against those of the same recipe run whole. On
// the CPU every step agrees to splitLossTol. On a GPU a split batch rounds differently and
// Adam carries the difference into the adapters (train.TestScheduleKeepsTheResult), so two
// runs part slowly, as any two runs there whose batches are computed in another order: the
// first 50 steps agree to splitLossTol, and the mean loss of the last 100 to 3%.
func lossesAgree(t *testing.T, got, want []rundir.Metrics) {
	t.Helper()
	rel := func(a, b rundir.Loss) float64 { return math.Abs(float64(a-b)) / float64(b) }
	worst := 0.0
	for i, m := range got {
		if onGPU() && i >= 50 {
			break
		}
		d := rel(m.Loss, want[i].Loss)
		worst = max(worst, d)
		if d > splitLossTol() {
			t.Errorf("step %d: loss %v, unlimited %v (%.2g relative)", m.Step, m.Loss, want[i].Loss, d)
		}
	}
	if !onGPU() || len(got) <= 100 {
		return
	}
	var a, b rundir.Loss
	for i := len(got) - 100; i < len(got); i++ {
		a, b = a+got[i].Loss, b+want[i].Loss
	}
	t.Logf("losses: the first 50 steps agree to %.2g; the mean of the last 100 is %v, unlimited %v (%.2g relative)", worst, a/100, b/100, rel(a, b))
	if rel(a, b) > 0.03 {
		t.Errorf("mean loss of the last 100 steps %v, unlimited %v", a/100, b/100)
	}
}

// estimatedStep is what the memory estimate says a step of the recipe src needs above active
// memory, for a batch of rows × width tokens computed with sc: what the governor predicts
// before it has measured a step.
func estimatedStep(t *testing.T, src string, rows, width int, sc memplan.Schedule) int64 {
	t.Helper()
	p, ds := recipe.ValidateSource("governed.yaml", []byte(src), nil, recipe.ValidateOptions{SkipData: true, Env: Environment()})
	if p == nil {
		t.Fatal(ds.Format())
	}
	w := recipe.Workload(p.Recipe)
	w.BatchSize, w.MaxSeqLength = rows, width
	return p.Decision.EstimateSchedule(p.Model, w, sc).Step()
}

// gpuLimit is, on a GPU, a limit under which the governor's first prediction (active plus
// the estimate, less the default margin of 10%) fits a step needing fits above active and
// not one needing over.
func gpuLimit(active, fits, over int64) int64 {
	return int64(float64(active+(fits+over)/2) / 0.9)
}

var (
	wholeBatch  = memplan.Schedule{MicroBatches: 1}
	halvedBatch = memplan.Schedule{MicroBatches: 2}
)

// adaptStage is the governor and a guard that calls on it after a crossing.
const adaptStage = "  - {id: adapt, kind: adapt, with: {relax_after: 5}}\n" +
	"  - {id: guard, kind: guard, with: {watch: [mlx.peak], buffer: 0, action: adapt}}\n"

// A limit between the peak of a split step and that of a whole-batch step: the run does not
// stop, every step's MLX peak stays under the limit, and the losses equal those of the same
// recipe run without a limit. With --strict, under a limit a whole batch cannot meet, the
// guard stops it. The default tier runs 200 steps: four epochs of the quickstart's 50
// batches of 8 rows in file order, so every batch comes back three times under the schedule
// the governor has learned on it, and more than the 100 steps whose mean loss a GPU
// compares. The long tier runs 1,000 (twenty epochs).
func TestAdaptKeepsStepsUnderTheLimit(t *testing.T) {
	steps := testenv.Size(t, "steps", 200, 1000)
	freeSrc := governedRecipe(t, steps, "2GB", quickstartData(), adaptStage)
	free := runRecipe(t, t.TempDir(), freeSrc)
	if free.ExitCode != 0 || len(free.metrics) != steps {
		t.Fatalf("unlimited run: exit %d, %d steps", free.ExitCode, len(free.metrics))
	}
	var base, whole int64 = math.MaxInt64, 0
	for _, m := range free.metrics {
		base, whole = min(base, m.MLXActive), max(whole, m.MLXPeak)
		if m.MicroBatches != 1 {
			t.Fatalf("step %d split with 2GB to spare", m.Step)
		}
	}
	limit := base + (whole-base)*6/10 // half the batch fits, the whole does not
	// MLX's own limit, held below the recipe's, makes evaluation wait for memory and can keep
	// a whole batch under this limit by itself; under a third of the way it cannot.
	tight := base + (whole-base)*3/10
	if onGPU() {
		// MLX runs ahead into free memory, so the unlimited peaks say little of what a step
		// needs: the limits come from the estimate the governor starts from.
		w, h := estimatedStep(t, freeSrc, 8, 96, wholeBatch), estimatedStep(t, freeSrc, 8, 96, halvedBatch)
		limit, tight = gpuLimit(base, h, w), base+w*3/10
	}
	src := governedRecipe(t, steps, fmt.Sprintf("%dB", limit), quickstartData(), adaptStage)
	res := runRecipe(t, t.TempDir(), src)
	if res.ExitCode != 0 || len(res.metrics) != steps {
		t.Fatalf("limited run: exit %d (%s), %d steps", res.ExitCode, res.Reason, len(res.metrics))
	}
	split, worst := 0, int64(0)
	for _, m := range res.metrics {
		if m.MLXPeak > limit {
			t.Errorf("step %d peaked at %d bytes, over the limit %d (schedule %d micro-batches)", m.Step, m.MLXPeak, limit, m.MicroBatches)
		}
		if m.MicroBatches > 1 {
			split++
		}
		worst = max(worst, m.MLXPeak)
	}
	if split == 0 {
		t.Error("no step was split, yet the whole batch does not fit")
	}
	lossesAgree(t, res.metrics, free.metrics)
	t.Logf("limit %d bytes between active %d and the whole batch's peak %d; %d of %d steps split; highest peak %d", limit, base, whole, split, steps, worst)
	strict := runRecipeStrict(t, t.TempDir(), governedRecipe(t, steps, fmt.Sprintf("%dB", tight), quickstartData(), adaptStage), true)
	if strict.ExitCode != 3 || !strings.Contains(strict.Reason, "memory guard: mlx.peak") {
		t.Errorf("--strict: exit %d (%s), want the guard's stop", strict.ExitCode, strict.Reason)
	}
}

// phasedData writes 48 long rows, then 200 short ones: with shuffle off, six batches that
// need a split, then batches that fit whole.
func phasedData(t *testing.T) string {
	dir := t.TempDir()
	var rows []string
	for i := range 248 {
		text := fmt.Sprintf("Kai has %d green hens.", i)
		if i < 48 {
			text = strings.Repeat(fmt.Sprintf("The hen number %d of Kai is green and small. ", i), 8)
		}
		js, _ := json.Marshal(map[string]string{"text": text})
		rows = append(rows, string(js))
	}
	body := []byte(strings.Join(rows, "\n") + "\n")
	os.WriteFile(filepath.Join(dir, "train.jsonl"), body, 0o644)
	os.WriteFile(filepath.Join(dir, "valid.jsonl"), body, 0o644)
	return dir
}

// When headroom returns (short rows after long ones), the governor goes back to whole
// batches after relax_after steps, and the steps stay under the limit throughout.
func TestAdaptRelaxesWhenHeadroomReturns(t *testing.T) {
	data := phasedData(t)
	freeSrc := governedRecipe(t, 20, "2GB", data, adaptStage)
	free := runRecipe(t, t.TempDir(), freeSrc)
	if free.ExitCode != 0 {
		t.Fatalf("unlimited run: exit %d", free.ExitCode)
	}
	var limit int64
	if onGPU() { // the limit from the estimate, as in TestAdaptKeepsStepsUnderTheLimit
		base := free.metrics[0].MLXActive
		for _, m := range free.metrics {
			base = min(base, m.MLXActive)
		}
		whole, halved := estimatedStep(t, freeSrc, 8, 96, wholeBatch), estimatedStep(t, freeSrc, 8, 96, halvedBatch)
		if short := estimatedStep(t, freeSrc, 8, 33, wholeBatch); short >= halved {
			t.Fatalf("a whole short batch is estimated at %d, half a long one at %d: the data does not make two phases", short, halved)
		}
		limit = gpuLimit(base, halved, whole)
	} else {
		long, short := free.metrics[0].MLXPeak, free.metrics[10].MLXPeak
		if short*2 > long {
			t.Fatalf("short batches peak at %d, long ones at %d: the data does not make two phases", short, long)
		}
		limit = short * 3 / 2
	}
	res := runRecipe(t, t.TempDir(), governedRecipe(t, 20, fmt.Sprintf("%dB", limit), data, adaptStage))
	if res.ExitCode != 0 {
		t.Fatalf("limited run: exit %d (%s)", res.ExitCode, res.Reason)
	}
	var schedule []int64
	for _, m := range res.metrics {
		schedule = append(schedule, m.MicroBatches)
		if m.MLXPeak > limit {
			t.Errorf("step %d peaked at %d, over the limit %d", m.Step, m.MLXPeak, limit)
		}
	}
	lossesAgree(t, res.metrics, free.metrics)
	if schedule[0] < 2 || schedule[5] < 2 || schedule[len(schedule)-1] != 1 {
		t.Errorf("micro-batches per step %v: want a split for the six long batches, whole batches again at the end", schedule)
	}
	relaxed := 0
	for _, m := range res.metrics {
		if note, _ := m.Notes["adapt"].(string); strings.Contains(note, "→ the whole batch") {
			relaxed = int(m.Step)
		}
	}
	if relaxed != 11 { // six long steps; the fifth short one in a row runs whole
		t.Errorf("relaxed at step %d; want 11, the fifth short step in a row (relax_after: 5)", relaxed)
	}
	log, _ := os.ReadFile(filepath.Join(res.RunDir, "run.log"))
	if !strings.Contains(string(log), "adapt: ") {
		t.Error("run.log records no adaptation")
	}
}

// A step the backend fails to allocate (as Metal and CUDA report it; the CPU backend never
// does, so the failure is injected) is run again with a smaller schedule instead of ending
// the run, and computes the same loss.
func TestAllocationFailureRetriesSmaller(t *testing.T) {
	src := governedRecipe(t, 6, "2GB", quickstartData(), "")
	free := runRecipe(t, t.TempDir(), src)
	failing := environment(func(s memplan.Schedule) error {
		if s.MicroBatches < 4 {
			return &mlx.Error{Op: "eval", Msg: "[metal::malloc] Unable to allocate 1073741824 bytes"}
		}
		return nil
	})
	res := runRecipeIn(t, failing, t.TempDir(), src, false)
	if res.ExitCode != 0 {
		t.Fatalf("exit %d (%s)", res.ExitCode, res.Reason)
	}
	for i, m := range res.metrics {
		if m.MicroBatches != 4 || m.Loss != free.metrics[i].Loss && math.Abs(float64(m.Loss-free.metrics[i].Loss))/float64(free.metrics[i].Loss) > splitLossTol() {
			t.Errorf("step %d: %d micro-batches, loss %v; want 4 and %v", m.Step, m.MicroBatches, m.Loss, free.metrics[i].Loss)
		}
	}
	if note, _ := res.metrics[0].Notes["allocation_retry"].(string); !strings.Contains(note, "4 micro-batches") {
		t.Errorf("step 1 notes %v; want the retry recorded", res.metrics[0].Notes)
	}
	strict := runRecipeIn(t, failing, t.TempDir(), src, true)
	if strict.ExitCode != 1 || !strings.Contains(strict.Reason, "Unable to allocate") {
		t.Errorf("--strict: exit %d (%s); want the allocation error", strict.ExitCode, strict.Reason)
	}
}

// The governor learns how far the estimate was off from each step's peak. On a GPU, where MLX
// runs ahead into free memory, a peak under the limit may lower the estimate but not raise
// it; a peak over the limit raises it on every backend.
func TestGovernorLearnsFromPeaksAsTheDeviceAllows(t *testing.T) {
	info, err := modeldir.Inspect(governedModel(t))
	if err != nil {
		t.Fatal(err)
	}
	learn := func(dev memplan.Device, measured float64, limit int64) float64 {
		plan := memplan.Decide(memplan.Inputs{Model: info, Workload: memplan.Workload{ComputeDtype: "auto", Matmul: "auto"}, Device: dev})
		g := &governor{ratio: map[memplan.Schedule]float64{}, info: info, r: &Training{
			info:    stages.RunInfo{Decision: plan},
			lora:    &lora.Config{Rank: 8, NumLayers: 2, Keys: []string{"self_attn.q_proj", "self_attn.v_proj"}},
			dataCfg: stages.Data.Defaults(),
		}}
		w := g.workload()
		w.BatchSize, w.MaxSeqLength = 8, 96
		const active = 1 << 20
		peak := active + int64(measured*float64(g.excess(w, wholeBatch)))
		g.r.lastStep = stepMemory{ran: true, activeBefore: active, peak: peak, schedule: wholeBatch, rows: 8, width: 96}
		if limit < 0 { // just under the peak
			limit = peak - 1
		}
		g.calibrate(limit)
		return g.ratio[wholeBatch]
	}
	cpu, cuda, metal := memplan.Device{Backend: "cpu"}, memplan.CUDADevice("H100", 9, 0), memplan.Device{Backend: "metal"}
	for _, c := range []struct {
		name     string
		dev      memplan.Device
		measured float64
		limit    int64
		want     float64
	}{
		{"cpu, over the estimate", cpu, 1.5, 1 << 40, 1.5},
		{"cpu, under it", cpu, 0.5, 1 << 40, 0.5},
		{"cuda, over the estimate, under the limit", cuda, 1.5, 1 << 40, 1},
		{"metal, over the estimate, under the limit", metal, 1.5, 1 << 40, 1},
		{"cuda, under the estimate", cuda, 0.5, 1 << 40, 0.5},
		{"cuda, over the limit", cuda, 1.5, -1, 1.5},
	} {
		if got := learn(c.dev, c.measured, c.limit); math.Abs(got-c.want) > 1e-6 {
			t.Errorf("%s: learned ratio %.4f, want %.4f", c.name, got, c.want)
		}
	}
}
