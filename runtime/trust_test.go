package runtime

import (
	"context"
	"github.com/yai-dev/yai/internal/rundir"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The log stage's loss= is the loss of the step it logs, as metrics.jsonl records it.
func TestLogStageShowsThisStepsLoss(t *testing.T) {
	src := strings.Replace(engineRecipe, "  - {id: save,", "  - {id: progress, kind: log, with: {figures: [step, loss]}}\n  - {id: save,", 1)
	res, err := Run(context.Background(), plan(t, src), quietOptions(t, &fakeMemory{}, fakeTraining{}.env()))
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("run: %v (exit %d)", err, res.ExitCode)
	}
	log, _ := os.ReadFile(filepath.Join(res.RunDir, "run.log"))
	// the fake's loss is 10/step: 10 at step 1, 5 at step 2
	for _, want := range []string{`"step":1,"loss":10}`, `"step":2,"loss":5}`} {
		if !strings.Contains(string(log), want) {
			t.Errorf("run.log lacks %q:\n%s", want, log)
		}
	}
}

// trainedRun runs engineRecipe (12 steps) with a checkpoint every 3 steps, keeping all.
func trainedRun(t *testing.T) string {
	t.Helper()
	src := engineRecipe + "  - {id: ckpt, kind: checkpoint, every: 3, with: {keep: 0}}\n"
	res, err := Run(context.Background(), plan(t, src), quietOptions(t, &fakeMemory{}, fakeTraining{}.env()))
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("run: %v (exit %d)", err, res.ExitCode)
	}
	return res.RunDir
}

// A resume whose checkpoint cannot be loaded saves nothing: teardown's save-adapter would
// write freshly initialised adapters into a directory that then looks trained.
func TestFailedResumeSavesNothing(t *testing.T) {
	parent := trainedRun(t)
	os.WriteFile(filepath.Join(rundir.CheckpointDir(parent, 12), "fake.json"), []byte("poison"), 0o644)
	r, err := OpenResume(parent)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	saved := 0
	opts := quietOptions(t, &fakeMemory{}, fakeTraining{saved: &saved}.env())
	opts.Resume = r
	res, err := Run(context.Background(), plan(t, strings.Replace(engineRecipe, "steps: 12", "steps: 20", 1)), opts)
	if err == nil || res.ExitCode != 1 || res.Steps != 0 {
		t.Fatalf("resume of a broken checkpoint: %v, exit %d, %d steps; want an error, exit 1, 0 steps", err, res.ExitCode, res.Steps)
	}
	if saved != 0 || exists(filepath.Join(res.RunDir, "adapters.safetensors")) {
		t.Errorf("a failed resume saved adapters (save-adapter ran %d times)", saved)
	}
	got, _ := rundir.ReadResult(res.RunDir, 0)
	if got == nil || got.ExitCode != 1 || got.Steps != 0 || !strings.Contains(got.Error, "fake.json") && !strings.Contains(got.Error, "poison") {
		t.Errorf("result.json %+v", got)
	}
}

// Resuming a finished run, or with steps behind the checkpoint, has nothing to train: an
// error with the hint, and no run directory.
func TestResumeWithNothingLeftToTrain(t *testing.T) {
	parent := trainedRun(t)
	for _, steps := range []string{"steps: 12", "steps: 5"} {
		r, err := OpenResume(parent)
		if err != nil {
			t.Fatal(err)
		}
		opts := quietOptions(t, &fakeMemory{}, fakeTraining{}.env())
		opts.Resume = r
		res, err := Run(context.Background(), plan(t, strings.Replace(engineRecipe, "steps: 12", steps, 1)), opts)
		r.Close()
		if err == nil || res.ExitCode == 0 || !strings.Contains(err.Error(), "nothing left to train") || !strings.Contains(err.Error(), "--set steps=") {
			t.Errorf("%s: %v (exit %d); want a nothing-left-to-train error with the --set steps hint", steps, err, res.ExitCode)
		}
		if res.RunDir != "" {
			t.Errorf("%s: made run directory %s", steps, res.RunDir)
		}
	}
}

// --resume of a checkpoint directory continues from that checkpoint, not the newest.
func TestResumeFromAChosenCheckpoint(t *testing.T) {
	parent := trainedRun(t)
	r, err := OpenResume(rundir.CheckpointDir(parent, 6))
	if err != nil {
		t.Fatal(err)
	}
	if r.Step() != 6 || r.Parent != parent {
		t.Fatalf("resume of step-6: at step %d of %s", r.Step(), r.Parent)
	}
	trained := int64(0)
	opts := quietOptions(t, &fakeMemory{}, fakeTraining{trained: &trained}.env())
	opts.Resume = r
	res, err := Run(context.Background(), plan(t, engineRecipe), opts)
	r.Close()
	if err != nil || res.ExitCode != 0 || res.Steps != 12 || trained != 12 {
		t.Fatalf("resumed: %v, exit %d after %d steps, trained %d", err, res.ExitCode, res.Steps, trained)
	}
	if ms := readMetrics(t, res.RunDir); len(ms) != 6 || ms[0].Step != 7 {
		t.Errorf("resumed metrics %+v, want steps 7 to 12", ms)
	}
	// a directory that is not a complete checkpoint is named as such
	os.Remove(filepath.Join(rundir.CheckpointDir(parent, 9), "engine.json"))
	if _, err := OpenResume(rundir.CheckpointDir(parent, 9)); err == nil || !strings.Contains(err.Error(), "not a complete checkpoint") {
		t.Errorf("incomplete checkpoint: %v", err)
	}
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }
