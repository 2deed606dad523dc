package mlxbackend

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/yai-dev/yai/internal/model"
	"github.com/yai-dev/yai/internal/rundir"
	"github.com/yai-dev/yai/mlx"
	"github.com/yai-dev/yai/recipe"
	"github.com/yai-dev/yai/runtime"
	"github.com/yai-dev/yai/stages"
)

var tiny struct {
	once sync.Once
	dir  string
	err  error
}

// tinyModel is the quickstart's tiny 4-bit model, generated once per test binary.
func tinyModel(t testing.TB) string {
	t.Helper()
	tiny.once.Do(func() {
		tiny.dir, tiny.err = os.MkdirTemp("", "yai-tiny-")
		if tiny.err == nil {
			tiny.err = model.WriteTiny(tiny.dir, model.TinyPresets["tiny"])
		}
	})
	if tiny.err != nil {
		t.Fatal(tiny.err)
	}
	return tiny.dir
}

// onGPU: MLX computes on a GPU here.
func onGPU() bool { return mlx.DefaultDevice().Type == mlx.GPU }

func TestMain(m *testing.M) {
	code := m.Run()
	if tiny.dir != "" {
		os.RemoveAll(tiny.dir)
	}
	os.Exit(code)
}

// repoPath is a path inside the repository, from this package's directory.
func repoPath(parts ...string) string {
	abs, _ := filepath.Abs(filepath.Join(append([]string{"..", ".."}, parts...)...))
	return abs
}

// quickstartData is the shipped quickstart dataset.
func quickstartData() string { return repoPath("recipes", "data", "quickstart") }

// runResult is what a test run left behind.
type runResult struct {
	runtime.Result
	metrics []rundir.Metrics
}

// runRecipe validates src (written as recipe.yaml in a temp dir) and runs it over MLX,
// returning the result and the parsed metrics.jsonl.
func runRecipe(t testing.TB, runsDir, src string, sets ...string) runResult {
	t.Helper()
	return runRecipeStrict(t, runsDir, src, false, sets...)
}

// runRecipeStrict is runRecipe, as `yai run --strict` when strict.
func runRecipeStrict(t testing.TB, runsDir, src string, strict bool, sets ...string) runResult {
	t.Helper()
	return runRecipeIn(t, Environment(), runsDir, src, strict, sets...)
}

// runRecipeIn is runRecipeStrict in the environment env.
func runRecipeIn(t testing.TB, env *stages.Environment, runsDir, src string, strict bool, sets ...string) runResult {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "recipe.yaml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	plan, diags := recipe.Validate(path, sets, recipe.ValidateOptions{Env: env, Strict: strict})
	if plan == nil {
		t.Fatalf("recipe invalid:\n%s", diags.Format())
	}
	defer keepLimits()()
	res, err := runtime.Run(context.Background(), plan, runtime.RunOptions{
		RunsDir: runsDir, Memory: MLXMemory{}, Env: env,
		Console: runtime.NewConsole(io.Discard, false),
	})
	if err != nil && res.ExitCode == 0 {
		t.Fatalf("run: %v", err)
	}
	out := runResult{Result: res}
	if res.RunDir != "" {
		out.metrics = readMetrics(t, filepath.Join(res.RunDir, "metrics.jsonl"))
	}
	return out
}

// keepLimits records MLX's memory, cache and wired limits and returns what restores them. A
// run hands its recipe's limits to MLX and the adapt stage may bound the cache; none of that
// may outlive the run in this test binary, where a later test measures MLX's peaks (on the
// CPU backend a low memory limit makes evaluation wait, which lowers them).
func keepLimits() (restore func()) {
	memory := mlx.MemoryLimit()
	cache := mlx.SetCacheLimit(0)
	mlx.SetCacheLimit(cache)
	wired := mlx.SetWiredLimit(0)
	mlx.SetWiredLimit(wired)
	return func() {
		mlx.SetMemoryLimit(memory)
		mlx.SetCacheLimit(cache)
		mlx.SetWiredLimit(wired)
	}
}

func readMetrics(t testing.TB, path string) []rundir.Metrics {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []rundir.Metrics
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m rundir.Metrics
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, m)
	}
	return out
}

func fired(m rundir.Metrics, id string) bool {
	for _, f := range m.Fired {
		if f == id {
			return true
		}
	}
	return false
}
