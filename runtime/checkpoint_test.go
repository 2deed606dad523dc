package runtime

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/yai-dev/yai/internal/rundir"
	"github.com/yai-dev/yai/stages"
	"github.com/yai-dev/yai/stages/stage"
)

// lossesOf are the step losses of metrics lines.
func lossesOf(ms []rundir.Metrics) []float64 {
	var out []float64
	for _, m := range ms {
		out = append(out, float64(m.Loss))
	}
	return out
}

// A checkpoint stage writes complete checkpoints at the end of its steps and keeps the newest.
func TestCheckpointStageKeepsNewest(t *testing.T) {
	src := engineRecipe + "  - {id: ckpt, kind: checkpoint, every: 3, with: {keep: 2}}\n"
	res, err := Run(context.Background(), plan(t, src), quietOptions(t, &fakeMemory{}, fakeTraining{}.env()))
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("run: %v (exit %d)", err, res.ExitCode)
	}
	entries, _ := os.ReadDir(filepath.Join(res.RunDir, "checkpoints"))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if diff := cmp.Diff([]string{"step-00000009", "step-00000012"}, names); diff != "" {
		t.Fatalf("checkpoints (-want +got):\n%s", diff)
	}
	for _, f := range []string{"engine.json", "fake.json", "recipe.yaml", "recipe.sha256"} {
		if _, err := os.Stat(filepath.Join(res.RunDir, "checkpoints", "step-00000012", f)); err != nil {
			t.Errorf("checkpoint lacks %s", f)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(res.RunDir, "checkpoints", "step-00000009", "fake.json")); string(b) != "9" {
		t.Errorf("step-9 checkpoint holds backend state %q, want 9", b)
	}
}

// A guard that stops the run in the middle of after-step checkpoints the step with the stages
// it kept from running; the resume runs them first and then goes on, so the concatenated
// metrics equal an uninterrupted run's and the eval the stop skipped still happens.
func TestResumeAfterGuardStopRunsPendingStages(t *testing.T) {
	straight, err := Run(context.Background(), plan(t, engineRecipe), quietOptions(t, &fakeMemory{}, fakeTraining{}.env()))
	if err != nil || straight.ExitCode != 0 {
		t.Fatalf("uninterrupted run: %v", err)
	}
	want := lossesOf(readMetrics(t, straight.RunDir))

	// The guard watches rss, which the fake step raises to 2 GB at step 8; eval (every 4)
	// comes after the guard in after-step, so the stop keeps it from running at step 8.
	src := strings.Replace(engineRecipe, "  - {id: eval,", "  - {id: guard, kind: guard, with: {watch: [rss], buffer: 0, action: checkpoint-and-stop}}\n  - {id: eval,", 1)
	src = strings.Replace(src, "  - {id: eval, kind: eval, every: 4}", "  - {id: eval, kind: eval, every: 4, after: [guard]}", 1)
	trained := int64(0)
	opts := quietOptions(t, &fakeMemory{}, fakeTraining{trained: &trained}.env())
	opts.RSS = func() (int64, bool) { return map[bool]int64{true: 2 * stages.GB}[trained >= 8], true }
	first, err := Run(context.Background(), plan(t, src), opts)
	if err != nil || first.ExitCode != stage.ExitCheckpointStop || first.Steps != 8 {
		t.Fatalf("guarded run: %v, exit %d after %d steps", err, first.ExitCode, first.Steps)
	}
	r, err := OpenResume(first.RunDir)
	if err != nil {
		t.Fatal(err)
	}
	if r.Step() != 8 || !slices.Equal(r.ckpt.State.PendingAfterStep, []string{"eval"}) {
		t.Fatalf("checkpoint at step %d pending %v; want step 8 with eval pending", r.Step(), r.ckpt.State.PendingAfterStep)
	}
	p := plan(t, strings.Replace(src, "limit: 1GB", "limit: 4GB", 1)) // the raised limit lets it finish
	evals := 0
	env := fakeTraining{trained: new(int64), evals: &evals}.env()
	opts2 := quietOptions(t, &fakeMemory{}, env)
	opts2.Resume = r
	opts2.RSS = func() (int64, bool) { return 2 * stages.GB, true }
	second, err := Run(context.Background(), p, opts2)
	r.Close()
	if err != nil || second.ExitCode != 0 || second.Steps != 12 {
		t.Fatalf("resumed run: %v, exit %d, %d steps", err, second.ExitCode, second.Steps)
	}
	ms := readMetrics(t, second.RunDir)
	if len(ms) == 0 || ms[0].Step != 9 {
		t.Fatalf("resumed metrics start at %+v, want step 9", ms)
	}
	got := append(lossesOf(readMetrics(t, first.RunDir)), lossesOf(ms)...)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("losses of the stopped and resumed runs (-uninterrupted +concatenated):\n%s", diff)
	}
	if evals != 2 {
		t.Errorf("the resumed run ran eval %d times; want 2: step 8's, which the stop kept from running, and step 12's", evals)
	}
	for _, f := range []string{"resume.json", "result.json"} {
		b, err := os.ReadFile(filepath.Join(second.RunDir, f))
		if err != nil || !strings.Contains(string(b), filepath.Base(first.RunDir)) {
			t.Errorf("%s does not name the parent run: %s", f, b)
		}
	}
}

// A signal stops the run at the step boundary with 128 + its number, after a checkpoint and
// teardown.
func TestSignalStopsWithItsCode(t *testing.T) {
	for sig, code := range map[syscall.Signal]int{syscall.SIGTERM: 143, syscall.SIGHUP: 129, syscall.SIGINT: 130} {
		ctx, cancel := context.WithCancelCause(context.Background())
		saved := 0
		opts := quietOptions(t, &fakeMemory{}, fakeTraining{saved: &saved, onStep: func(s int64) {
			if s == 4 {
				cancel(SignalError{sig})
			}
		}}.env())
		res, err := Run(ctx, plan(t, engineRecipe), opts)
		if err != nil || res.ExitCode != code || res.Steps != 4 || saved != 1 {
			t.Errorf("%v: %v, exit %d after %d steps, saved %d; want exit %d after 4, saved", sig, err, res.ExitCode, res.Steps, saved, code)
		}
		if _, err := os.Stat(filepath.Join(res.RunDir, "checkpoints", "step-00000004")); err != nil {
			t.Errorf("%v: no checkpoint of step 4", sig)
		}
	}
}

// A run directory the engine wrote before internal/rundir owned the format still resumes:
// from its newest checkpoint, with the recipe kept there, into a new directory naming it.
func TestResumeFixtureRunDir(t *testing.T) {
	parent := filepath.Join(t.TempDir(), "fixture-20260301T101500Z")
	if err := os.CopyFS(parent, os.DirFS("../internal/rundir/testdata/runs/fixture-20260301T101500Z")); err != nil {
		t.Fatal(err)
	}
	r, err := OpenResume(parent)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, src, dir, err := r.Recipe()
	if err != nil || r.Step() != 8 || dir != "/home/user/yai" {
		t.Fatalf("checkpoint of step %d, recipe dir %q: %v", r.Step(), dir, err)
	}
	trained := int64(0)
	opts := quietOptions(t, &fakeMemory{}, fakeTraining{trained: &trained}.env())
	opts.Resume = r
	res, err := Run(context.Background(), plan(t, strings.Replace(string(src), "steps: 8", "steps: 10", 1)), opts)
	if err != nil || res.ExitCode != 0 || res.Steps != 10 || trained != 10 {
		t.Fatalf("resumed: %v, exit %d after %d steps, trained %d", err, res.ExitCode, res.Steps, trained)
	}
	if ms := readMetrics(t, res.RunDir); len(ms) != 2 || ms[0].Step != 9 {
		t.Errorf("resumed metrics %+v, want steps 9 and 10", ms)
	}
	got, err := rundir.ReadResult(res.RunDir, 0)
	if err != nil || got == nil || got.Parent != parent || got.ResumedFrom != rundir.CheckpointDir(parent, 8) {
		t.Errorf("result.json %+v, %v", got, err)
	}
}
