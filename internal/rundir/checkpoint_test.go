package rundir

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func saveFake(body string) func(dir string) error {
	return func(dir string) error { return os.WriteFile(filepath.Join(dir, "state.bin"), []byte(body), 0o644) }
}

// A checkpoint written reads back whole: the backend's files, engine.json and the recipe.
func TestCheckpointRoundTrip(t *testing.T) {
	run := t.TempDir()
	if _, err := LatestCheckpoint(run); !errors.Is(err, ErrNoCheckpoint) {
		t.Fatalf("no checkpoints yet: %v", err)
	}
	st := EngineState{Step: 7, Tokens: 700, Loss: 1.5, ValLoss: 1.75, Elapsed: 3.5, Skipped: 1, LastActive: 42,
		Deltas: []float64{1, 2}, PendingAfterStep: []string{"eval"}, RecipeDir: "/recipes", Reason: "checkpoint stage"}
	dir, err := WriteCheckpoint(run, st, []byte("version: 1\n"), saveFake("seven"))
	if err != nil || dir != CheckpointDir(run, 7) || filepath.Base(dir) != "step-00000007" {
		t.Fatalf("%s, %v", dir, err)
	}
	if !HasCheckpoint(run, 7) || HasCheckpoint(run, 8) {
		t.Errorf("HasCheckpoint: 7 %v, 8 %v", HasCheckpoint(run, 7), HasCheckpoint(run, 8))
	}
	c, err := LatestCheckpoint(run)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&Checkpoint{Dir: dir, State: st}, c); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	file, src, err := c.Recipe()
	if err != nil || file != filepath.Join(dir, RecipeFile) || string(src) != "version: 1\n" {
		t.Errorf("recipe %s %q %v", file, src, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "state.bin")); string(b) != "seven" {
		t.Errorf("backend state %q", b)
	}
	if readHash(dir) == "" {
		t.Errorf("the checkpoint has no recipe hash")
	}
}

// Unfinished checkpoints (a temporary name, no engine.json, a name not written by
// WriteCheckpoint) are not listed, resumed from or pruned; a failed write leaves none.
func TestIncompleteCheckpointIgnored(t *testing.T) {
	run := t.TempDir()
	for _, s := range []int64{4, 8} {
		if _, err := WriteCheckpoint(run, EngineState{Step: s}, []byte("v"), saveFake("x")); err != nil {
			t.Fatal(err)
		}
	}
	root := filepath.Join(run, CheckpointsDir)
	for _, d := range []string{".tmp-step-00000012-123", "step-00000016", "step-20", "step-x"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	os.WriteFile(filepath.Join(root, ".tmp-step-00000012-123", EngineFile), []byte(`{"step":12}`), 0o644)
	os.WriteFile(filepath.Join(root, "step-20", EngineFile), []byte(`{"step":20}`), 0o644)
	os.WriteFile(filepath.Join(root, "step-00000016", "state.bin"), []byte("half"), 0o644) // no engine.json
	failed := errors.New("disk full")
	if _, err := WriteCheckpoint(run, EngineState{Step: 24}, []byte("v"), func(string) error { return failed }); !errors.Is(err, failed) {
		t.Errorf("a failed save: %v", err)
	}
	steps, err := Checkpoints(run)
	if err != nil || !slices.Equal(steps, []int64{4, 8}) {
		t.Errorf("checkpoints %v, %v; want [4 8]", steps, err)
	}
	if c, err := LatestCheckpoint(run); err != nil || c.State.Step != 8 {
		t.Errorf("latest: %+v, %v; want step 8", c, err)
	}
	if err := PruneCheckpoints(run, 1); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(root)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := []string{".tmp-step-00000012-123", "step-00000008", "step-00000016", "step-20", "step-x"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("after pruning to 1 (-want +got):\n%s", diff)
	}
}

// resume.json keeps its keys in the order it always had.
func TestWriteResumed(t *testing.T) {
	dir := t.TempDir()
	if err := WriteResumed(dir, Resumed{Parent: "/p", Checkpoint: "/p/c", Step: 8}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, ResumeFile))
	const want = "{\n  \"checkpoint\": \"/p/c\",\n  \"forced\": null,\n  \"parent\": \"/p\",\n  \"step\": 8\n}\n"
	if string(data) != want {
		t.Errorf("resume.json:\n%s\nwant\n%s", data, want)
	}
}

// engine.json is read back as untrusted input: a step that is not the directory's, counters
// that disagree with each other, or a directory that is no checkpoint is refused, naming
// the file.
func TestReadCheckpointChecksItsCounters(t *testing.T) {
	run := t.TempDir()
	dir, err := WriteCheckpoint(run, EngineState{Step: 6, Tokens: 600, Skipped: 1, Elapsed: 2}, []byte("v"), saveFake("x"))
	if err != nil {
		t.Fatal(err)
	}
	if c, err := ReadCheckpoint(dir); err != nil || c.State.Step != 6 {
		t.Fatalf("a sound checkpoint: %+v, %v", c, err)
	}
	file := filepath.Join(dir, EngineFile)
	for _, c := range []struct{ json, want string }{
		{`{"step":5,"tokens":600}`, "step 5, but the directory is the checkpoint of step 6"},
		{`{"step":6,"tokens":-1}`, "counters disagree"},
		{`{"step":6,"tokens":600,"skipped_nonfinite":7}`, "counters disagree"},
		{`{"step":6,"tokens":600,"skipped_nonfinite":-1}`, "counters disagree"},
		{`{"step":6,"tokens":600,"elapsed":-3}`, "elapsed -3 is not a time"},
		{`{"step":6,`, "unexpected end of JSON input"},
	} {
		if err := os.WriteFile(file, []byte(c.json), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := ReadCheckpoint(dir)
		if err == nil || !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("engine.json %s: %v; want an error naming %s and saying %q", c.json, err, file, c.want)
		}
	}
	for _, d := range []string{run, filepath.Join(run, CheckpointsDir), filepath.Join(t.TempDir(), "step-00000006")} {
		if _, err := ReadCheckpoint(d); err == nil || !strings.Contains(err.Error(), "is not a checkpoint directory") {
			t.Errorf("ReadCheckpoint(%s): %v", d, err)
		}
	}
	os.Remove(file)
	if _, err := ReadCheckpoint(dir); err == nil || !strings.Contains(err.Error(), "is not a complete checkpoint") {
		t.Errorf("no engine.json: %v", err)
	}
}
