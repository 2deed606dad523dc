package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/yai-dev/yai/internal/rundir"
	"github.com/yai-dev/yai/recipe"
	"github.com/yai-dev/yai/stages"
	"github.com/yai-dev/yai/stages/stage"
)

// fakeMemory stands in for MLX: tests move its figures; ClearCache empties the cache.
type fakeMemory struct {
	active, peak, cache, arrays int64
	clears                      int
}

func (m *fakeMemory) Active() int64 { return m.active }
func (m *fakeMemory) Peak() int64   { return m.peak }
func (m *fakeMemory) Cache() int64  { return m.cache }
func (m *fakeMemory) Arrays() int64 { return m.arrays }
func (m *fakeMemory) ClearCache()   { m.cache = 0; m.clears++ }
func (m *fakeMemory) ResetPeak()    { m.peak = m.active }

// fakeTraining is a training backend for the engine tests: step calls onStep and reports a
// falling loss; save-adapter records that it ran; eval reports 1.5, or fails with evalErr.
type fakeTraining struct {
	onStep  func(step int64)
	saved   *int
	evalErr error
	trained *int64 // steps trained: the state a checkpoint saves and a resume restores
	evals   *int   // eval stages run
}

// SaveState and LoadState make the fake's state checkpointable.
func (f fakeTraining) SaveState(dir string) error {
	return os.WriteFile(filepath.Join(dir, "fake.json"), []byte(strconv.FormatInt(*f.trained, 10)), 0o644)
}

func (f fakeTraining) LoadState(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, "fake.json"))
	if err == nil {
		*f.trained, err = strconv.ParseInt(string(b), 10, 64)
	}
	return err
}

func (f fakeTraining) env() *stages.Environment {
	if f.trained == nil {
		f.trained = new(int64)
	}
	if f.saved == nil {
		f.saved = new(int)
	}
	env := stages.NewEnvironment()
	stages.SetBackend(env, "fake", func(stages.RunInfo) (fakeTraining, func(), error) { return f, nil, nil })
	stages.Implement(env, stages.Step, func(_ *stages.StepConfig, f fakeTraining) (stage.Stage, error) {
		return stage.StageFunc(func(ctx context.Context, s *stage.Session) error {
			if f.onStep != nil {
				f.onStep(s.Figures.Step)
			}
			*f.trained++
			s.Report(stage.Report{Loss: 10 / float64(*f.trained), Tokens: 100, LR: 1e-4})
			return nil
		}), nil
	})
	stages.Implement(env, stages.SaveAdapter, func(_ *stages.SaveAdapterConfig, f fakeTraining) (stage.Stage, error) {
		return stage.StageFunc(func(ctx context.Context, s *stage.Session) error {
			*f.saved++
			return os.WriteFile(filepath.Join(s.RunDir, "adapters.safetensors"), []byte("x"), 0o644)
		}), nil
	})
	stages.Implement(env, stages.Eval, func(_ *stages.EvalConfig, f fakeTraining) (stage.Stage, error) {
		return stage.StageFunc(func(ctx context.Context, s *stage.Session) error {
			if f.evalErr != nil {
				return f.evalErr
			}
			if f.evals != nil {
				*f.evals++
			}
			s.ReportEval(1.5)
			return nil
		}), nil
	})
	return env
}

func plan(t *testing.T, src string) *recipe.Plan {
	t.Helper()
	p, ds := recipe.ValidateSource("r.yaml", []byte(src), nil, recipe.ValidateOptions{SkipModel: true})
	if p == nil {
		t.Fatalf("recipe invalid:\n%s", ds.Format())
	}
	return p
}

func readMetrics(t *testing.T, dir string) []rundir.Metrics {
	t.Helper()
	ms, torn, err := rundir.ReadMetrics(dir, 0)
	if err != nil || torn {
		t.Fatalf("metrics.jsonl: %v (torn %v)", err, torn)
	}
	return ms
}

// firedOn lists the steps whose metrics line records the stage id as fired.
func firedOn(ms []rundir.Metrics, id string) []int64 {
	out := []int64{}
	for _, m := range ms {
		if slices.Contains(m.Fired, id) {
			out = append(out, m.Step)
		}
	}
	return out
}

func quietOptions(t *testing.T, mem *fakeMemory, env *stages.Environment) RunOptions {
	return RunOptions{RunsDir: t.TempDir(), Memory: mem, Env: env, Console: NewConsole(io.Discard, false)}
}

