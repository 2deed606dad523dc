package recipe

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/yai-dev/yai/stages"
)

var update = flag.Bool("update", false, "rewrite golden files")

// base is a valid recipe; cases edit it with strings.Replace so line numbers stay obvious.
const base = `version: 1
name: demo
model: ./model
steps: 10
memory:
  limit: 7GB
stages:
  - id: load
    kind: load-4bit
  - id: lora
    kind: attach-lora
    after: [load]
    with:
      rank: 16
  - id: train
    kind: step
  - id: clear
    kind: clear-cache
    when: step % 3 == 0
`

// diagStrings renders diagnostics as "line:col: severity: summary" (file name dropped).
func diagStrings(ds Diagnostics) []string {
	out := []string{}
	for _, d := range ds {
		out = append(out, strings.TrimPrefix(d.String(), "r.yaml:"))
	}
	return out
}

func TestLintBaseIsValid(t *testing.T) {
	r, ds := Load("r.yaml", []byte(base), nil)
	if r == nil || len(ds) != 0 {
		t.Fatalf("base recipe: %v", diagStrings(ds))
	}
	if got := r.Stage("lora").Config; got == nil {
		t.Fatal("lora settings not decoded")
	}
}

func TestLintDiagnostics(t *testing.T) {
	edit := func(pairs ...string) string {
		s := base
		for i := 0; i+1 < len(pairs); i += 2 {
			if !strings.Contains(s, pairs[i]) {
				panic("test edit not found: " + pairs[i])
			}
			s = strings.Replace(s, pairs[i], pairs[i+1], 1)
		}
		return s
	}
	cases := []struct {
		name      string
		src       string
		overrides []string
		want      []string
	}{
		{"missing version", edit("version: 1\n", ""), nil,
			[]string{`1:1: error: missing version: start the recipe with "version: 1"`}},
		{"empty version", edit("version: 1", "version:"), nil,
			[]string{`1:1: error: missing version: start the recipe with "version: 1"`}},
		{"unsupported version", edit("version: 1", "version: 2"), nil,
			[]string{`1:10: error: unsupported recipe version 2 (this yai reads version 1)`}},
		{"version as text", edit("version: 1", "version: one"), nil,
			[]string{`1:10: error: unsupported recipe version "one" (this yai reads version 1)`}},
		{"unknown top-level key", edit("steps: 10", "stpes: 10"), nil,
			[]string{`4:1: error: unknown key "stpes" (did you mean "steps"?)`}},
		{"unknown nested key", edit("  limit: 7GB", "  limit: 7GB\n  cache_limt: 1GB"), nil,
			[]string{`7:3: error: unknown key "cache_limt" (did you mean "cache_limit"?)`}},
		{"unknown settings key", edit("rank: 16", "rnak: 16"), nil,
			[]string{`14:7: error: unknown key "rnak" (did you mean "rank"?)`}},
		{"unknown stage key", edit("    kind: step", "    kind: step\n    evry: 2"), nil,
			[]string{`17:5: error: unknown key "evry" (did you mean "every"?)`}},
		{"unknown key without suggestion", edit("rank: 16", "zzzzzz: 1"), nil,
			[]string{`14:7: error: unknown key "zzzzzz"`}},
		{"wrong type integer", edit("rank: 16", "rank: sixteen"), nil,
			[]string{`14:13: error: rank: expected an integer, got "sixteen"`}},
		{"wrong type float for integer", edit("rank: 16", "rank: 2.5"), nil,
			[]string{`14:13: error: rank: expected an integer, got 2.5`}},
		{"wrong type list", edit("after: [load]", "after: load"), nil,
			[]string{`12:12: error: after: expected a list, got "load"`}},
		{"wrong type mapping", edit("memory:\n  limit: 7GB", "memory: 7GB"), nil,
			[]string{`5:9: error: expected a mapping, got "7GB"`}},
		{"wrong type string", edit("name: demo", "name: [a, b]"), nil,
			[]string{`2:7: error: name: expected a string, got a list`}},
		{"below minimum", edit("rank: 16", "rank: 0"), nil,
			[]string{`14:13: error: rank: 0 is below the minimum 1`}},
		{"above maximum", edit("rank: 16", "rank: 600"), nil,
			[]string{`14:13: error: rank: 600 is above the maximum 512`}},
		{"enum value", edit("    kind: step", "    kind: step\n    with: {optimizer: adamx}"), nil,
			[]string{`17:23: error: optimizer: "adamx" is not one of adamw, adam, sgd (did you mean "adamw"?)`}},
		{"missing required key", edit("  - id: train\n    kind: step", "  - id: train"), nil,
			[]string{`7:1: warning: no step stage: the run will not train`, `15:5: error: missing required key "kind"`}},
		{"missing required top-level", edit("model: ./model\n", ""), nil,
			[]string{`1:1: error: missing required key "model"`}},
		{"bad unit", edit("limit: 7GB", "limit: 7GX"), nil,
			[]string{`6:10: error: limit: bad size "7GX": unknown unit "GX" (use B, KB, MB, GB, KiB, MiB, GiB)`}},
		{"size without number", edit("limit: 7GB", "limit: GB"), nil,
			[]string{`6:10: error: limit: bad size "GB": expected a number followed by a unit (B, KB, MB, GB, KiB, MiB, GiB)`}},
		{"decimal size is fine", edit("limit: 7GB", "limit: 7.5GB"), nil, []string{}},
		{"unknown stage kind", edit("kind: clear-cache", "kind: clear-cahce"), nil,
			[]string{`18:11: error: unknown stage kind "clear-cahce" (did you mean "clear-cache"?)`}},
		{"duplicate id", edit("  - id: clear", "  - id: train"), nil,
			[]string{`17:9: error: duplicate stage id "train" (first used at line 15)`}},
		{"dangling dependency", edit("after: [load]", "after: [laod]"), nil,
			[]string{`12:13: error: stage "lora" runs after unknown stage "laod" (did you mean "load"?)`}},
		{"self dependency", edit("after: [load]", "after: [lora]"), nil,
			[]string{`12:13: error: stage "lora" cannot run after itself`}},
		{"cycle", edit("    kind: load-4bit", "    kind: load-4bit\n    after: [lora]"), nil,
			[]string{`10:12: error: dependency cycle: load -> lora -> load`}},
		{"event not allowed", edit("    kind: load-4bit", "    kind: load-4bit\n    on: after-step"), nil,
			[]string{`10:9: error: stage kind "load-4bit" cannot listen to "after-step" (allowed: setup)`}},
		{"unknown event", edit("    kind: step", "    kind: step\n    on: aftr-step"), nil,
			[]string{`17:9: error: on: "aftr-step" is not one of setup, before-step, step, after-step, on-eval, teardown (did you mean "after-step"?)`}},
		{"every on a one-off event", edit("    kind: load-4bit", "    kind: load-4bit\n    every: 2"), nil,
			[]string{`10:12: error: every: only per-step events can repeat; "setup" fires once`}},
		{"two step stages", edit("  - id: clear\n    kind: clear-cache", "  - id: train2\n    kind: step"), nil,
			[]string{`18:11: error: a recipe may have only one "step" stage`}},
		{"trigger unknown name", edit("step % 3 == 0", "stpe % 3 == 0"), nil,
			[]string{`19:11: error: trigger: unknown name "stpe" (did you mean "step"?)`}},
		{"trigger unknown mlx field", edit("step % 3 == 0", "mlx.cahce > 1*GB"), nil,
			[]string{`19:11: error: trigger: unknown name "mlx.cahce" (did you mean "mlx.cache"?)`}},
		{"trigger syntax error", edit("step % 3 == 0", "step % 3 =="), nil,
			[]string{`19:21: error: trigger: syntax: unexpected token EOF`}},
		{"trigger syntax error quoted", edit("step % 3 == 0", `"loss > ) 1"`), nil,
			[]string{`19:19: error: trigger: syntax: unexpected token Bracket(")")`}},
		{"trigger not boolean", edit("step % 3 == 0", "step * 3"), nil,
			[]string{`19:11: error: trigger must be true or false, but "step * 3" is an integer`}},
		{"trigger float not boolean", edit("step % 3 == 0", "loss + 1.5"), nil,
			[]string{`19:11: error: trigger must be true or false, but "loss + 1.5" is a number`}},
		{"guard reload without reload stage", edit("    kind: step", "    kind: step\n  - id: g\n    kind: guard\n    with: {action: reload}"), nil,
			[]string{`19:20: error: action: reload needs a reload-selective stage, and the recipe has none`}},
		{"save path climbs out of the run directory", edit("    kind: step", "    kind: step\n  - id: s\n    kind: save-adapter\n    with: {path: ../elsewhere}"), nil,
			[]string{`19:18: error: path: "../elsewhere" climbs out of the run directory: outputs are written inside it`}},
		{"save path absolute", edit("    kind: step", "    kind: step\n  - id: s\n    kind: save-adapter\n    with: {path: /tmp/a}"), nil,
			[]string{`19:18: error: path: "/tmp/a" is absolute: outputs are written inside the run directory, give a relative path`}},
		{"save path escape by override", base + "  - id: s\n    kind: save-adapter\n", []string{"stages.s.with.path=a/../../b"},
			[]string{`--set stages.s.with.path=a/../../b: error: path: "a/../../b" climbs out of the run directory: outputs are written inside it`}},
		{"no step stage warns", edit("  - id: train\n    kind: step\n", ""), nil,
			[]string{`7:1: warning: no step stage: the run will not train`}},
		{"alias rejected", edit("name: demo", "name: &n demo\ndescription: *n"), nil,
			[]string{`3:14: error: description: YAML aliases are not supported in recipes; repeat the value`}},
		{"yaml syntax", edit("    when: step % 3 == 0", "    when: step % (limit < 10*GB ? 5 : 10) == 0"), nil,
			[]string{`19:37: error: YAML syntax: mapping values are not allowed in this context`}},
		{"not a mapping", "- a\n- b\n", nil,
			[]string{`1:1: error: a recipe is a mapping of keys (version, name, model, …), got a list`}},
		{"empty file", "", nil,
			[]string{`1:1: error: empty recipe: start it with "version: 1"`}},

		// Overrides are checked exactly like file content and name the override.
		{"override ok", base, []string{"memory.limit=6GB", "stages.lora.with.rank=8", "stages.train.with.lr=2e-4"}, []string{}},
		{"override bad unit", base, []string{"memory.limit=6GX"},
			[]string{`--set memory.limit=6GX: error: limit: bad size "6GX": unknown unit "GX" (use B, KB, MB, GB, KiB, MiB, GiB)`}},
		{"override unknown key", base, []string{"memroy.limit=6GB"},
			[]string{`--set memroy.limit=6GB: error: unknown key "memroy" (did you mean "memory"?)`}},
		{"override unknown stage", base, []string{"stages.trian.with.lr=1e-4"},
			[]string{`--set stages.trian.with.lr=1e-4: error: stages has no stage with id "trian" (did you mean "train"?)`}},
		{"override unknown setting", base, []string{"stages.train.with.lrr=1e-4"},
			[]string{`--set stages.train.with.lrr=1e-4: error: unknown key "lrr" (did you mean "lr"?)`}},
		{"override without value", base, []string{"memory.limit"},
			[]string{`--set memory.limit: error: expected path=value, e.g. memory.limit=6GB`}},
		{"override through a scalar", base, []string{"name.x=1"},
			[]string{`--set name.x=1: error: cannot set "name.x": name is "demo", not a mapping`}},
		{"override out of range", base, []string{"stages.lora.with.rank=0"},
			[]string{`--set stages.lora.with.rank=0: error: rank: 0 is below the minimum 1`}},
		{"override trigger", base, []string{"stages.clear.when=mlx.activ > 1"},
			[]string{`--set stages.clear.when=mlx.activ > 1: error: trigger: unknown name "mlx.activ" (did you mean "mlx.active"?)`}},
		{"override version", base, []string{"version=3"},
			[]string{`--set version=3: error: unsupported recipe version 3 (this yai reads version 1)`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, ds := Load("r.yaml", []byte(c.src), c.overrides)
			if diff := cmp.Diff(c.want, diagStrings(ds)); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
		})
	}
}

