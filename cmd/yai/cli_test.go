package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/yai-dev/yai/internal/model"
)

var built struct {
	once      sync.Once
	bin, root string
	err       error
}

// yai builds the command once per test binary, with a tiny model beside it.
func yai(t *testing.T) (bin, model string) {
	t.Helper()
	built.once.Do(func() {
		if built.root, built.err = os.MkdirTemp("", "yai-cli-"); built.err != nil {
			return
		}
		built.bin = filepath.Join(built.root, "yai")
		out, err := exec.Command("go", "build", "-o", built.bin, ".").CombinedOutput()
		if err != nil {
			built.err = errors.New(string(out))
			return
		}
		built.err = writeTinyModel(filepath.Join(built.root, "model"))
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.bin, filepath.Join(built.root, "model")
}

func writeTinyModel(dir string) error { return model.WriteTiny(dir, model.TinyPresets["tiny"]) }

func TestMain(m *testing.M) {
	cache, err := os.MkdirTemp("", "yai-cli-cache-")
	if err != nil {
		panic(err)
	}
	os.Setenv("YAI_CACHE_DIR", cache) // the dry run's cache, out of the user's
	code := m.Run()
	os.RemoveAll(cache)
	if built.root != "" {
		os.RemoveAll(built.root)
	}
	os.Exit(code)
}

// run runs the built yai in dir and returns stdout, stderr and the exit code.
func run(t *testing.T, dir string, args ...string) (string, string, int) {
	t.Helper()
	bin, _ := yai(t)
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

// cliRecipe trains the tiny model for a few steps on the shipped quickstart data.
func cliRecipe(t *testing.T, extra string) string {
	t.Helper()
	_, modelDir := yai(t)
	data, _ := filepath.Abs(filepath.Join("..", "..", "recipes", "data", "quickstart"))
	src := `version: 1
name: cli
model: ` + modelDir + `
data: ` + data + `
steps: 3
memory: {limit: 2GB}
stages:
  - {id: load, kind: load-4bit}
  - {id: lora, kind: attach-lora, after: [load], with: {rank: 4, layers: 1, keys: [q_proj]}}
  - {id: data, kind: data, after: [load], with: {format: text, batch_size: 2, max_seq_length: 64}}
  - {id: train, kind: step, with: {lr: 1e-3}}
  - {id: save, kind: save-adapter, on: teardown}
` + extra
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestExitCodes(t *testing.T) {
	dir := cliRecipe(t, "")
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("version: 1\nname: x\nmodel: m\nmemory: {limit: 1GB}\nstages:\n  - {id: a, kind: clear-cahce}\n"), 0o644)
	for _, c := range []struct {
		args []string
		code int
		err  string // in stderr
	}{
		{[]string{"validate", "r.yaml"}, 0, ""},
		{[]string{"validate", "bad.yaml"}, 1, `bad.yaml:6:19: error: unknown stage kind "clear-cahce" (did you mean "clear-cache"?)`},
		{[]string{"validate", "missing.yaml"}, 1, "missing.yaml"},
		{[]string{"validate"}, 2, "want exactly one recipe file"},
		{[]string{"validate", "--nope", "r.yaml"}, 2, "flag provided but not defined: -nope"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"run", "bad.yaml"}, 1, "unknown stage kind"},
		{[]string{"run", "--set", "steps=0", "r.yaml"}, 1, "steps"},
		{[]string{"stages", "guard"}, 0, ""},
		{[]string{"stages", "nope"}, 1, `unknown stage kind "nope"`},
		{[]string{"run", "r.yaml"}, 0, "run directory: "},
	} {
		_, stderr, code := run(t, dir, c.args...)
		if code != c.code || !strings.Contains(stderr, c.err) {
			t.Errorf("yai %s: exit %d, want %d; stderr lacks %q:\n%s", strings.Join(c.args, " "), code, c.code, c.err, stderr)
		}
	}
}

// A guard that trips saves and stops with exit 3, one that aborts exits 4; both leave a
// result.json that says so.
func TestRunGuardExitCodes(t *testing.T) {
	for action, want := range map[string]int{"checkpoint-and-stop": 3, "abort": 4} {
		dir := cliRecipe(t, "  - {id: guard, kind: guard, with: {watch: [mlx.active], limit: 1KB, buffer: 0, action: "+action+"}}\n")
		_, stderr, code := run(t, dir, "run", "--runs-dir", "runs", "r.yaml")
		if code != want {
			t.Fatalf("%s: exit %d, want %d:\n%s", action, code, want, stderr)
		}
		runs, _ := filepath.Glob(filepath.Join(dir, "runs", "*", "result.json"))
		if len(runs) != 1 {
			t.Fatalf("%s: %d result.json files", action, len(runs))
		}
		var res struct {
			ExitCode int    `json:"exit_code"`
			Reason   string `json:"reason"`
		}
		b, _ := os.ReadFile(runs[0])
		if err := json.Unmarshal(b, &res); err != nil || res.ExitCode != want || !strings.Contains(res.Reason, "memory guard: mlx.active") {
			t.Errorf("%s: result.json %s (%v)", action, b, err)
		}
		_, err := os.Stat(filepath.Join(filepath.Dir(runs[0]), "adapters", "adapters.safetensors"))
		if saved := err == nil; saved != (want == 3) {
			t.Errorf("%s: adapters saved %v, want %v", action, saved, want == 3)
		}
	}
}

// validate --json prints one object: valid, every diagnostic with its position, and the plan.
func TestValidateJSON(t *testing.T) {
	dir := cliRecipe(t, "")
	stdout, _, code := run(t, dir, "validate", "--json", "r.yaml")
	var ok struct {
		Valid       bool `json:"valid"`
		Diagnostics []any
		Plan        struct {
			Name   string               `json:"name"`
			Steps  int                  `json:"steps"`
			Model  struct{ Layers int } `json:"model"`
			Budget struct {
				Peak int64 `json:"estimated_peak"`
				Fits bool  `json:"fits"`
			} `json:"memory_budget"`
			Stages []struct {
				ID   string `json:"id"`
				Kind string `json:"kind"`
				On   string `json:"on"`
			} `json:"stages"`
		} `json:"plan"`
	}
	if err := json.Unmarshal([]byte(stdout), &ok); err != nil || code != 0 {
		t.Fatalf("exit %d, %v:\n%s", code, err, stdout)
	}
	if !ok.Valid || len(ok.Diagnostics) != 0 || ok.Plan.Name != "cli" || ok.Plan.Steps != 3 || ok.Plan.Model.Layers == 0 ||
		ok.Plan.Budget.Peak <= 0 || !ok.Plan.Budget.Fits || len(ok.Plan.Stages) != 5 || ok.Plan.Stages[0].ID != "load" {
		t.Errorf("plan: %+v", ok)
	}

	stdout, _, code = run(t, dir, "validate", "--json", "--set", "stages.lora.with.rank=0", "--set", "steps=x", "r.yaml")
	var bad struct {
		Valid       bool `json:"valid"`
		Diagnostics []struct {
			Severity string `json:"severity"`
			Summary  string `json:"summary"`
			Range    struct {
				Override string `json:"override"`
			} `json:"range"`
		} `json:"diagnostics"`
		Plan *struct{} `json:"plan"`
	}
	if err := json.Unmarshal([]byte(stdout), &bad); err != nil || code != 1 {
		t.Fatalf("exit %d, %v:\n%s", code, err, stdout)
	}
	if bad.Valid || bad.Plan != nil || len(bad.Diagnostics) != 2 {
		t.Fatalf("invalid recipe: %s", stdout)
	}
	var at []string
	for _, d := range bad.Diagnostics {
		if d.Severity != "error" {
			t.Errorf("diagnostic %+v: want an error", d)
		}
		at = append(at, d.Range.Override)
	}
	if strings.Join(at, " ") != "steps=x stages.lora.with.rank=0" {
		t.Errorf("diagnostics located at %q, want each at its --set", at)
	}
}

// validate exits 1 with the error on stderr when it cannot write its result to stdout: a
// dry run whose answer was lost has not passed. Stdout is a file opened read-only (every
// write fails) and, where the system has one, /dev/full (every write finds no space).
func TestValidateReportsUnwritableStdout(t *testing.T) {
	dir := cliRecipe(t, "")
	bin, _ := yai(t)
	readOnly := filepath.Join(dir, "stdout.txt")
	if err := os.WriteFile(readOnly, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	outs := []string{readOnly}
	if _, err := os.Stat("/dev/full"); err == nil {
		outs = append(outs, "/dev/full")
	}
	for _, out := range outs {
		for _, args := range [][]string{{"validate", "--json", "r.yaml"}, {"validate", "r.yaml"}} {
			flag := os.O_RDONLY
			if out == "/dev/full" {
				flag = os.O_WRONLY
			}
			stdout, err := os.OpenFile(out, flag, 0)
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, args...)
			cmd.Dir = dir
			var stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = stdout, &stderr
			err = cmd.Run()
			stdout.Close()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(stderr.String(), "yai validate: writing the") {
				t.Errorf("yai %s > %s: %v, want exit 1 and the write error on stderr:\n%s", strings.Join(args, " "), out, err, stderr.String())
			}
		}
	}
}

// Hostile and malformed inputs through the command: each gets its located first line on
// stderr and exit 1 (never a crash, never the usage code); warnings alone exit 0.
func TestValidateMalformedCLI(t *testing.T) {
	dir := cliRecipe(t, "")
	src, _ := os.ReadFile(filepath.Join(dir, "r.yaml"))
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("parens.yaml", string(src)+"  - {id: c, kind: clear-cache, when: \""+strings.Repeat("(", 1_000_000)+"true"+strings.Repeat(")", 1_000_000)+"\"}\n")
	write("two.yaml", string(src)+"---\nversion: 1\n")
	write("nul.yaml", strings.Replace(string(src), "name: cli", "name: c\x00li", 1))
	write("zero.yaml", strings.Replace(string(src), "limit: 2GB", "limit: 0", 1))
	os.MkdirAll(filepath.Join(dir, "bom"), 0o755)
	write("bom/train.jsonl", "\uFEFF{\"text\": \"a\"}\n{\"text\": \"b\"}\n")
	write("bom/valid.jsonl", "{\"text\": \"a\"}\n{\"text\": \"b\"}\n")
	bom, _ := filepath.Abs(filepath.Join(dir, "bom"))
	for _, c := range []struct {
		args  []string
		code  int
		first string // stderr's first line
	}{
		{[]string{"validate", "parens.yaml"}, 1, "parens.yaml:13:39: error: trigger: 2000004 bytes long; at most 1024"},
		{[]string{"run", "parens.yaml"}, 1, "parens.yaml:13:39: error: trigger: 2000004 bytes long; at most 1024"},
		{[]string{"validate", "two.yaml"}, 1, "two.yaml:13:1: error: a recipe file holds one YAML document; a second one starts here"},
		{[]string{"validate", "nul.yaml"}, 1, "nul.yaml:2:8: error: NUL byte: a recipe is text"},
		{[]string{"validate", "zero.yaml"}, 1, "zero.yaml:6:17: error: limit: 0 leaves the run without a budget; give a size such as 7GB, or auto"},
		{[]string{"validate", "--set", "memory.limit=", "r.yaml"}, 1, "--set memory.limit=: error: memory.limit has no value: give one after '=', or drop the --set to keep the recipe's value"},
		{[]string{"validate", "--set", "data=" + bom, "r.yaml"}, 1, bom + "/train.jsonl:1:1: error: the file starts with a UTF-8 byte order mark (BOM); save it as UTF-8 without one"},
		{[]string{"validate", "--set", "stages.data.with.max_seq_length=16", "r.yaml"}, 0, "r.yaml:4:7: warning: train.jsonl: 400 rows are longer than max_seq_length 16 and will be truncated (the first 5 are listed below)"},
	} {
		_, stderr, code := run(t, dir, c.args...)
		first, _, _ := strings.Cut(stderr, "\n")
		if code != c.code || !strings.Contains(first, c.first) {
			t.Errorf("yai %s: exit %d, want %d; first line:\n got: %s\nwant: %s", strings.Join(c.args, " ")[:min(80, len(strings.Join(c.args, " ")))], code, c.code, first[:min(300, len(first))], c.first)
		}
	}
}