const engineRecipe = `version: 1
name: engine-test
model: ./none
steps: 12
memory: {limit: 1GB}
stages:
  - {id: train, kind: step}
  - {id: every3, kind: clear-cache, when: "step % 3 == 0"}
  - {id: bigcache, kind: clear-cache, when: "mlx.cache > 35*MB", after: [every3]}
  - {id: eval, kind: eval, every: 4}
  - {id: onEval, kind: log, on: on-eval, with: {level: debug}}
  - {id: save, kind: save-adapter, on: teardown}
`

// clear-cache on `step % 3 == 0` fires on exactly those steps, and a trigger on mlx.cache fires
// once the (fake) cache passes 35 MB; metrics.jsonl records both.
func TestEngineTriggersFireOnTheRightSteps(t *testing.T) {
	mem := &fakeMemory{}
	saved := 0
	// The step grows the cache by 10 MB; every3 clears it on steps 3, 6, 9, 12, so it never
	// passes 35 MB — unless every3 is off. Run once as is, then with every3 disabled.
	grow := func(int64) { mem.cache += 10 * stages.MB }
	opts := quietOptions(t, mem, fakeTraining{onStep: grow, saved: &saved}.env())
	res, err := Run(context.Background(), plan(t, engineRecipe), opts)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("run: %v (exit %d)", err, res.ExitCode)
	}
	ms := readMetrics(t, res.RunDir)
	if len(ms) != 12 {
		t.Fatalf("want 12 metrics lines, got %d", len(ms))
	}
	if diff := cmp.Diff([]int64{3, 6, 9, 12}, firedOn(ms, "every3")); diff != "" {
		t.Errorf("every3 fired (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int64{}, firedOn(ms, "bigcache")); diff != "" {
		t.Errorf("bigcache fired although every3 kept the cache small (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int64{4, 8, 12}, firedOn(ms, "onEval")); diff != "" {
		t.Errorf("on-eval fired (-want +got):\n%s", diff)
	}
	if saved != 1 {
		t.Errorf("teardown save ran %d times, want 1", saved)
	}

	// Without every3 the cache reaches 40 MB on step 4: bigcache fires there, clears, and
	// fires again on step 8 and 12.
	mem2 := &fakeMemory{}
	grow2 := func(int64) { mem2.cache += 10 * stages.MB }
	src := strings.Replace(engineRecipe, `when: "step % 3 == 0"`, `when: "false"`, 1)
	res, err = Run(context.Background(), plan(t, src), quietOptions(t, mem2, fakeTraining{onStep: grow2, saved: &saved}.env()))
	if err != nil {
		t.Fatal(err)
	}
	ms = readMetrics(t, res.RunDir)
	if diff := cmp.Diff([]int64{4, 8, 12}, firedOn(ms, "bigcache")); diff != "" {
		t.Errorf("bigcache fired (-want +got):\n%s", diff)
	}
	if ms[3].MLXCache != 0 || ms[2].MLXCache != 30*stages.MB {
		t.Errorf("cache at steps 3,4 = %d, %d; want 30MB then 0", ms[2].MLXCache, ms[3].MLXCache)
	}
	if ms[3].Notes["cache_freed"] != float64(40*stages.MB) {
		t.Errorf("step 4 notes = %v, want cache_freed 40MB", ms[3].Notes)
	}
}

// Metrics lines carry loss, tokens, lr and memory figures; the run directory holds the
// resolved recipe with its hash and the log.
func TestEngineRunDirectoryContents(t *testing.T) {
	mem := &fakeMemory{active: 123, peak: 456, arrays: 7}
	saved := 0
	res, err := Run(context.Background(), plan(t, engineRecipe), quietOptions(t, mem, fakeTraining{saved: &saved}.env()))
	if err != nil {
		t.Fatal(err)
	}
	ms := readMetrics(t, res.RunDir)
	m := ms[1]
	if m.Step != 2 || m.Loss != 5 || m.Tokens != 100 || m.LR != 1e-4 || m.MLXActive != 123 || m.MLXPeak != 123 || m.MLXPeakRun != 456 || m.MLXArrays != 7 || m.Limit != 1_000_000_000 {
		t.Errorf("metrics line 2 = %+v", m)
	}
	for _, f := range []string{"recipe.yaml", "recipe.sha256", "run.log", "result.json", "adapters.safetensors"} {
		if _, err := os.Stat(filepath.Join(res.RunDir, f)); err != nil {
			t.Errorf("run directory lacks %s", f)
		}
	}
	sum, _ := os.ReadFile(filepath.Join(res.RunDir, "recipe.sha256"))
	if len(strings.Fields(string(sum))[0]) != 64 {
		t.Errorf("recipe.sha256 = %q", sum)
	}
}

// A result.json that cannot be written fails the run (exit 1, an error naming it) instead
// of leaving a run that looks done without a record; the log says so too.
func TestEngineResultWriteFailureSurfaces(t *testing.T) {
	opts := quietOptions(t, &fakeMemory{}, fakeTraining{}.env())
	opts.RunDir = filepath.Join(opts.RunsDir, "r")
	os.MkdirAll(filepath.Join(opts.RunDir, "result.json", "in-the-way"), 0o755)
	res, err := Run(context.Background(), plan(t, engineRecipe), opts)
	if err == nil || !strings.Contains(err.Error(), "result.json") || res.ExitCode != 1 || res.Steps != 12 {
		t.Errorf("run: %v, exit %d after %d steps; want exit 1 naming result.json after 12", err, res.ExitCode, res.Steps)
	}
	if log, _ := os.ReadFile(filepath.Join(opts.RunDir, "run.log")); !strings.Contains(string(log), "write result.json") {
		t.Errorf("run.log does not say result.json was not written:\n%s", log)
	}
}

// Two runs of the same recipe, even in the same second, leave two run directories.
func TestEngineTwoRunsTwoDirectories(t *testing.T) {
	mem := &fakeMemory{}
	saved := 0
	opts := quietOptions(t, mem, fakeTraining{saved: &saved}.env())
	fixed := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	opts.Now = func() time.Time { return fixed }
	var dirs []string
	for range 2 {
		res, err := Run(context.Background(), plan(t, engineRecipe), opts)
		if err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, filepath.Base(res.RunDir))
	}
	want := []string{"engine-test-20260102T030405Z", "engine-test-20260102T030405Z-2"}
	if diff := cmp.Diff(want, dirs); diff != "" {
		t.Errorf("run directories (-want +got):\n%s", diff)
	}
	entries, _ := os.ReadDir(opts.RunsDir)
	if len(entries) != 2 {
		t.Errorf("runs dir holds %d entries, want 2", len(entries))
	}
}

// Ctrl-C stops at the next step boundary, runs teardown (saving adapters) and exits 130.
func TestEngineInterruptStopsAtStepBoundary(t *testing.T) {
	mem := &fakeMemory{}
	saved := 0
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	onStep := func(step int64) {
		if step == 4 {
			cancel() // as if Ctrl-C arrived during step 4
		}
	}
	res, err := Run(ctx, plan(t, engineRecipe), quietOptions(t, mem, fakeTraining{onStep: onStep, saved: &saved}.env()))
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 130 || res.Steps != 4 || saved != 1 {
		t.Errorf("exit %d after %d steps, saved %d times; want 130 after 4, saved once", res.ExitCode, res.Steps, saved)
	}
	if ms := readMetrics(t, res.RunDir); len(ms) != 4 || !slices.Contains(ms[3].Fired, "eval") {
		t.Errorf("metrics: %d lines, want 4 with step 4 complete", len(ms))
	}
}

// A guard whose figure crosses limit × (1 + buffer) saves and stops with exit code 3 and a
// message naming the figure, the threshold and the step.
func TestEngineGuardCheckpointAndStop(t *testing.T) {
	src := engineRecipe + "  - {id: guard, kind: guard, with: {watch: [mlx.active], buffer: 0.2}}\n"
	mem := &fakeMemory{}
	saved := 0
	onStep := func(step int64) { mem.active = step * 200 * stages.MB } // 1.2 GB at step 6
	res, err := Run(context.Background(), plan(t, src), quietOptions(t, mem, fakeTraining{onStep: onStep, saved: &saved}.env()))
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != stage.ExitCheckpointStop || res.Steps != 7 || saved != 1 {
		t.Errorf("exit %d after %d steps, saved %d; want 3 after 7 (1.4GB > 1.2GB), saved once", res.ExitCode, res.Steps, saved)
	}
	want := "memory guard: mlx.active 1.4GB crossed 1.2GB at step 7"
	if res.Reason != want {
		t.Errorf("reason %q, want %q", res.Reason, want)
	}
}