// Several problems in one file are all reported, in file order, in one pass.
func TestLintReportsEverythingAtOnce(t *testing.T) {
	src := strings.NewReplacer(
		"limit: 7GB", "limit: 7GX",
		"rank: 16", "rank: 0",
		"kind: clear-cache", "kind: clear-cahce",
		"after: [load]", "after: [nope]",
	).Replace(base) + "  - id: log\n    kind: log\n    when: mlx.peek > 1\n"
	_, ds := Load("r.yaml", []byte(src), []string{"stages.train.with.lr=-1"})
	want := []string{
		`--set stages.train.with.lr=-1: error: lr: -1 is below the minimum 0`,
		`6:10: error: limit: bad size "7GX": unknown unit "GX" (use B, KB, MB, GB, KiB, MiB, GiB)`,
		`12:13: error: stage "lora" runs after unknown stage "nope"`,
		`14:13: error: rank: 0 is below the minimum 1`,
		`18:11: error: unknown stage kind "clear-cahce" (did you mean "clear-cache"?)`,
		`22:11: error: trigger: unknown name "mlx.peek" (did you mean "mlx.peak"?)`,
	}
	if diff := cmp.Diff(want, diagStrings(ds)); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s", diff)
	}
}

// The resolved recipe carries the overrides, so a run directory records what really ran.
func TestOverridesAppearInResolvedRecipe(t *testing.T) {
	r, ds := Load("r.yaml", []byte(base), []string{"memory.limit=6GB", "stages.train.with.lr=2e-4"})
	if ds.HasErrors() {
		t.Fatal(ds)
	}
	out, err := r.ResolvedYAML()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"limit: 6GB", "lr: 2e-4"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("resolved recipe lacks %q:\n%s", want, out)
		}
	}
	if r.Memory.Limit.Bytes != 6_000_000_000 {
		t.Errorf("limit = %d", r.Memory.Limit.Bytes)
	}
}

