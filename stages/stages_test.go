package stages

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/yai-dev/yai/memplan"
	"github.com/yai-dev/yai/modeldir"
	"github.com/yai-dev/yai/stages/stage"
)

func TestParseBytes(t *testing.T) {
	good := map[string]Bytes{"7GB": 7 * GB, "7.5GB": 7_500_000_000, "512MiB": 512 * MiB, "1000": 1000, "1 KB": KB, "3GiB": 3 * GiB, "0B": 0}
	for in, want := range good {
		if got, err := ParseBytes(in); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"7GX", "GB", "", "7..5GB", "-1GB", "7 gb"} {
		if _, err := ParseBytes(in); err == nil {
			t.Errorf("ParseBytes(%q): no error", in)
		}
	}
	if s := Bytes(7_500_000_000).String(); s != "7.5GB" {
		t.Errorf("String = %q", s)
	}
}

// Every kind's spec is well formed: defaults parse and lie within their ranges and enums.
func TestRegistrySpecs(t *testing.T) {
	want := []string{"adapt", "attach-lora", "checkpoint", "clear-cache", "data", "eval", "guard", "load-4bit", "log", "reload-selective", "save-adapter", "step"}
	if diff := cmp.Diff(want, KindNames()); diff != "" {
		t.Fatalf("kinds (-want +got):\n%s", diff)
	}
	for _, k := range Kinds() {
		cfg := reflect.ValueOf(k.NewConfig()).Elem()
		for _, f := range k.Fields {
			if f.Doc == "" {
				t.Errorf("%s.%s has no doc", k.Name, f.Name)
			}
			v := cfg.FieldByIndex(f.Index)
			if (f.Type == Int || f.Type == Float) && f.Default != "" {
				x := v.Convert(reflect.TypeFor[float64]()).Float()
				if f.Min != nil && x < *f.Min || f.Max != nil && x > *f.Max {
					t.Errorf("%s.%s default %v outside its range", k.Name, f.Name, x)
				}
			}
			if len(f.Enum) > 0 && f.Type == String && !slices.Contains(f.Enum, v.String()) {
				t.Errorf("%s.%s default %q not in enum", k.Name, f.Name, v.String())
			}
		}
	}
	if c := (&AttachLoRAConfig{Rank: 16, Alpha: 32}); c.Scale() != 2 {
		t.Errorf("scale = %v, want 2 (the seed's alpha 32 at rank 16)", c.Scale())
	}
}

// The log stage's figure enum covers exactly the trigger names that are figures, not units.
func TestLogFiguresMatchEnv(t *testing.T) {
	k, _ := Get("log")
	f, _ := Lookup(k.Fields, "figures")
	var figures []string
	for _, n := range stage.FigureNames() {
		if !strings.HasSuffix(n, "B") {
			figures = append(figures, n)
		}
	}
	enum := slices.Clone(f.Enum)
	slices.Sort(enum)
	if diff := cmp.Diff(figures, enum); diff != "" {
		t.Errorf("log figures enum (-env +enum):\n%s", diff)
	}
	env := stage.NewFigures()
	env.MLX.Cache = 42
	if v, ok := env.Figure("mlx.cache"); !ok || v != 42 {
		t.Errorf("Figure(mlx.cache) = %v, %v", v, ok)
	}
	if _, ok := env.Figure("mlx.nope"); ok {
		t.Error("Figure(mlx.nope) found")
	}
}

func TestGuardCheck(t *testing.T) {
	env := stage.NewFigures()
	env.Limit = 7 * GB
	g := &GuardConfig{Watch: []string{"mlx.active", "rss"}, Buffer: 0.2}
	env.MLX.Active, env.RSS = 8*GB, 8*GB // 8 GB is within 7 GB + 20%
	if c, hit := g.Check(env); hit {
		t.Errorf("8GB tripped a 7GB+20%% guard: %v", c)
	}
	env.RSS = 9 * GB
	c, hit := g.Check(env)
	if !hit || c.String() != "rss 9GB crossed 8.4GB" {
		t.Errorf("got %v, %v; want rss crossing 8.4GB", c, hit)
	}
	g.Limit = 10 * GB // its own limit overrides memory.limit
	if _, hit := g.Check(env); hit {
		t.Error("guard with its own 10GB limit tripped at 9GB")
	}
}

type fakeMem struct{ cache int64 }

func (m *fakeMem) Active() int64 { return 0 }
func (m *fakeMem) Peak() int64   { return 0 }
func (m *fakeMem) Cache() int64  { return m.cache }
func (m *fakeMem) Arrays() int64 { return 0 }
func (m *fakeMem) ClearCache()   { m.cache = 0 }
func (m *fakeMem) ResetPeak()    {}

type fakeCtl struct {
	notes map[string]any
	stop  *stage.Stop
	kinds []string
}

func (c *fakeCtl) Report(stage.Report)  {}
func (c *fakeCtl) Checkpoint(int)       {}
func (c *fakeCtl) ReportEval(float64)   {}
func (c *fakeCtl) Stop(s stage.Stop)    { c.stop = &s }
func (c *fakeCtl) Note(k string, v any) { c.notes[k] = v }
func (c *fakeCtl) RunKind(_ context.Context, kind string) error {
	c.kinds = append(c.kinds, kind)
	return nil
}

func session(mem stage.Memory, env stage.Figures) (*stage.Session, *fakeCtl) {
	ctl := &fakeCtl{notes: map[string]any{}}
	return &stage.Session{ID: "x", Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Figures: env, Memory: mem, Ctl: ctl}, ctl
}

func TestClearCacheStage(t *testing.T) {
	st, err := build(ClearCache.Kind, ClearCache.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	mem := &fakeMem{cache: 5 * MB}
	s, ctl := session(mem, stage.NewFigures())
	if err := st.Run(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if mem.cache != 0 || ctl.notes["cache_freed"] != int64(5*MB) {
		t.Errorf("cache %d, notes %v", mem.cache, ctl.notes)
	}
}

func TestGuardActions(t *testing.T) {
	env := stage.NewFigures()
	env.Limit, env.MLX.Active, env.Step = GB, 2*GB, 17
	k, _ := Get("guard")
	for action, check := range map[string]func(*fakeCtl, *fakeMem) string{
		GuardCheckpointAndStop: func(c *fakeCtl, _ *fakeMem) string {
			if c.stop == nil || c.stop.Code != stage.ExitCheckpointStop || !c.stop.Checkpoint || !strings.Contains(c.stop.Reason, "mlx.active 2GB crossed 1.2GB at step 17") {
				return "no checkpoint stop naming figure, threshold and step"
			}
			return ""
		},
		GuardAbort: func(c *fakeCtl, _ *fakeMem) string {
			if c.stop == nil || c.stop.Code != stage.ExitAbort || c.stop.Checkpoint {
				return "no abort"
			}
			return ""
		},
		GuardReload: func(c *fakeCtl, _ *fakeMem) string {
			if !slices.Equal(c.kinds, []string{ReloadSelective.Name}) {
				return "reload-selective not run"
			}
			return ""
		},
		GuardClearCache: func(c *fakeCtl, m *fakeMem) string {
			if m.cache != 0 {
				return "cache not cleared"
			}
			return ""
		},
		GuardWarn: func(c *fakeCtl, m *fakeMem) string {
			if c.stop != nil || m.cache == 0 || c.notes["guard"] == nil {
				return "warn did more than warn"
			}
			return ""
		},
	} {
		cfg := k.NewConfig().(*GuardConfig)
		cfg.Watch, cfg.Action = []string{"mlx.active"}, action
		st, err := build(k, cfg)
		if err != nil {
			t.Fatal(err)
		}
		mem := &fakeMem{cache: MB}
		s, ctl := session(mem, env)
		if err := st.Run(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		if msg := check(ctl, mem); msg != "" {
			t.Errorf("%s: %s", action, msg)
		}
	}
}

// build makes a stage in an environment without a backend.
func build(k *Kind, config any) (stage.Stage, error) {
	b, err := NewEnvironment().Open(RunInfo{})
	if err != nil {
		return nil, err
	}
	return b.Build(k, config)
}

// Training kinds cannot run without a backend; a backend implements them over its own state.
func TestEnvironmentBackend(t *testing.T) {
	if _, err := build(Step.Kind, Step.NewConfig()); err == nil || err.Error() != `stage kind "step" cannot run in this build (it has no training backend)` {
		t.Errorf("err = %v", err)
	}
	type state struct {
		info   RunInfo
		closed bool
	}
	env := NewEnvironment()
	var opened *state
	SetBackend(env, "fake", func(info RunInfo) (*state, func(), error) {
		opened = &state{info: info}
		return opened, func() { opened.closed = true }, nil
	})
	var got *state
	Implement(env, Step, func(c *StepConfig, s *state) (stage.Stage, error) {
		if c.Optimizer != "adamw" {
			t.Errorf("optimizer %q, want the default adamw", c.Optimizer)
		}
		got = s
		return stage.StageFunc(func(context.Context, *stage.Session) error { return nil }), nil
	})
	if !env.Runs(Step.Kind) || env.Runs(Eval.Kind) || !env.Runs(Guard.Kind) {
		t.Errorf("Runs: step %v, eval %v, guard %v; want true, false, true", env.Runs(Step.Kind), env.Runs(Eval.Kind), env.Runs(Guard.Kind))
	}
	b, err := env.Open(RunInfo{Steps: 7})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Build(Step.Kind, Step.NewConfig()); err != nil {
		t.Fatal(err)
	}
	if got != opened || got.info.Steps != 7 {
		t.Errorf("stage built over %+v, want the opened state with 7 steps", got)
	}
	if _, err := b.Build(Eval.Kind, Eval.NewConfig()); err == nil || !strings.Contains(err.Error(), "the fake backend does not implement it") {
		t.Errorf("eval: err = %v", err)
	}
	b.Close()
	if !opened.closed {
		t.Error("Close did not free the backend state")
	}
	defer func() {
		if recover() == nil {
			t.Error("Implement over another state type did not panic")
		}
	}()
	Implement(env, Eval, func(c *EvalConfig, s *int) (stage.Stage, error) { return nil, nil })
}

func TestKindHooks(t *testing.T) {
	info := &modeldir.Info{Dir: "m", Config: &modeldir.Config{NumHiddenLayers: 2}, Tensors: map[string]modeldir.TensorInfo{
		"model.layers.1.self_attn.q_proj.weight": {}, "model.layers.1.mlp.up_proj.weight": {}, "lm_head.weight": {}}}
	lora := AttachLoRA.Defaults()
	lora.Layers, lora.Keys = 3, []string{"q_proj", "self_attn.q_projj"}
	got := AttachLoRA.CheckModel(lora, info)
	want := []Problem{
		{At: "with.layers", Summary: "layers: 3 is more than the model's 2 layers"},
		{At: "with.keys.1", Summary: `keys: "self_attn.q_projj" matches no module of block 1 (did you mean "self_attn.q_proj"?)`, Detail: "modules: mlp.up_proj, self_attn.q_proj"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("attach-lora problems (-want +got):\n%s", diff)
	}
	reload := ReloadSelective.Defaults()
	reload.Tensors = []string{"head", "lm_head", "nope"}
	if got := ReloadSelective.CheckModel(reload, info); len(got) != 1 || got[0].At != "with.tensors.2" {
		t.Errorf("reload-selective problems %+v, want one at with.tensors.2", got)
	}
	guard := Guard.Defaults()
	guard.Action = GuardReload
	if got := Guard.CheckRecipe(guard, counts{}); len(got) != 1 || got[0].At != "with.action" {
		t.Errorf("guard without reload stage: %+v", got)
	}
	if got := Guard.CheckRecipe(guard, counts{ReloadSelective.Kind: 1}); len(got) != 0 {
		t.Errorf("guard with reload stage: %+v", got)
	}
	var w memplan.Workload
	step := Step.Defaults()
	step.Optimizer, step.GradCheckpoint = "sgd", false
	Step.AddWorkload(step, &w)
	Data.AddWorkload(Data.Defaults(), &w)
	if w.Optimizer != "sgd" || w.GradCheckpoint || w.BatchSize != 1 || w.MaxSeqLength != 2048 {
		t.Errorf("workload %+v", w)
	}
}

type counts map[*Kind]int

func (c counts) Count(k *Kind) int { return c[k] }
func (c counts) World() int        { return 1 }

// OutputPath keeps a stage's outputs inside the run directory, through symbolic links too.
func TestOutputPath(t *testing.T) {
	run, outside := t.TempDir(), t.TempDir()
	os.Symlink(outside, filepath.Join(run, "link"))
	s := &stage.Session{RunDir: run}
	if p, err := s.OutputPath("adapters/final"); err != nil || p != filepath.Join(run, "adapters", "final") {
		t.Errorf("adapters/final: %q, %v", p, err)
	}
	for _, bad := range []string{"../x", "/abs", "a/../../x", "link/adapters", "link"} {
		if _, err := s.OutputPath(bad); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}