// A guard whose action is abort stops without teardown.
func TestEngineGuardAbortSkipsTeardown(t *testing.T) {
	src := engineRecipe + "  - {id: guard, kind: guard, with: {watch: [rss], buffer: 0, action: abort}}\n"
	mem := &fakeMemory{}
	saved := 0
	step := int64(0)
	opts := quietOptions(t, mem, fakeTraining{saved: &saved, onStep: func(s int64) { step = s }}.env())
	opts.RSS = func() (int64, bool) { return step * 300 * stages.MB, true }
	res, err := Run(context.Background(), plan(t, src), opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != stage.ExitAbort || res.Steps != 4 || saved != 0 {
		t.Errorf("exit %d after %d steps, saved %d; want 4 after 4, never saved", res.ExitCode, res.Steps, saved)
	}
}

// growth is the median of recent per-step changes of active memory: a steady leak is seen, a
// one-off spike is not.
func TestEngineGrowthTrigger(t *testing.T) {
	src := strings.Replace(engineRecipe, `when: "step % 3 == 0"`, `when: "growth > 5*MB"`, 1)
	mem := &fakeMemory{}
	saved := 0
	onStep := func(step int64) {
		mem.active += 1 * stages.MB
		if step == 3 {
			mem.active += 500 * stages.MB // one-off spike
		}
		if step >= 8 {
			mem.active += 20 * stages.MB // a leak
		}
	}
	res, err := Run(context.Background(), plan(t, src), quietOptions(t, mem, fakeTraining{onStep: onStep, saved: &saved}.env()))
	if err != nil {
		t.Fatal(err)
	}
	// Step s sees the change made by step s-1; the median over a window of 9 turns to the
	// leak once most of the window leaks (step 12: four 1 MB, four 21 MB and the spike).
	ms := readMetrics(t, res.RunDir)
	if diff := cmp.Diff([]int64{12}, firedOn(ms, "every3")); diff != "" {
		t.Errorf("growth trigger fired (-want +got):\n%s", diff)
	}
	if ms[3].Growth != float64(stages.MB) || ms[11].Growth != float64(21*stages.MB) {
		t.Errorf("growth at steps 4 and 12 = %v, %v; want 1MB (spike ignored) and 21MB", ms[3].Growth, ms[11].Growth)
	}
}

// A kind the environment cannot build fails at run time, before a run directory is made.
func TestEngineKindNotInEnvironment(t *testing.T) {
	src := strings.Replace(engineRecipe, "stages:\n", "stages:\n  - {id: load, kind: load-4bit}\n", 1)
	p := plan(t, src)
	mem := &fakeMemory{}
	saved := 0
	opts := quietOptions(t, mem, fakeTraining{saved: &saved}.env())
	_, err := Run(context.Background(), p, opts)
	if err == nil || !strings.Contains(err.Error(), `stage "load": stage kind "load-4bit" cannot run in this build (the fake backend does not implement it)`) {
		t.Fatalf("err = %v", err)
	}
	if entries, _ := os.ReadDir(opts.RunsDir); len(entries) != 0 {
		t.Errorf("a run directory was made")
	}
}

// A failing stage ends the run with exit 1, and teardown still saves.
func TestEngineStageErrorRunsTeardown(t *testing.T) {
	mem := &fakeMemory{}
	saved := 0
	env := fakeTraining{saved: &saved, evalErr: io.ErrUnexpectedEOF}.env()
	res, err := Run(context.Background(), plan(t, engineRecipe), quietOptions(t, mem, env))
	if err == nil || res.ExitCode != 1 || res.Steps != 4 || saved != 1 {
		t.Errorf("err %v exit %d steps %d saved %d; want an error, exit 1 after 4 steps, saved once", err, res.ExitCode, res.Steps, saved)
	}
}

// mlx.peak is the peak within the step (reset as each step begins); mlx.peak_run the run's.
func TestPeakPerStepAndRun(t *testing.T) {
	mem := &fakeMemory{active: 100}
	spikes := map[int64]int64{2: 900, 3: 300, 5: 500}
	src := strings.Replace(engineRecipe, `when: "step % 3 == 0"`, `when: "mlx.peak > 400 && mlx.peak_run >= 900"`, 1)
	opts := quietOptions(t, mem, fakeTraining{onStep: func(s int64) { mem.peak = max(mem.peak, spikes[s]) }}.env())
	res, err := Run(context.Background(), plan(t, src), opts)
	if err != nil {
		t.Fatal(err)
	}
	ms := readMetrics(t, res.RunDir)
	var peaks, runs []int64
	for _, m := range ms[:6] {
		peaks, runs = append(peaks, m.MLXPeak), append(runs, m.MLXPeakRun)
	}
	if diff := cmp.Diff([]int64{100, 900, 300, 100, 500, 100}, peaks); diff != "" {
		t.Errorf("per-step peaks (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int64{100, 900, 900, 900, 900, 900}, runs); diff != "" {
		t.Errorf("run peaks (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int64{2, 5}, firedOn(ms, "every3")); diff != "" {
		t.Errorf("a trigger on the step's peak fired (-want +got):\n%s", diff)
	}
}

// limitedMemory records the limits the engine hands MLX.
type limitedMemory struct {
	fakeMemory
	limits []int64
}

func (m *limitedMemory) SetLimits(memory, cache, wired int64) { m.limits = append(m.limits, memory) }

// MLX's limit is the plan's decision (memplan decides it below the recipe's by the step's
// largest allocation), and stays there whatever the steps' peaks.
func TestMLXLimitIsTheDecisions(t *testing.T) {
	const limit = 1_000_000_000 // 1GB
	for _, want := range []int64{limit, limit - 200<<20, limit * 3 / 4} {
		mem := &limitedMemory{fakeMemory: fakeMemory{active: 100 << 20}}
		opts := quietOptions(t, &mem.fakeMemory, fakeTraining{onStep: func(s int64) { mem.peak = limit + 1 }}.env())
		opts.Memory = mem
		p := plan(t, engineRecipe)
		if p.Decision.MLXLimit != limit {
			t.Fatalf("without the model MLX's limit is %d, want the recipe's %d", p.Decision.MLXLimit, limit)
		}
		p.Decision.MLXLimit = want
		if _, err := Run(context.Background(), p, opts); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]int64{want}, mem.limits); diff != "" {
			t.Errorf("MLX limits (-want +got):\n%s", diff)
		}
	}
}

// logRecords reads run.log's JSON lines.
func logRecords(t *testing.T, dir string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "run.log"))
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(string(data)), "\n") {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("run.log line %q: %v", line, err)
		}
		out = append(out, r)
	}
	return out
}