// golden compares got with testdata/golden/name, rewriting it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./recipe -update)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs (-want +got); rerun with -update if intended:\n%s", name, diff)
	}
}

func TestGoldenBrokenRecipe(t *testing.T) {
	_, ds := LoadFile("testdata/broken.yaml", []string{"memory.limit=six"})
	golden(t, "broken.txt", ds.Format())
	golden(t, "broken.json", string(ds.JSON())+"\n")
}

func TestGoldenPlan(t *testing.T) {
	p, ds := Validate("../recipes/llama-3.1-8b-7gb.yaml", nil, ValidateOptions{SkipModel: true})
	if p == nil {
		t.Fatal(ds)
	}
	golden(t, "llama-3.1-8b-7gb.plan.txt", p.Describe())
}

// A stage whose kind the program's environment cannot build fails validation at its kind line,
// so a recipe that validates never stops at run time for want of a backend.
func TestValidateKindsThisBuildCannotRun(t *testing.T) {
	env := stages.NewEnvironment() // no training backend
	_, ds := ValidateSource("r.yaml", []byte(base), nil, ValidateOptions{SkipModel: true, Env: env})
	want := []string{
		`9:11: error: stage kind "load-4bit" cannot run in this build (it has no training backend)`,
		`11:11: error: stage kind "attach-lora" cannot run in this build (it has no training backend)`,
		`16:11: error: stage kind "step" cannot run in this build (it has no training backend)`,
	}
	if diff := cmp.Diff(want, diagStrings(ds)); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s", diff)
	}
	if p, ds := ValidateSource("r.yaml", []byte(base), nil, ValidateOptions{SkipModel: true}); p == nil {
		t.Errorf("without an environment the recipe should validate:\n%s", ds.Format())
	}
}

// A trigger or a guard that reads a figure this platform cannot give is a validation error at
// the place that reads it, never a figure that silently reads zero.
func TestUnmeasuredFiguresAreErrors(t *testing.T) {
	env := stages.NewEnvironment()
	env.SetUnmeasured("rss", "no process memory figure on this platform")
	src := base + `  - id: g
    kind: guard
    with: {watch: [mlx.active, rss]}
  - id: c
    kind: clear-cache
    when: rss > 1*GB || mlx.peak_run > 2*GB
`
	_, ds := ValidateSource("r.yaml", []byte(src), nil, ValidateOptions{SkipModel: true, Env: env})
	var got []string
	for _, d := range diagStrings(ds) {
		if !strings.Contains(d, "cannot run in this build") {
			got = append(got, d)
		}
	}
	want := []string{
		`22:32: error: watch: rss cannot be measured here: no process memory figure on this platform`,
		`25:11: error: trigger reads rss, which cannot be measured here: no process memory figure on this platform`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s", diff)
	}
}