// A step whose MLX peak passes memory.limit is reported, never silent: its metrics line notes
// by how much, the log warns naming the step, the peak and the limit, and result.json counts
// such steps and keeps the one furthest over. A peak at the limit exactly is not over it, and
// a run without a limit reports nothing.
func TestStepOverTheLimitIsReported(t *testing.T) {
	peaks := map[int64]int64{3: 1 * stages.GB, 5: 1250 * stages.MB, 9: 1100 * stages.MB}
	run := func(p *recipe.Plan) string {
		mem := &fakeMemory{active: 100 * stages.MB}
		opts := quietOptions(t, mem, fakeTraining{onStep: func(s int64) { mem.peak = max(mem.peak, peaks[s]) }}.env())
		res, err := Run(context.Background(), p, opts)
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("run: %v (exit %d)", err, res.ExitCode)
		}
		return res.RunDir
	}

	dir := run(plan(t, engineRecipe))
	over := map[int64]any{}
	for _, m := range readMetrics(t, dir) {
		if v, ok := m.Notes["over_limit"]; ok {
			over[m.Step] = v
		}
	}
	if diff := cmp.Diff(map[int64]any{5: float64(250 * stages.MB), 9: float64(100 * stages.MB)}, over); diff != "" {
		t.Errorf("over_limit notes by step (-want +got):\n%s", diff)
	}
	var warned []string
	for _, r := range logRecords(t, dir) {
		if r["level"] == "WARN" && r["msg"] == "step's MLX peak passed the memory limit" {
			warned = append(warned, fmt.Sprintf("step %v: %v over %v by %v", r["step"], r["mlx_peak"], r["limit"], r["over"]))
		}
	}
	want := []string{"step 5: 1.25GB over 1GB by 250MB", "step 9: 1.1GB over 1GB by 100MB"}
	if diff := cmp.Diff(want, warned); diff != "" {
		t.Errorf("warnings in run.log (-want +got):\n%s", diff)
	}
	res, err := rundir.ReadResult(dir, 0)
	if err != nil || res == nil {
		t.Fatalf("result.json: %v", err)
	}
	worst := rundir.OverLimitStep{Step: 5, MLXPeak: 1250 * stages.MB, Limit: 1 * stages.GB}
	if res.OverLimit != 2 || res.Worst == nil || *res.Worst != worst {
		t.Errorf("result.json counts %d steps over the limit, worst %+v; want 2, worst %+v", res.OverLimit, res.Worst, worst)
	}

	p := plan(t, engineRecipe)
	p.Limit = 0 // as a plan without a limit has it
	dir = run(p)
	for _, m := range readMetrics(t, dir) {
		if _, ok := m.Notes["over_limit"]; ok || m.Limit != 0 {
			t.Errorf("without a limit, step %d: limit %d, notes %v", m.Step, m.Limit, m.Notes)
		}
	}
	if res, _ := rundir.ReadResult(dir, 0); res == nil || res.OverLimit != 0 || res.Worst != nil {
		t.Errorf("without a limit, result.json %+v", res)
	}
}
